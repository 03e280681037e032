"""Read a shapes-world picture back into words, by pixel statistics alone (no model involved).

`describe(image)` says what a picture shows, so the nano model's outputs can be scored:

    background  the named color nearest the median of the border pixels
    color       the named color nearest the median of the object's pixels, where the object is the
                largest connected region of pixels far from the background color (so a stray
                speck, say a decoder's corner artifact, is not part of it)
    shape       the shape whose outline, fitted into the object's bounding box, overlaps the object
                mask best (intersection over union)
    position    the anchor (center, left, right, top, bottom) nearest the object's box center
    size        small or large, whichever box side is nearer to the one the found shape implies

On clean renders of the world it is right every time (tests/test_nano.py checks hundreds).
"""

from collections import deque

import numpy as np
from PIL import Image, ImageDraw

from . import world

OBJECT_DISTANCE = 50.0  # below the closest pair of named colors (yellow/orange: 90) minus jitter  # RGB distance from the background color beyond which a pixel is the object
MIN_OBJECT_PIXELS = 12
EVEN_SLACK = 2.0  # RGB: how much nearer the background a pixel may look and still be half covered (each channel rounds by ≤ 0.5)


def nearest_color(rgb) -> str:
    rgb = np.asarray(rgb, dtype=np.float64)
    return min(world.COLORS, key=lambda name: float(np.sum((np.asarray(world.COLORS[name]) - rgb) ** 2)))


def far_from(pixels: np.ndarray, background_rgb: np.ndarray) -> np.ndarray:
    """Pixels far enough from the background color to belong to an object."""
    return np.linalg.norm(pixels - background_rgb, axis=-1) > OBJECT_DISTANCE


def object_mask(pixels: np.ndarray, background_rgb: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of pixels far from the background color."""
    return largest_region(far_from(pixels, background_rgb))


def border_color(pixels: np.ndarray) -> np.ndarray:
    """The median color of a picture's outermost pixels: its background, in the shapes world."""
    return np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]), axis=0)


def picture_object(picture: Image.Image) -> np.ndarray:
    """The object's outline in a plain-background picture at its own size, for overlaps (IoU) with a scene's mask.

    object_mask finds the object; its outline then takes every pixel at least as near the object's color
    (the median of what was found) as the background's: the pixels the object covers half or more of, as
    world.object_mask draws them (EVEN_SLACK lets 8-bit rounding of a half-covered pixel count). On clean
    renders it is world.object_mask exactly. object_mask alone keeps every edge pixel 50 RGB from the
    background: a ring up to a pixel wide that costs a small object up to 15 % of its IoU on an exact render."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float64)
    background = border_color(pixels)
    found = object_mask(pixels, background)
    if not found.any():
        return found
    color = np.median(pixels[found], axis=0)
    return largest_region(np.linalg.norm(pixels - color, axis=-1) <= np.linalg.norm(pixels - background, axis=-1) + EVEN_SLACK)


def object_sizes(picture: Image.Image) -> list[int]:
    """Pixels of each separate object on a plain background, largest first (specks under MIN_OBJECT_PIXELS left out)."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float64)
    left, sizes = far_from(pixels, border_color(pixels)), []
    while (region := largest_region(left)).sum() >= MIN_OBJECT_PIXELS:
        sizes.append(int(region.sum()))
        left &= ~region
    return sizes


def largest_region(mask: np.ndarray) -> np.ndarray:
    """The biggest 8-connected region of a boolean mask (all False when the mask is)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    sizes = [0]
    height, width = mask.shape
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        label, queue = len(sizes), deque([start])
        labels[start], size = label, 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = label
                        queue.append((ny, nx))
        sizes.append(size)
    return labels == int(np.argmax(sizes)) if len(sizes) > 1 else np.zeros_like(mask)


def describe(image: Image.Image, shapes: tuple[str, ...] = world.SHAPES) -> dict[str, str | float | None]:
    """What the picture shows; the object's attributes are None when no object stands out. `shapes`: the
    outlines to choose from (nano's world; add world.NEW_SHAPES to judge a fine-tuned model's new shape)."""
    pixels = np.asarray(image.convert("RGB").resize((world.SIDE, world.SIDE)), dtype=np.float64)
    background_rgb = border_color(pixels)
    found: dict[str, str | float | None] = {"background": nearest_color(background_rgb)}
    mask = object_mask(pixels, background_rgb)
    if mask.sum() < MIN_OBJECT_PIXELS:
        return found | {"color": None, "shape": None, "position": None, "size": None, "fit": 0.0}
    found["color"] = nearest_color(np.median(pixels[mask], axis=0))
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    cx, cy = (left + right) / 2, (top + bottom) / 2
    fits = {shape: _overlap(mask, shape, cx, cy, right - left, bottom - top) for shape in shapes}
    found["shape"] = max(fits, key=fits.get)
    found["fit"] = fits[found["shape"]]
    found["position"] = min(world.POSITIONS, key=lambda p: (world.POSITIONS[p][0] - cx) ** 2 + (world.POSITIONS[p][1] - cy) ** 2)
    side = max(right - left, bottom - top) / _extent(found["shape"])  # the box side the shape was drawn in
    found["size"] = min(world.SIZES, key=lambda s: abs(world.SIZES[s] - side))
    return found


def _extent(shape: str) -> float:
    """How much of its box a shape's outline spans (a square spans 0.8 of it)."""
    points = np.array(world.outline(shape, 0, 0, 2, 2))
    return float((points.max(axis=0) - points.min(axis=0)).max() / 2)


def _overlap(mask: np.ndarray, shape: str, cx: float, cy: float, width: float, height: float) -> float:
    """IoU of the mask with `shape` drawn so that its own bounding box is the mask's box."""
    points = np.array(world.outline(shape, 0, 0, 1, 1))
    low, high = points.min(axis=0), points.max(axis=0)
    # map the outline's own box onto the mask's box
    scaled = (points - (low + high) / 2) / (high - low) * np.array([width, height]) + np.array([cx, cy])
    scale = world.SUPERSAMPLE
    canvas = Image.new("L", (world.SIDE * scale, world.SIDE * scale), 0)
    ImageDraw.Draw(canvas).polygon([(x * scale, y * scale) for x, y in scaled], fill=255)
    template = np.asarray(canvas.resize((world.SIDE, world.SIDE), Image.Resampling.BOX)) > 127
    union = np.logical_or(mask, template).sum()
    return float(np.logical_and(mask, template).sum() / union) if union else 0.0


def agrees(found: dict, wanted: dict) -> dict[str, bool]:
    """For each attribute the prompt names, whether the picture shows it."""
    return {key: found.get(key) == value for key, value in wanted.items()}


def score(pictures: list[Image.Image], prompts: list[str], shapes: tuple[str, ...] = world.SHAPES) -> dict[str, float]:
    """How well pictures show their prompts, as shares of the pictures: "shape" (the prompt's shape is the one found)
    and "all" (every attribute the prompt names is). `shapes`: those the judge chooses among."""
    if len(pictures) != len(prompts) or not prompts:
        raise ValueError(f"score needs one picture per prompt, got {len(pictures)} pictures for {len(prompts)} prompts")
    found = [(describe(picture, shapes=shapes), world.parse(prompt)) for picture, prompt in zip(pictures, prompts)]
    return {
        "shape": sum(f.get("shape") == wanted.get("shape") for f, wanted in found) / len(found),
        "all": sum(all(agrees(f, wanted).values()) for f, wanted in found) / len(found),
    }


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks (0 when both are empty): how well a picture's object
    (`picture_object`) lands on another's, e.g. a ControlNet hint's."""
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def shows_colors(picture: Image.Image, scene: world.Scene) -> bool:
    """Does the picture show the scene's object and background colors?"""
    return all(agrees(describe(picture), {"color": scene.color, "background": scene.background}).values())
