"""Widget panels for Jupyter (ipywidgets 7.7 and 8): the only part of kandinsky_lab that imports ipywidgets
(and anywidget, for the mask painter's canvas).

    from kandinsky_lab.widgets import TextToImagePanel, ImageToImagePanel, InterpolationPanel, InpaintPanel, ControlNetPanel,
        VariationsPanel, FineTunePanel, Playground
    TextToImagePanel(kit)
"""

from .controlnet_panel import ControlNetPanel
from .finetune_panel import FineTunePanel
from .gallery import HistoryGallery
from .inpaint_panel import InpaintPanel
from .mask_painter import MaskEditor, MaskPainter
from .panels import ImageToImagePanel, InterpolationPanel, Panel, TextToImagePanel
from .playground import Playground, visitor_app
from .runner import Runner
from .variations_panel import VariationsPanel

__all__ = ["ControlNetPanel", "FineTunePanel", "HistoryGallery", "ImageToImagePanel", "InpaintPanel", "InterpolationPanel", "MaskEditor", "MaskPainter", "Panel", "Playground", "Runner", "TextToImagePanel", "VariationsPanel", "visitor_app"]
