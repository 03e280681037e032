"""The playground: the task panels in tabs, sharing one Kit and one history gallery.

Restoring a picture from the gallery opens the tab of its task with its settings; "→ i2i" makes it
the start image of image→image, "→ inpaint" the picture to repaint, "→ control" the picture whose layout
ControlNet keeps, "→ vary" the picture to make variations of. Every image input can also pick from the gallery, and the
fine-tuning tab takes gallery pictures to teach from; the adapter it trains is then what every tab draws with. With an
`output_dir`, every picture is saved there as soon as it is made, and a new playground on the same
folder (after a kernel restart) shows them again.
"""

import html
import os
import time
import uuid
from pathlib import Path

import ipywidgets as W

from ..backend import Backend
from ..settings import ControlNet, ImageToImage, Inpaint, Interpolation, Variations
from .controlnet_panel import ControlNetPanel
from .finetune_panel import FineTunePanel
from .gallery import HistoryGallery
from .inpaint_panel import InpaintPanel
from .panels import ImageToImagePanel, InterpolationPanel, TextToImagePanel
from .variations_panel import VariationsPanel


class Playground:
    def __init__(self, kit: Backend, output_dir: str | os.PathLike | None = None):
        self.gallery = HistoryGallery(
            on_restore=self.restore,
            on_send=self.send_to_image_to_image,
            targets={
                "→ inpaint": ("repaint part of this picture (inpainting)", self.send_to_inpaint),
                "→ control": ("keep this picture's layout, change the rest (ControlNet)", self.send_to_controlnet),
                "→ vary": ("variations of this picture", self.send_to_variations),
            },
        )
        self.text_to_image = TextToImagePanel(kit, on_result=self._on_result, output_dir=output_dir)
        self.image_to_image = ImageToImagePanel(kit, on_result=self._on_result, output_dir=output_dir)
        self.interpolation = InterpolationPanel(kit, on_result=self._on_result, output_dir=output_dir)
        self.inpaint = InpaintPanel(kit, on_result=self._on_result, output_dir=output_dir)
        self.controlnet = ControlNetPanel(kit, on_result=self._on_result, output_dir=output_dir)
        self.variations = VariationsPanel(kit, on_result=self._on_result, output_dir=output_dir)
        self.finetune = FineTunePanel(kit, output_dir=output_dir)  # trains; every other tab then draws with its adapter
        self.panels = [self.text_to_image, self.image_to_image, self.interpolation, self.inpaint, self.controlnet, self.variations]
        self.tabs = W.Tab(children=[p.widget for p in self.panels] + [self.finetune.widget])
        for i, name in enumerate(["text → image", "image → image", "interpolation", "inpainting", "controlnet", "variations", "fine-tuning"]):
            self.tabs.set_title(i, name)
        self.widget = W.VBox([self.tabs, self.gallery.box])
        self.widget.add_class("kl-playground")
        if output_dir is not None and os.path.isdir(output_dir):
            self.gallery.load_folder(output_dir)
            self._share_gallery()

    def _on_result(self, result) -> None:
        self.gallery.add(result)
        self._share_gallery()

    def _share_gallery(self) -> None:
        for panel in (self.image_to_image, self.interpolation, self.inpaint, self.controlnet, self.variations):
            panel.image_input.set_gallery(self.gallery.images)
        self.finetune.set_gallery(self.gallery.images)

    def restore(self, settings) -> None:
        kinds = {ImageToImage: 1, Interpolation: 2, Inpaint: 3, ControlNet: 4, Variations: 5}
        index = next((i for cls, i in kinds.items() if isinstance(settings, cls)), 0)
        self.panels[index].set_settings(settings)
        self.tabs.selected_index = index

    def send_to_image_to_image(self, image) -> None:
        self.image_to_image.image_input.set_image(image, "from the gallery")
        self.tabs.selected_index = 1

    def send_to_inpaint(self, image) -> None:
        self.inpaint.image_input.set_image(image, "from the gallery")
        self.tabs.selected_index = 3

    def send_to_controlnet(self, image) -> None:
        self.controlnet.image_input.set_image(image, "from the gallery")
        self.tabs.selected_index = 4

    def send_to_variations(self, image) -> None:
        self.variations.image_input.set_image(image, "from the gallery")
        self.tabs.selected_index = 5

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def visitor_app(kit: Backend, output_root: str | os.PathLike = "outputs/visitors") -> W.Widget:
    """The web app's page (app/playground.ipynb, served by `make app`): one line on what the model draws,
    then the playground, saving into a folder of this visitor's own. Voila starts a kernel per page load,
    so each visitor gets a new folder and a gallery that starts empty: nobody sees another's pictures."""
    from ..knowledge import what_it_draws

    folder = Path(output_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    header = W.HTML(f"<p class='kl-app-line'>{html.escape(what_it_draws(kit))}</p>")
    playground = Playground(kit, output_dir=folder)
    app = W.VBox([header, playground.widget])
    app.add_class("kl-app")
    app.output_dir, app.playground = folder, playground  # for tests and for code that drives the app
    return app
