"""Paint an inpainting mask on a picture: a canvas widget (anywidget) and the tools around it.

    editor = MaskEditor(picture)       # brush / eraser / rectangle, brush size, clear, invert
    editor                             # paint in the notebook; the mask shows as a translucent overlay
    editor.value                       # the mask: a PIL "L" image, white = repaint (masks.py)
    editor.painter.set_mask(kl.masks.rectangle(picture.size, (16, 16, 48, 48)))

`MaskPainter` is the canvas: strokes are drawn in the browser (mask_painter.js) and the mask reaches
Python as a PNG when a stroke ends, so painting is smooth even on a busy kernel. It is an anywidget, so it
runs in JupyterLab 4, Notebook 7, Voila and VS Code as it is; on Colab, third-party widgets need Colab's
custom widget manager, which `MaskEditor` turns on when it finds itself in Colab.

masks.py (and numpy with it) is imported where a mask is read, not here: a page that shows the editor
but paints nothing (the app's inpainting tab on a room's thin client) stays numpy-free.
"""

import io
from pathlib import Path

import anywidget
import ipywidgets as W
import PIL.Image
import traitlets

TOOLS = ("brush", "eraser", "rectangle")
# The browser's bytes arrive as a memoryview, which traitlets.Bytes refuses (silently, for a sync): copy to bytes.
BYTES = {"from_json": lambda value, _: b"" if value is None else bytes(value)}
ZOOM_TO = 320  # CSS pixels of the picture's longer side on screen


def _png(image: PIL.Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class MaskPainter(anywidget.AnyWidget):
    """A picture to paint on; `value` is the painted mask (PIL "L", white = repaint)."""

    _esm = Path(__file__).with_name("mask_painter.js")
    _css = ".kl-mask-canvas { cursor: crosshair; border: 1px solid #999; image-rendering: pixelated; }"
    picture = traitlets.Bytes(b"").tag(sync=True, **BYTES)  # PNG of the picture shown
    mask = traitlets.Bytes(b"").tag(sync=True, **BYTES)  # RGBA PNG at the picture's size: alpha = repaint
    tool = traitlets.Unicode("brush").tag(sync=True)
    brush = traitlets.Float(8.0).tag(sync=True)  # brush diameter, in picture pixels
    zoom_to = traitlets.Int(ZOOM_TO).tag(sync=True)
    strokes = traitlets.Int(0).tag(sync=True)  # counts masks sent by the browser (tests wait on it)

    def __init__(self, image: PIL.Image.Image | None = None, **kwargs):
        super().__init__(**kwargs)
        self.image: PIL.Image.Image | None = None
        if image is not None:
            self.set_image(image)

    @traitlets.validate("tool")
    def _check_tool(self, proposal):
        if proposal["value"] not in TOOLS:
            raise traitlets.TraitError(f"tool must be one of {', '.join(TOOLS)}, got {proposal['value']!r}")
        return proposal["value"]

    def set_image(self, image: PIL.Image.Image) -> None:
        """Show `image` (any mode; shown as RGB) with an empty mask; the screen size follows `zoom_to`."""
        self.image = image.convert("RGB")
        self.picture = _png(self.image)
        self.clear()

    @property
    def value(self) -> PIL.Image.Image | None:
        """The mask at the picture's size (None with no picture)."""
        if self.image is None:
            return None
        if not self.mask:
            return PIL.Image.new("L", self.image.size, 0)
        from .. import masks

        painted = PIL.Image.open(io.BytesIO(self.mask))
        return masks.to_image(masks.read(painted.convert("RGBA"), self.image.size, name="the painted mask"))

    def set_mask(self, mask) -> None:
        """Show any mask masks.read accepts (it must be the picture's size)."""
        from .. import masks

        alpha = masks.to_image(masks.read(mask, self.image.size) if self.image is not None else masks.read(mask))
        layer = PIL.Image.new("RGBA", alpha.size, (255, 255, 255, 0))
        layer.putalpha(alpha)
        self.mask = _png(layer)

    def clear(self) -> None:
        if self.image is not None:
            self.set_mask(PIL.Image.new("L", self.image.size, 0))

    def invert(self) -> None:
        from .. import masks

        if self.image is not None:
            self.set_mask(masks.invert(self.value))


class MaskEditor:
    """The painter with its tools: brush / eraser / rectangle, brush size, clear, invert, and what is covered."""

    def __init__(self, image: PIL.Image.Image | None = None, on_change=None):
        _colab_widgets()
        self.on_change = on_change
        self.painter = MaskPainter()
        self.tool = W.ToggleButtons(options=[("brush", "brush"), ("eraser", "eraser"), ("rectangle", "rectangle")], value="brush")
        self.brush = W.IntSlider(value=8, min=1, max=32, description="brush (px)", continuous_update=False)
        self.clear_button = W.Button(description="clear", icon="eraser")
        self.invert_button = W.Button(description="invert", icon="exchange", tooltip="repaint what is kept, keep what is repainted")
        self.note = W.HTML()
        W.link((self.tool, "value"), (self.painter, "tool"))
        W.link((self.brush, "value"), (self.painter, "brush"))
        self.clear_button.on_click(lambda _: self.painter.clear())
        self.invert_button.on_click(lambda _: self.painter.invert())
        self.painter.observe(lambda _: self._changed(), names="mask")
        for name in ("tool", "brush", "clear_button", "invert_button", "note"):
            getattr(self, name).add_class(f"kl-mask-{name.replace('_', '-')}")
        self.box = W.VBox([W.HBox([self.tool, self.brush]), self.painter, W.HBox([self.clear_button, self.invert_button, self.note])])
        self.box.add_class("kl-mask-editor")
        if image is not None:
            self.set_image(image)

    def set_image(self, image: PIL.Image.Image) -> None:
        self.painter.zoom_to = max(ZOOM_TO, min(2 * ZOOM_TO, max(image.size)))  # nano's 64 px shown 5× larger
        self.painter.set_image(image)
        self.brush.max = max(32, max(image.size) // 4)
        self.brush.value = max(1, round(max(image.size) / 8))

    @property
    def value(self) -> PIL.Image.Image | None:
        return self.painter.value

    def _changed(self) -> None:
        mask = self.value
        if mask is None:
            self.note.value = ""
        else:
            from .. import masks

            share = masks.coverage(mask)
            self.note.value = f"repaints <b>{share:.0%}</b> of the picture" + (" — paint the part to change" if share == 0 else "")
        if self.on_change is not None:
            self.on_change(mask)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.box)


def _colab_widgets() -> None:
    """On Colab, third-party widgets (this anywidget) need Colab's custom widget manager; elsewhere nothing."""
    try:
        from google.colab import output
    except ImportError:
        return
    output.enable_custom_widget_manager()
