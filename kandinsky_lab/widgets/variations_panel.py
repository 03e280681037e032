"""The variations panel: new pictures from a picture's CLIP image embedding — no prompt needed.

    panel = VariationsPanel(kit)
    panel.image_input.set_image(picture)
    panel.sampling.num_images.value = 4
    panel.run.generate_button.click(); panel.run.wait()

A prompt, if typed, moves the picture's embedding towards it first (the prior's emb2emb) by
`prior strength`. Like the other panels it only reads its widgets into a `Variations` and hands that to
`kl.variations`.
"""

import ipywidgets as W

from ..errors import SettingsError
from ..tasks.variations import variations
from ..backend import Backend
from ..settings import Variations
from .controls import WIDE, ImageInput, set_slider, slider
from .panels import Panel


class VariationsPanel(Panel):
    task = staticmethod(variations)
    title = "Variations: the picture's embedding, decoded again"

    def __init__(self, kit: Backend, on_result=None, output_dir=None):
        super().__init__(kit, on_result, output_dir=output_dir)
        self.image_input = ImageInput("picture", on_change=lambda _: self.update_size_note())
        self.prompt = W.Text(value="", description="towards", placeholder="optional: a prompt to move the picture towards", layout=WIDE)
        self.negative_prompt = W.Text(value="", description="negative", placeholder="low quality, bad quality", layout=WIDE)
        self.prior_strength = slider(W.FloatSlider, "prior strength", 0.05, 1.0, 0.05, 0.3)
        self.sampling.num_images.value = 4
        for name in ("prompt", "negative_prompt", "prior_strength"):
            getattr(self, name).add_class(f"kl-{name.replace('_', '-')}")
        for watched in (self.prompt, self.negative_prompt):
            watched.observe(lambda _: self.update_size_note(), names="value")

    def inputs(self) -> list:
        return [self.image_input.box, self.prompt, self.prior_strength, self.negative_prompt]

    def settings(self) -> Variations:
        return Variations(
            image=self.image_input.image,
            prompt=self.prompt.value,
            prior_strength=self.prior_strength.value,
            negative_prompt=self.negative_prompt.value,
            **self.sampling.values(),
        )

    def set_settings(self, s: Variations) -> None:
        self.prompt.value, self.negative_prompt.value = s.prompt, s.negative_prompt
        set_slider(self.prior_strength, s.prior_strength)
        self.sampling.set_values(s)
        if s.image is not None:
            self.image_input.set_image(s.image, "from restored settings")

    def check_inputs(self) -> None:
        if self.image_input.image is None:
            raise SettingsError("choose or upload a picture to vary: upload a file, load a URL, or pick a sample or a gallery picture")
