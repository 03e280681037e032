"""Widget panels for Jupyter (ipywidgets 7.7 and 8): the only part of kandinsky_lab that imports ipywidgets.

    from kandinsky_lab.widgets import TextToImagePanel, ImageToImagePanel, InterpolationPanel, Playground
    TextToImagePanel(kit)
"""

from .gallery import HistoryGallery
from .panels import ImageToImagePanel, InterpolationPanel, Panel, TextToImagePanel
from .playground import Playground, visitor_app
from .runner import Runner

__all__ = ["HistoryGallery", "ImageToImagePanel", "InterpolationPanel", "Panel", "Playground", "Runner", "TextToImagePanel", "visitor_app"]
