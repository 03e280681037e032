"""The inpainting panel: pick a picture, paint the part to repaint, describe the whole picture you want.

    panel = InpaintPanel(kit)
    panel.image_input.set_image(picture)               # or upload / URL / sample / gallery
    panel.editor.painter.set_mask(kl.masks.rectangle(picture.size, (16, 16, 48, 48)))   # or paint it
    panel.prompt.value = "a green square on a blue background"
    panel.run.generate_button.click(); panel.run.wait()

Like the other panels (panels.py) it only reads its widgets into an `Inpaint` and hands that to
`kl.inpaint` on the run area's worker thread.
"""

import ipywidgets as W

from ..errors import SettingsError
from ..tasks.inpaint import inpaint
from ..backend import Backend
from ..settings import Inpaint
from ..sizes import fit_size
from .controls import INPUT_SIZE, WIDE, ImageInput, set_slider, slider
from .mask_painter import MaskEditor
from .panels import Panel, picture_size_reason


class InpaintPanel(Panel):
    task = staticmethod(inpaint)
    title = "Inpainting: repaint the part you paint"

    def __init__(self, kit: Backend, on_result=None, output_dir=None):
        super().__init__(kit, on_result, allow_auto_size=True, output_dir=output_dir)
        self.image_input = ImageInput("picture", on_change=self._new_picture)
        self.editor = MaskEditor(on_change=lambda _: self.update_size_note())
        self.help = W.HTML(
            "<i>Paint the part to repaint (it shows in magenta: white in the mask = repaint). "
            "The prompt describes the whole picture you want, not only the painted part.</i>"
        )
        self.find_object = W.Button(description="mask the object", tooltip="a shapes picture's object, found from its colors")
        self.find_background = W.Button(description="mask the background", tooltip="everything but a shapes picture's object")
        self.find_object.on_click(lambda _: self._found("object"))
        self.find_background.on_click(lambda _: self._found("background"))
        self.prompt = W.Textarea(value="a green square on a blue background" if kit.source == "nano" else kit.example_prompts[0], description="prompt", layout=WIDE)
        self.negative_prompt = W.Text(value="", description="negative", placeholder="low quality, bad quality", layout=WIDE)
        self.keep_outside = W.Checkbox(value=False, description="paste the original back outside the mask", indent=False)
        self.feather = slider(W.IntSlider, "feather (px)", 0, 16, 1, 0)
        self.feather.disabled = True
        self.keep_outside.observe(lambda change: setattr(self.feather, "disabled", not change["new"]), names="value")
        for name in ("prompt", "negative_prompt", "keep_outside", "feather", "find_object", "find_background"):
            getattr(self, name).add_class(f"kl-{name.replace('_', '-')}")
        for watched in (self.prompt, self.negative_prompt, self.keep_outside, self.feather):
            watched.observe(lambda _: self.update_size_note(), names="value")

    def inputs(self) -> list:
        return [
            self.image_input.box,
            self.help,
            self.editor.box,
            W.HBox([self.find_object, self.find_background]),
            self.prompt,
            self.negative_prompt,
            W.HBox([self.keep_outside, self.feather]),
        ]

    def settings(self) -> Inpaint:
        values = self.sampling.values()
        image = self.image_input.image
        if self.sampling.size.dropdown.value == INPUT_SIZE and image is not None:
            values["height"], values["width"] = fit_size(image, self.kit.size_multiple)
        return Inpaint(
            prompt=self.prompt.value,
            negative_prompt=self.negative_prompt.value,
            image=image,
            mask=self.editor.value,
            keep_outside=self.keep_outside.value,
            feather=float(self.feather.value) if self.keep_outside.value else 0.0,
            **values,
        )

    def set_settings(self, s: Inpaint) -> None:
        self.prompt.value, self.negative_prompt.value = s.prompt, s.negative_prompt
        self.sampling.set_values(s)
        self.keep_outside.value = s.keep_outside
        set_slider(self.feather, round(s.feather))
        if s.image is not None:
            self.image_input.set_image(s.image, "from restored settings")
        if s.mask is not None and s.image is not None:
            self.editor.painter.set_mask(s.mask)

    def check_inputs(self) -> None:
        if self.image_input.image is None:
            raise SettingsError("choose or upload a picture to repaint: upload a file, load a URL, or pick a sample or a gallery picture")
        from .. import masks  # numpy only once there is a mask to read (see mask_painter.py)

        if masks.coverage(self.editor.value) == 0:
            raise SettingsError("paint the part to repaint first (brush or rectangle): the mask is empty")

    def size_reason(self, settings) -> str:
        return picture_size_reason(self, settings.image, "picture")

    def _new_picture(self, image) -> None:
        if image is not None:
            self.editor.set_image(image)
        self.update_size_note()

    def _found(self, part: str) -> None:
        """Mask the shapes picture's "object" or its "background"."""
        from .. import masks

        try:
            if self.image_input.image is None:
                raise SettingsError("choose a picture first")
            find = masks.shapes_object if part == "object" else masks.shapes_background
            self.editor.painter.set_mask(find(self.image_input.image))
        except Exception as error:  # shown, never lost
            self.run.show_error(error)
