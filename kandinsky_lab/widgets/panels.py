"""One panel per task: text→image, image→image, interpolation (inpainting, ControlNet and variations have files of their own).

A panel owns its widgets and nothing else: `settings()` reads them into a settings dataclass,
`set_settings(s)` shows one, and Generate hands the settings to the package's task function on a
worker thread (run_area.py). The generation never reads a widget.

    panel = TextToImagePanel(kit)
    panel                    # shows it in a notebook
    panel.prompt.value = "a red circle"; panel.run.generate_button.click(); panel.run.wait()
"""

import dataclasses
import html

import ipywidgets as W
import PIL.Image

from .. import knowledge
from ..errors import SettingsError
from ..tasks.image_to_image import image_to_image
from ..tasks.interpolation import interpolate
from ..tasks.sizing import planned_size, start_image_size
from ..tasks.text_to_image import text_to_image
from ..backend import Backend
from ..settings import ImageToImage, Interpolation, TextToImage, check
from ..sizes import fit_size
from .controls import INPUT_SIZE, MODEL_SIZE, WIDE, ImageInput, SamplingControls, png_bytes, set_slider, slider
from .run_area import RunArea


class Panel:
    """What every panel shares: sampling controls, the run area, and the Generate wiring."""

    task = None  # the package function that does the work
    title = ""

    def __init__(self, kit: Backend, on_result=None, allow_auto_size: bool = False, output_dir=None):
        self.kit = kit
        self.sampling = SamplingControls(kit, allow_auto_size=allow_auto_size)
        self.run = RunArea(on_result=on_result, output_dir=output_dir)
        self.size_note = W.HTML()
        self.run.generate_button.on_click(lambda _: self.generate())
        for watched in (self.sampling.size.dropdown, self.sampling.steps, self.sampling.prior_steps, self.sampling.num_images):
            watched.observe(lambda _: self.update_size_note(), names="value")  # size, and the time the note gives

    def inputs(self) -> list:
        raise NotImplementedError

    def settings(self):
        raise NotImplementedError

    def set_settings(self, settings) -> None:
        raise NotImplementedError

    def generate(self) -> None:
        """Read the settings, check them, and start the task; any error is shown in the panel."""
        try:
            self.check_inputs()
            self.sampling.seed.before_run()
            settings = self.settings()
            check(settings)  # a bad value is reported before anything runs
            planned_size(self.kit, settings)
            self.run.start(self.kit, settings, type(self).task)
        except Exception as error:  # shown, never lost
            self.run.show_error(error)

    def update_size_note(self) -> None:
        """The size the run will render and, as the prompt is typed, what the model will not understand (knowledge.py)."""
        try:
            settings = self.settings()
            height, width = planned_size(self.kit, settings)
            lines = knowledge.notes(self.kit, settings, height, width, wait=False)  # never wait for a running generation
            self.kit.said.update(lines)  # shown here: a run need not print them again
            shown = "".join(f"<br><span class='kl-knowledge-note' style='color:#8a4b00'>{html.escape(line)}</span>" for line in lines)
            why = self.size_reason(settings)
            why = f": <span class='kl-size-reason'>{html.escape(why)}</span>" if why else ""
            self.size_note.value = f"renders {width} × {height} px{why}{shown}"
        except Exception as error:
            self.size_note.value = f"<span style='color:#b00020'>{html.escape(str(error))}</span>"

    def check_inputs(self) -> None:
        """Raise ValueError, in the learner's words, for an input the panel still needs."""

    def size_reason(self, settings) -> str:
        """Why the run renders at the size the note gives, where the panel chose it (image→image)."""
        return ""

    @property
    def widget(self) -> W.Widget:
        if not hasattr(self, "_widget"):
            self.update_size_note()
            self._widget = W.VBox([W.HTML(f"<h3>{self.title}</h3>"), *self.inputs(), self.sampling.box, self.size_note, self.run.box])
            self._widget.add_class(f"kl-panel-{type(self).__name__.lower()}")
        return self._widget

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class TextToImagePanel(Panel):
    task = staticmethod(text_to_image)
    title = "Text → image"

    def __init__(self, kit: Backend, on_result=None, output_dir=None):
        super().__init__(kit, on_result, output_dir=output_dir)
        self.prompt = W.Textarea(value=kit.example_prompts[0], description="prompt", layout=WIDE)
        self.negative_prompt = W.Text(value="", description="negative", placeholder="low quality, bad quality", layout=WIDE)
        self.prompt.add_class("kl-prompt")
        self.negative_prompt.add_class("kl-negative-prompt")
        for text in (self.prompt, self.negative_prompt):
            text.observe(lambda _: self.update_size_note(), names="value")

    def inputs(self) -> list:
        return [self.prompt, self.negative_prompt]

    def settings(self) -> TextToImage:
        return TextToImage(prompt=self.prompt.value, negative_prompt=self.negative_prompt.value, **self.sampling.values())

    def set_settings(self, s: TextToImage) -> None:
        self.prompt.value, self.negative_prompt.value = s.prompt, s.negative_prompt
        self.sampling.set_values(s)


class ImageToImagePanel(TextToImagePanel):
    task = staticmethod(image_to_image)
    title = "Image → image"

    def __init__(self, kit: Backend, on_result=None, output_dir=None):
        Panel.__init__(self, kit, on_result, allow_auto_size=True, output_dir=output_dir)
        self.prompt = W.Textarea(value=kit.example_prompts[1], description="prompt", layout=WIDE)
        self.negative_prompt = W.Text(value="", description="negative", placeholder="low quality, bad quality", layout=WIDE)
        self.strength = slider(W.FloatSlider, "strength", 0.05, 1.0, 0.05, 0.3)
        self.image_input = ImageInput("start image", on_change=lambda _: self.update_size_note())
        self.sampling.steps.value = 100  # with strength 0.3 the decoder runs 30 of them
        self.strength.add_class("kl-strength")
        self.prompt.add_class("kl-prompt")
        self.negative_prompt.add_class("kl-negative-prompt")
        for watched in (self.prompt, self.negative_prompt, self.strength):
            watched.observe(lambda _: self.update_size_note(), names="value")

    def inputs(self) -> list:
        return [self.image_input.box, self.prompt, self.negative_prompt, self.strength]

    def settings(self) -> ImageToImage:
        values = self.sampling.values()
        image = self.image_input.image
        if self.sampling.size.dropdown.value == INPUT_SIZE and image is not None:
            values["height"], values["width"] = fit_size(image, self.kit.size_multiple)
        return ImageToImage(prompt=self.prompt.value, negative_prompt=self.negative_prompt.value, image=image, strength=self.strength.value, **values)

    def check_inputs(self) -> None:
        if self.image_input.image is None:
            raise SettingsError("choose or upload a start image: upload a file, load a URL, or pick a sample or a gallery picture")

    def size_reason(self, settings) -> str:
        return picture_size_reason(self, settings.image, "start image")

    def set_settings(self, s: ImageToImage) -> None:
        super().set_settings(s)
        set_slider(self.strength, s.strength)
        if s.image is not None:
            self.image_input.set_image(s.image, "from restored settings")


class InterpolationPanel(Panel):
    """A list of prompts and images with a weight slider each, mixed by lerp or slerp."""

    task = staticmethod(interpolate)
    title = "Interpolation: mix prompts and images"

    def __init__(self, kit: Backend, on_result=None, output_dir=None):
        super().__init__(kit, on_result, output_dir=output_dir)
        self.items: list[tuple[str | PIL.Image.Image, W.FloatSlider, W.Box]] = []
        self.rows = W.VBox()
        self.weight_sum = W.HTML()
        self.new_text = W.Text(placeholder="a prompt to add", layout=W.Layout(width="300px"))
        self.add_text_button = W.Button(description="add prompt", icon="plus")
        self.image_input = ImageInput("image to add")
        self.add_image_button = W.Button(description="add image", icon="plus")
        self.mode = W.ToggleButtons(options=["lerp", "slerp"], value="slerp", description="mix")
        self.normalize = W.Checkbox(value=True, description="normalise weights (divide by their sum)", indent=False)
        self.negative_prompt = W.Text(value="", description="negative", layout=WIDE)
        for name in ("rows", "weight_sum", "new_text", "add_text_button", "add_image_button", "mode", "normalize", "negative_prompt"):
            getattr(self, name).add_class(f"kl-{name.replace('_', '-')}")
        self.negative_prompt.observe(lambda _: self.update_size_note(), names="value")
        self.add_text_button.on_click(lambda _: self._add_text())
        self.add_image_button.on_click(lambda _: self._add_image())
        self.add_item("a red circle", 0.5)
        self.add_item("a yellow square", 0.5)

    def inputs(self) -> list:
        return [
            self.rows,
            self.weight_sum,
            W.HBox([self.new_text, self.add_text_button]),
            W.HBox([self.image_input.box, self.add_image_button]),
            self.mode,
            self.normalize,
            self.negative_prompt,
        ]

    def add_item(self, item: str | PIL.Image.Image, weight: float = 0.5) -> None:
        weight_slider = slider(W.FloatSlider, "weight", 0.0, 1.0, 0.05, weight)
        weight_slider.layout = W.Layout(width="320px")
        weight_slider.observe(lambda _: self._update_sum(), names="value")
        weight_slider.add_class("kl-weight")
        if isinstance(item, str):
            shown = W.Text(value=item, layout=W.Layout(width="300px"))
            shown.observe(lambda change, s=weight_slider: self._rename(s, change["new"]), names="value")
        else:
            shown = W.Image(value=png_bytes(item), format="png", width="64", layout=W.Layout(align_self="center", object_fit="contain"))
        remove = W.Button(description="✕", layout=W.Layout(width="40px"))
        row = W.HBox([W.Label("text" if isinstance(item, str) else "image", layout=W.Layout(width="40px")), shown, weight_slider, remove])
        remove.on_click(lambda _, r=row: self.remove_item(r))
        self.items.append((item, weight_slider, row))
        self._refresh()

    def remove_item(self, row) -> None:
        self.items = [entry for entry in self.items if entry[2] is not row]
        self._refresh()

    def settings(self) -> Interpolation:
        return Interpolation(
            items=tuple(item for item, _, _ in self.items),
            weights=tuple(s.value for _, s, _ in self.items),
            mode=self.mode.value,
            normalize_weights=self.normalize.value,
            negative_prompt=self.negative_prompt.value,
            **self.sampling.values(),
        )

    def set_settings(self, s: Interpolation) -> None:
        self.items = []
        for item, weight in zip(s.items, s.weights):
            self.add_item(item, weight)
        self.mode.value, self.normalize.value, self.negative_prompt.value = s.mode, s.normalize_weights, s.negative_prompt
        self.sampling.set_values(s)

    def _rename(self, weight_slider, text: str) -> None:
        self.items = [(text if s is weight_slider else item, s, row) for item, s, row in self.items]
        self.update_size_note()

    def _add_text(self) -> None:
        if self.new_text.value.strip():
            self.add_item(self.new_text.value.strip())
            self.new_text.value = ""

    def _add_image(self) -> None:
        if self.image_input.image is None:
            self.run.show_error(ValueError("choose an image first (upload, URL, sample or gallery)"))
            return
        self.add_item(self.image_input.image)

    def _refresh(self) -> None:
        self.rows.children = [row for _, _, row in self.items]
        self._update_sum()
        if hasattr(self, "negative_prompt"):  # not while __init__ adds the first items
            self.update_size_note()

    def _update_sum(self) -> None:
        total = sum(s.value for _, s, _ in self.items)
        warning = " — all zero: raise a weight" if total == 0 else ""
        self.weight_sum.value = f"sum of weights: <b>{total:.2f}</b>{warning}"


def picture_size_reason(panel: Panel, image, name: str) -> str:
    """Why a panel whose size follows a picture (image→image, inpainting) renders the size it does."""
    choice = panel.sampling.size.dropdown.value
    if image is None:
        return "" if isinstance(choice, tuple) else f"choose or upload a {name}"
    if choice == MODEL_SIZE:
        return start_image_size(panel.kit, image)[2]
    if choice == INPUT_SIZE:
        return f"the {name}'s {image.width} × {image.height}, moved to the nearest multiple of {panel.kit.size_multiple}"
    return ""


def replace_settings(panel: Panel, **changes) -> None:
    """Change some fields of what a panel shows (handy in notebooks and tests)."""
    panel.set_settings(dataclasses.replace(panel.settings(), **changes))
