"""Inpainting masks: what they are, how to make them, and the one function that reads any of them.

A mask is a picture the size of the image: **white (1) = repaint, black (0) = keep**, as diffusers
uses since 0.19 (before, Kandinsky's pipelines repainted the black part: old masks and old code do the
opposite, silently). The helpers return PIL "L" masks (0 or 255) and take any mask `read` accepts:

    rectangle(size, box)          ellipse(size, box)           strokes(size, lines, width)
    invert(mask)                  grow(mask, pixels)           shrink(mask, pixels)
    feather(mask, pixels)         transparent(image)           (where a picture is see-through)
    overlay(picture, mask)        the mask over the picture in translucent magenta, as the mask painter shows it
    shapes_object(picture, grow)  shapes_background(picture)   (nano's shapes world: read from the pixels)

`read(mask, size)` turns a PIL image (L, 1, RGBA/LA by their alpha: painted = repaint), a numpy bool
or float array (>= 0.5 = repaint, as diffusers binarises) or a list of lists into a boolean array, or
says in one line why it cannot. `size` is (width, height), as PIL says it.
"""

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFilter

from . import judge
from .errors import ImageError, SettingsError, wrong_type

MODES = ("L", "1", "RGBA", "LA")  # PIL modes read as masks; RGB and others are refused (which channel?)


def read(mask, size: tuple[int, int] | None = None, name: str = "mask") -> np.ndarray:
    """A (height, width) boolean array, True = repaint; with `size`, the mask must be that (width, height)."""
    if isinstance(mask, PIL.Image.Image):
        if mask.width < 1 or mask.height < 1:
            raise ImageError(f"{name} is {mask.width} x {mask.height} pixels: it has no pixels")
        if mask.mode not in MODES:
            raise ImageError(
                f"{name} has the mode {mask.mode}: give a black-and-white mask (mode L or 1: white = repaint), "
                "or an RGBA layer whose painted (opaque) pixels are the part to repaint; kl.masks.read(picture.convert('L')) reads brightness"
            )
        values = np.asarray(mask.getchannel("A") if mask.mode in ("RGBA", "LA") else mask.convert("L"), dtype=np.float32) / 255
    elif isinstance(mask, (np.ndarray, list)):
        values = np.asarray(mask)
        if values.dtype == object or not (values.dtype == bool or np.issubdtype(values.dtype, np.number)):
            raise wrong_type(name, "a PIL image or a 2-D array of True/False or 0..1 values", mask)
        if values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        if values.ndim != 2:
            raise ImageError(f"{name} must be 2-D (height, width), got an array of shape {values.shape}")
        if values.dtype != bool:
            values = values.astype(np.float32)
            if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
                high = "; divide 0..255 values by 255" if np.isfinite(values).all() and values.max() <= 255 else ""
                raise ImageError(f"{name} values must be in 0..1 (1 = repaint), got {values.min():g}..{values.max():g}{high}")
    else:
        raise wrong_type(name, "a PIL image (mode L, 1 or RGBA) or a 2-D array (True / 1 = repaint)", mask)
    found = values if values.dtype == bool else values >= 0.5
    if size is not None and (found.shape[1], found.shape[0]) != tuple(size):
        raise ImageError(
            f"{name} is {found.shape[1]} x {found.shape[0]} pixels but the image is {size[0]} x {size[1]}: "
            f"make the mask at the image's size (e.g. kl.masks.rectangle(image.size, box)) or resize it with "
            f"mask.resize(image.size, PIL.Image.NEAREST)"
        )
    return found


def to_image(values: np.ndarray) -> PIL.Image.Image:
    """A boolean (or 0..1) array as an L mask: 255 where True."""
    return PIL.Image.fromarray((np.asarray(values, dtype=np.float32) >= 0.5).astype(np.uint8) * 255, "L")


def _canvas(size: tuple[int, int]) -> tuple[PIL.Image.Image, PIL.ImageDraw.ImageDraw]:
    width, height = size
    if not (isinstance(width, int) and isinstance(height, int)) or width < 1 or height < 1:
        raise SettingsError(f"size must be (width, height) in whole pixels >= 1, got {size!r}")
    canvas = PIL.Image.new("L", (width, height), 0)
    return canvas, PIL.ImageDraw.Draw(canvas)


def rectangle(size: tuple[int, int], box: tuple[float, float, float, float]) -> PIL.Image.Image:
    """White inside `box` = (left, top, right, bottom), right and bottom excluded."""
    canvas, draw = _canvas(size)
    left, top, right, bottom = box
    if right > left and bottom > top:
        draw.rectangle((left, top, right - 1, bottom - 1), fill=255)
    return canvas


def ellipse(size: tuple[int, int], box: tuple[float, float, float, float]) -> PIL.Image.Image:
    """White inside the ellipse that fills `box` = (left, top, right, bottom)."""
    canvas, draw = _canvas(size)
    left, top, right, bottom = box
    if right > left and bottom > top:
        draw.ellipse((left, top, right - 1, bottom - 1), fill=255)
    return canvas


def strokes(size: tuple[int, int], lines, width: float) -> PIL.Image.Image:
    """White along brush strokes: each line a list of (x, y) points, drawn `width` pixels wide with round ends."""
    canvas, draw = _canvas(size)
    radius = width / 2
    for line in lines:
        points = [(float(x), float(y)) for x, y in line]
        if len(points) > 1:
            draw.line(points, fill=255, width=max(1, round(width)), joint="curve")
        for x, y in points:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return canvas


def invert(mask) -> PIL.Image.Image:
    """Repaint what was kept and keep what was repainted (e.g. an old, pre-0.19 Kandinsky mask)."""
    return to_image(~read(mask))


def grow(mask, pixels: int) -> PIL.Image.Image:
    """The white part widened by `pixels` on every side: room for the new content to blend in."""
    return _filtered(mask, pixels, PIL.ImageFilter.MaxFilter)


def shrink(mask, pixels: int) -> PIL.Image.Image:
    """The white part narrowed by `pixels` on every side."""
    return _filtered(mask, pixels, PIL.ImageFilter.MinFilter)


def _filtered(mask, pixels: int, kind) -> PIL.Image.Image:
    if not isinstance(pixels, int) or isinstance(pixels, bool) or pixels < 0:
        raise SettingsError(f"pixels must be a whole number >= 0, got {pixels!r}")
    image = to_image(read(mask))
    return image.filter(kind(2 * pixels + 1)) if pixels else image


def feather(mask, pixels: float) -> PIL.Image.Image:
    """A soft mask: the edge blurred over about `pixels`. The pipeline itself reads masks as hard (>= 0.5);
    a soft mask is for blending the result back into the original (Inpaint(keep_outside=True, feather=…))."""
    if not isinstance(pixels, (int, float)) or isinstance(pixels, bool) or not 0 <= pixels < 1e4:
        raise SettingsError(f"pixels must be a number >= 0, got {pixels!r}")
    image = to_image(read(mask))
    return image.filter(PIL.ImageFilter.GaussianBlur(pixels / 2)) if pixels else image


def transparent(image: PIL.Image.Image) -> PIL.Image.Image:
    """White where a picture is see-through (alpha < 128): the holes of a cut-out, to fill in."""
    if not isinstance(image, PIL.Image.Image):
        raise wrong_type("image", "a PIL image", image)
    if "A" not in image.getbands() and not (image.mode == "P" and "transparency" in image.info):
        raise ImageError(f"the picture (mode {image.mode}) has no transparency to read a mask from")
    return to_image(np.asarray(image.convert("RGBA").getchannel("A")) < 128)


def shapes_object(picture: PIL.Image.Image, grow_by: int = 2) -> PIL.Image.Image:
    """The object of a shapes-world picture (nano's world), read from its pixels as judge.py does,
    widened by `grow_by` pixels so that its soft edge is repainted too."""
    if not isinstance(picture, PIL.Image.Image):
        raise wrong_type("picture", "a PIL image", picture)
    found = judge.picture_object(picture)
    if not found.any():
        raise ImageError("no object stands out from the background of this picture")
    return grow(to_image(found), grow_by)


def shapes_background(picture: PIL.Image.Image, margin: int = 2) -> PIL.Image.Image:
    """Everything but the object of a shapes-world picture (the object widened by `margin` is kept)."""
    return invert(shapes_object(picture, margin))


def latent_cells(mask: np.ndarray, cell: int) -> np.ndarray:
    """A float mask (1 = repaint) widened to whole `cell` × `cell` blocks: every block with a painted pixel.

    The UNet repaints latent pixels, one per block, and diffusers samples the mask at each block's top-left
    pixel only, so a thin stroke elsewhere in a block would be lost; this keeps every stroke."""
    height, width = mask.shape
    if height % cell or width % cell:
        raise SettingsError(f"the mask is {width} x {height} pixels: not whole latent cells of {cell} pixels")
    blocks = mask.reshape(height // cell, cell, width // cell, cell).any(axis=(1, 3))
    return np.repeat(np.repeat(blocks, cell, axis=0), cell, axis=1).astype(np.float32)


def overlay(picture: PIL.Image.Image, mask, color: tuple[int, int, int] = (255, 0, 170), opacity: float = 0.55) -> PIL.Image.Image:
    """The picture with the mask's white part tinted (the mask painter's view), to look at a mask in place."""
    if not isinstance(picture, PIL.Image.Image):
        raise wrong_type("picture", "a PIL image", picture)
    painted = read(mask, picture.size)
    tint = PIL.Image.new("RGB", picture.size, color)
    alpha = PIL.Image.fromarray((painted * round(255 * opacity)).astype(np.uint8), "L")
    return PIL.Image.composite(tint, picture.convert("RGB"), alpha)


def coverage(mask) -> float:
    """The share of the picture the mask repaints, 0..1."""
    return float(read(mask).mean())
