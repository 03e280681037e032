"""Reusable controls: sampling sliders, a size picker, a seed with lock/randomise, an image input.

Each control only reads and writes values: `values()` gives the settings fields it owns,
`set_values(settings)` shows a settings object. Works with ipywidgets 7.7 (Colab) and 8 (JupyterLab).
"""

import html
import io
import math
import random

import ipywidgets as W
import PIL.Image

from ..grids import enlarged
from ..images import fetch_image, open_image
from ..backend import Backend
from ..samples import sample, sample_names
from ..settings import MAX_SEED, SAMPLER_LABELS as LABELS, SAMPLERS

ASPECTS = [("1:1", 1, 1), ("4:3", 4, 3), ("3:4", 3, 4), ("3:2", 3, 2), ("2:3", 2, 3), ("16:9", 16, 9), ("9:16", 9, 16)]
SCALES = (1.0, 2 / 3, 4 / 3)  # of the model's default size: 768, 512, 1024 for Kandinsky 2.2
WIDE = W.Layout(width="98%")
SLIDER_STYLE = {"description_width": "140px"}


def png_bytes(image: PIL.Image.Image) -> bytes:
    """A picture as PNG for an image widget: lossless, at zlib's fastest level (a 768 × 768 picture in ~35 ms
    instead of ~210 ms at the default, for ~25 % more bytes to a browser on the same machine or network).
    Saved files are written by metadata.save_image, at the default level."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def aspect_label(width: int, height: int) -> str:
    """The ratio of a size in words: exact ("4:3", "5:3") when it is a ratio of small numbers, else "≈" the nearest common one."""
    g = math.gcd(width, height)
    a, b = width // g, height // g
    if max(a, b) <= 9 or any((a, b) == (x, y) for _, x, y in ASPECTS):
        return f"{a}:{b}"
    name = min(ASPECTS, key=lambda aspect: abs(math.log(width * aspect[2] / (height * aspect[1]))))[0]
    return f"≈ {name}"


def size_label(height: int, width: int) -> str:
    return f"{width} × {height} ({aspect_label(width, height)})"


def size_options(default_size: int, multiple: int) -> list[tuple[str, tuple[int, int]]]:
    """(label, (height, width)) for each aspect and scale, every side a valid multiple, smallest first."""
    sizes = set()
    snap = lambda v: max(multiple, int(v / multiple + 0.5) * multiple)
    for scale in SCALES:
        area = (default_size * scale) ** 2
        for _, a, b in ASPECTS:
            sizes.add((snap(math.sqrt(area * b / a)), snap(math.sqrt(area * a / b))))
    return [(size_label(h, w), (h, w)) for h, w in sorted(sizes, key=lambda hw: (hw[0] * hw[1], hw[1]))]


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """(name, bytes) of a FileUpload's value in either ipywidgets 7 (dict) or 8 (tuple of dicts) form."""
    if isinstance(value, dict):
        return [(name, bytes(f["content"])) for name, f in value.items()]
    return [(f["name"], bytes(f["content"])) for f in value]


def slider(kind, description: str, low, high, step, value):
    return kind(value=value, min=low, max=high, step=step, description=description, style=SLIDER_STYLE, layout=WIDE, continuous_update=False)


def set_slider(widget, value) -> None:
    """Show `value` even if it lies outside the slider's range (a restored setting must not be clamped)."""
    widget.max = max(widget.max, value)
    widget.min = min(widget.min, value)
    widget.value = value


MODEL_SIZE = "model"  # image→image: the model's own size, at the start image's aspect ratio when the model can
INPUT_SIZE = "input"  # image→image: the start image's own size, moved to the nearest valid one


class SizePicker:
    """A dropdown of valid sizes, smallest first; `allow_auto` adds the two image→image choices above the sizes.

    `value` is (height, width), or None for either image→image choice (the panel works out which); the
    choices are strings, not None: a Dropdown shows a None value as nothing selected.
    """

    def __init__(self, kit: Backend, allow_auto: bool = False):
        options = size_options(kit.default_size, kit.size_multiple)
        if allow_auto:
            options = [("the model's size (see below)", MODEL_SIZE), ("size of the input image", INPUT_SIZE)] + options
        start = MODEL_SIZE if allow_auto else (kit.default_size, kit.default_size)
        self.dropdown = W.Dropdown(options=options, value=start, description="size (w × h)", style=SLIDER_STYLE, layout=WIDE)

    @property
    def value(self) -> tuple[int, int] | None:
        return self.dropdown.value if isinstance(self.dropdown.value, tuple) else None

    def set(self, height: int | None, width: int | None) -> None:
        if height is None or width is None:
            if any(v == MODEL_SIZE for _, v in self.dropdown.options):
                self.dropdown.value = MODEL_SIZE
            return
        if (height, width) not in [v for _, v in self.dropdown.options]:
            autos = [o for o in self.dropdown.options if not isinstance(o[1], tuple)]
            sizes = [o for o in self.dropdown.options if isinstance(o[1], tuple)] + [(size_label(height, width), (height, width))]
            self.dropdown.options = autos + sorted(sizes, key=lambda o: (o[1][0] * o[1][1], o[1][1]))
        self.dropdown.value = (height, width)


class SeedControl:
    """The seed, a "lock" (keep it between runs) and a button that rolls a new one."""

    def __init__(self, seed: int = 0):
        self.seed = W.BoundedIntText(value=seed, min=0, max=MAX_SEED - 64, description="seed", style=SLIDER_STYLE)
        self.lock = W.Checkbox(value=True, description="lock seed", indent=False, layout=W.Layout(width="110px"))
        self.roll_button = W.Button(description="new seed", icon="random", layout=W.Layout(width="120px"))
        self.roll_button.on_click(lambda _: self.roll())
        self.box = W.HBox([self.seed, self.lock, self.roll_button])
        for name in ("seed", "lock", "roll_button"):
            getattr(self, name).add_class(f"kl-seed-{name.replace('_', '-')}")

    def roll(self) -> int:
        self.seed.value = random.randrange(0, 2**32)
        return self.seed.value

    def before_run(self) -> None:
        """An unlocked seed changes on every Generate (the seed used is shown, so it can be kept)."""
        if not self.lock.value:
            self.roll()


class SamplingControls:
    """Widgets for the fields of `Sampling`: both stages' guidance and steps, size, count, seed."""

    def __init__(self, kit: Backend, allow_auto_size: bool = False):
        self.prior_guidance = slider(W.FloatSlider, "prior guidance", 0.0, 20.0, 0.5, 4.0)
        self.prior_steps = slider(W.IntSlider, "prior steps", 2, 100, 1, 25)
        self.guidance = slider(W.FloatSlider, "decoder guidance", 0.0, 20.0, 0.5, 4.0)
        self.steps = slider(W.IntSlider, "decoder steps", 1, 150, 1, 50)
        self.sampler = W.Dropdown(options=[(LABELS[name], name) for name in SAMPLERS], value="ddpm", description="sampler", style=SLIDER_STYLE, layout=WIDE)
        self.sampler.add_class("kl-sampler")
        self.size = SizePicker(kit, allow_auto=allow_auto_size)
        self.num_images = slider(W.IntSlider, "images", 1, 8, 1, 1)
        self.seed = SeedControl()
        self.decoder_seed: int | None = None  # kept from restored settings; not shown
        for name in ("prior_guidance", "prior_steps", "guidance", "steps", "num_images"):
            getattr(self, name).add_class(f"kl-{name.replace('_', '-')}")
        self.size.dropdown.add_class("kl-size")
        self.box = W.VBox(
            [
                W.HTML("<b>Prior</b> (text → CLIP image embedding)"),
                self.prior_guidance,
                self.prior_steps,
                W.HTML("<b>Decoder</b> (embedding → picture)"),
                self.guidance,
                self.steps,
                self.sampler,
                self.size.dropdown,
                self.num_images,
                self.seed.box,
            ]
        )

    def values(self) -> dict:
        height, width = self.size.value or (None, None)
        return dict(
            prior_guidance_scale=self.prior_guidance.value,
            prior_steps=self.prior_steps.value,
            guidance_scale=self.guidance.value,
            steps=self.steps.value,
            sampler=self.sampler.value,
            height=height,
            width=width,
            num_images=self.num_images.value,
            seed=self.seed.seed.value,
            decoder_seed=self.decoder_seed,
        )

    def set_values(self, s) -> None:
        set_slider(self.prior_guidance, s.prior_guidance_scale)
        set_slider(self.prior_steps, s.prior_steps)
        set_slider(self.guidance, s.guidance_scale)
        set_slider(self.steps, s.steps)
        self.sampler.value = s.sampler
        self.size.set(s.height, s.width)
        set_slider(self.num_images, s.num_images)
        self.seed.seed.value = s.seed
        self.seed.lock.value = True  # a restored picture keeps its seed
        self.decoder_seed = s.decoder_seed


class ImageInput:
    """Pick an image: upload a file, load a URL, a shipped sample, or (in the playground) the gallery."""

    def __init__(self, description: str = "image", on_change=None):
        self.image: PIL.Image.Image | None = None
        self.on_change = on_change
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.url = W.Text(placeholder="https://…/picture.png", layout=W.Layout(width="260px"))
        self.url_button = W.Button(description="load URL", layout=W.Layout(width="100px"))
        self.samples = W.Dropdown(options=[("sample…", None)] + [(n, n) for n in sample_names()], layout=W.Layout(width="140px"))
        self.gallery = W.Dropdown(options=[("gallery…", None)], layout=W.Layout(width="160px"))
        self.thumbnail = W.Image(format="png", width="128", layout=W.Layout(display="none", align_self="flex-start", object_fit="contain"))
        self.note = W.HTML()
        self.gallery_images: list[PIL.Image.Image] = []
        self.upload.observe(self._on_upload, names="value")
        self.url_button.on_click(self._on_url)
        self.samples.observe(self._on_sample, names="value")
        self.gallery.observe(self._on_gallery, names="value")
        for name in ("upload", "url", "url_button", "samples", "gallery", "thumbnail", "note"):
            getattr(self, name).add_class(f"kl-image-{name.replace('_', '-')}")
        sources = W.HBox([self.upload, self.url, self.url_button, self.samples, self.gallery])
        self.box = W.VBox([W.HTML(f"<b>{description}</b>"), sources, W.HBox([self.thumbnail, self.note])])

    def set_image(self, image: PIL.Image.Image | None, note: str | None = None) -> None:
        self.image = image
        shown, zoom = enlarged(image) if image is not None else (None, 1)  # a 64 × 64 picture is seen at 128 × 128
        self.thumbnail.value = png_bytes(shown) if image is not None else b""
        self.thumbnail.layout.display = None if image is not None else "none"
        size = f"{image.width} × {image.height}" + (f" (shown {zoom}× larger)" if zoom > 1 else "") if image is not None else "no image"
        self.note.value = f"{size}" + (f"<br><i>{html.escape(note)}</i>" if note else "")
        if self.on_change is not None:
            self.on_change(image)

    def show_error(self, message: str) -> None:
        self.note.value = f"<span style='color:#b00020'>{html.escape(message)}</span>"  # "<urlopen error …>" is no tag

    def set_gallery(self, images: list[PIL.Image.Image]) -> None:
        self.gallery_images = list(images)
        self.gallery.options = [("gallery…", None)] + [(f"#{i + 1}", i) for i in range(len(images))]

    def _on_upload(self, change) -> None:
        files = uploaded_files(change["new"])
        if not files:
            return
        name, data = files[0]
        try:
            image, note = open_image(data, name=name)
        except ValueError as error:
            self.show_error(str(error))
            return
        self.set_image(image, f"uploaded {name}" + (f"; {note}" if note else ""))

    def _on_url(self, _=None) -> None:
        try:
            image, note = fetch_image(self.url.value.strip())
        except ValueError as error:
            self.show_error(str(error))
            return
        self.set_image(image, "from URL" + (f"; {note}" if note else ""))

    def _on_sample(self, change) -> None:
        if change["new"] is not None:
            self.set_image(sample(change["new"]), f"sample: {change['new']}")
            self.samples.value = None

    def _on_gallery(self, change) -> None:
        if change["new"] is not None:
            self.set_image(self.gallery_images[change["new"]], f"gallery #{change['new'] + 1}")
            self.gallery.value = None
