"""The ControlNet panel: a picture's depth becomes the hint, and a new prompt fills the layout.

    panel = ControlNetPanel(kit)
    panel.image_input.set_image(picture)       # its depth map appears beside it (kl.depth_map)
    panel.prompt.value = "a yellow star on a purple background"
    panel.run.generate_button.click(); panel.run.wait()

A hint can also be uploaded or drawn (`hint_input`: white = near). "start from the picture" makes it
image→image with the hint (the prompt moves the picture's embedding by `prior strength` first).
Like the other panels it only reads its widgets into a `ControlNet` and hands that to `kl.controlnet`.
"""

import html

import ipywidgets as W

from ..depth import depth_map
from ..errors import SettingsError
from ..tasks.controlnet import controlnet, with_kit_guidance
from ..grids import enlarged
from ..backend import Backend
from ..settings import ControlNet
from .controls import WIDE, ImageInput, png_bytes, set_slider, slider
from .panels import Panel


class ControlNetPanel(Panel):
    task = staticmethod(controlnet)
    title = "ControlNet: keep a picture's layout, change the rest"

    def __init__(self, kit: Backend, on_result=None, output_dir=None):
        super().__init__(kit, on_result, output_dir=output_dir)
        set_slider(self.sampling.guidance, kit.guidance_scale("controlnet"))  # what ControlNet() leaves to the model
        self.hint = None
        self.image_input = ImageInput("picture whose layout to keep", on_change=self._new_picture)
        self.hint_input = ImageInput("or a depth hint of your own (white = near)", on_change=self._new_hint)
        self.hint_view = W.Image(format="png", width="128", layout=W.Layout(display="none", object_fit="contain"))
        self.hint_note = W.HTML("<i>the depth hint appears here</i>")
        self.prompt = W.Textarea(value="a yellow star on a purple background" if kit.source == "nano" else kit.example_prompts[0], description="prompt", layout=WIDE)
        self.negative_prompt = W.Text(value="", description="negative", placeholder="low quality, bad quality", layout=WIDE)
        self.from_picture = W.Checkbox(value=False, description="start from the picture (image → image with the hint)", indent=False)
        self.strength = slider(W.FloatSlider, "strength", 0.05, 1.0, 0.05, 0.5)
        self.prior_strength = slider(W.FloatSlider, "prior strength", 0.05, 1.0, 0.05, 0.85)
        # their own box to hide: the sliders share one Layout object (controls.WIDE) with every other field
        self.image_options = W.VBox([self.strength, self.prior_strength], layout=W.Layout(width="98%"))
        self.from_picture.observe(lambda _: self._show_image_options(), names="value")
        for name in ("prompt", "negative_prompt", "from_picture", "strength", "prior_strength", "hint_view", "hint_note"):
            getattr(self, name).add_class(f"kl-{name.replace('_', '-')}")
        for watched in (self.prompt, self.negative_prompt, self.from_picture):
            watched.observe(lambda _: self.update_size_note(), names="value")
        self._show_image_options()

    def inputs(self) -> list:
        hint_box = W.VBox([W.HTML("<b>depth hint</b>"), self.hint_view, self.hint_note])
        return [
            W.HBox([self.image_input.box, hint_box]),
            self.hint_input.box,
            self.prompt,
            self.negative_prompt,
            self.from_picture,
            self.image_options,
        ]

    def settings(self) -> ControlNet:
        use_picture = self.from_picture.value and self.image_input.image is not None
        return ControlNet(
            prompt=self.prompt.value,
            negative_prompt=self.negative_prompt.value,
            hint=self.hint,
            image=self.image_input.image if use_picture else None,
            strength=self.strength.value,
            prior_strength=self.prior_strength.value,
            **self.sampling.values(),
        )

    def set_settings(self, s: ControlNet) -> None:
        self.prompt.value, self.negative_prompt.value = s.prompt, s.negative_prompt
        self.sampling.set_values(with_kit_guidance(self.kit, s))
        set_slider(self.strength, s.strength)
        set_slider(self.prior_strength, s.prior_strength)
        if s.image is not None:
            self.image_input.set_image(s.image, "from restored settings")
        self.from_picture.value = s.image is not None
        if s.hint is not None:
            self._show_hint(s.hint, "the hint of the restored picture")

    def check_inputs(self) -> None:
        if self.hint is None:
            raise SettingsError("choose a picture (its depth becomes the hint) or upload a depth hint first")

    def _new_picture(self, image) -> None:
        if image is None:
            return
        try:
            self.hint_note.value = "<i>estimating depth…</i>"
            self._show_hint(depth_map(self.kit, image), "estimated from the picture (kl.depth_map)")
        except Exception as error:  # e.g. a model without a depth estimator: shown, never lost
            self.hint_note.value = f"<span style='color:#b00020'>{html.escape(str(error))}</span>"
        self.update_size_note()

    def _new_hint(self, image) -> None:
        if image is not None:
            self._show_hint(image.convert("L"), "your own hint")

    def _show_hint(self, hint, note: str) -> None:
        self.hint = hint
        self.hint_view.value = png_bytes(enlarged(hint.convert("RGB"))[0])
        self.hint_view.layout.display = None
        self.hint_note.value = f"<i>{html.escape(note)}</i>"

    def _show_image_options(self) -> None:
        self.image_options.layout.display = None if self.from_picture.value else "none"
