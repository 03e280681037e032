"""One size rule for every task, and the image resizing that follows from it.

diffusers treats sizes differently per pipeline: text→image rounds height and width *up* to a
multiple of 64 (MoVQ's factor 8, squared), image→image resizes the input *down* to a multiple of 8.
The same settings would give two different picture sizes. The kit uses one rule for all tasks,
the stricter one, and says so instead of rounding behind the user's back:

    height and width must be multiples of `multiple` (64 for Kandinsky 2.2), between `multiple`
    and `max_side`.

With that rule both pipelines render exactly the size that was asked for.
"""

import math

import PIL.Image

from .errors import SettingsError, expect_whole, is_whole, wrong_type

MAX_SIDE = 2048  # Kandinsky 2.2 was trained up to 1536 px; beyond 2048 only memory runs out


def size_multiple(movq_block_out_channels: list[int]) -> int:
    """The multiple every side must have: MoVQ's downscale factor, squared (as in diffusers' text→image)."""
    factor = 2 ** (len(movq_block_out_channels) - 1)
    return factor * factor


def nearest_sizes(value: int, multiple: int) -> tuple[int, int]:
    """The valid sizes just below and just above `value`."""
    below = max(multiple, value // multiple * multiple)
    above = max(multiple, -(-value // multiple) * multiple)
    return below, above


def check_size(height: int, width: int, multiple: int, max_side: int = MAX_SIDE) -> None:
    """Raise SettingsError naming the side that breaks the rule and the valid sizes next to it."""
    multiple = expect_whole(multiple, "multiple", 1, 1024)
    for name, value in (("height", height), ("width", width)):
        if not is_whole(value):
            raise wrong_type(name, "a whole number of pixels", value)
        if value < multiple or value > max_side:
            raise SettingsError(f"{name}={value} is out of range: use {multiple} to {max_side} pixels")
        if value % multiple:
            below, above = nearest_sizes(value, multiple)
            raise SettingsError(f"{name}={value} is not a multiple of {multiple}: use {below} or {above}")


def fit_size(image: PIL.Image.Image, multiple: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The valid (height, width) closest to an image's own size (halves round up), within `max_side`."""
    if not isinstance(image, PIL.Image.Image):
        raise wrong_type("image", "a PIL image", image)
    multiple = expect_whole(multiple, "multiple", 1, 1024)
    width, height = image.size
    scale = min(1.0, max_side / max(width, height))
    snap = lambda v: min(max_side // multiple * multiple, max(multiple, int(v * scale / multiple + 0.5) * multiple))
    return snap(height), snap(width)


def model_size(image: PIL.Image.Image, side: int, multiple: int, square: bool = False) -> tuple[int, int]:
    """The valid (height, width) with about `side`² pixels at the image's aspect ratio, or `side` × `side` if `square`.

    image→image's default: the model draws best at its own size, whatever the start image's size is.
    """
    if square:
        return side, side
    scale = side / math.sqrt(image.width * image.height)
    snap = lambda v: min(MAX_SIDE // multiple * multiple, max(multiple, round(v * scale / multiple) * multiple))
    return snap(image.height), snap(image.width)


def resize_to(image: PIL.Image.Image, height: int, width: int) -> tuple[PIL.Image.Image, str | None]:
    """RGB `image` at exactly (height, width), and a note saying what was done (None if nothing)."""
    note = None
    if image.mode != "RGB":
        note = f"converted the image from {image.mode} to RGB"
        image = image.convert("RGB")
    if image.size != (width, height):
        was = f"{image.width}x{image.height}"
        image = image.resize((width, height), PIL.Image.Resampling.BICUBIC)
        note = (note + "; " if note else "") + f"resized the image from {was} to {width}x{height}"
    return image, note
