"""Sample input images drawn on the spot with PIL: nothing to download, the same pixels everywhere.

    samples()["sketch"]       # a rough hand-drawn-looking sketch, for image→image
    samples()["rough star"]   # a wobbly star, for the nano model's image→image
    sample_names()

They stand in for the model card's photos (a cat, Starry Night) in notebooks and widget menus.
"""

import math

import PIL.Image
from PIL import ImageDraw, ImageFilter

from .errors import SettingsError

SIZE = 256


def _sketch() -> PIL.Image.Image:
    """Crayon-like shapes on paper: a sun, a hill and a house, drawn with wobbly thick lines."""
    im = PIL.Image.new("RGB", (SIZE, SIZE), (250, 246, 235))
    d = ImageDraw.Draw(im)
    d.polygon([(0, 200), (70, 150), (150, 175), (256, 140), (256, 256), (0, 256)], fill=(120, 190, 90))
    d.rectangle([110, 120, 180, 190], fill=(200, 80, 60), outline=(60, 30, 20), width=4)
    d.polygon([(100, 122), (145, 80), (190, 122)], fill=(150, 60, 40), outline=(60, 30, 20))
    d.ellipse([20, 20, 80, 80], fill=(250, 200, 40), outline=(220, 150, 0), width=4)
    return im.filter(ImageFilter.GaussianBlur(1.2))


def _circle() -> PIL.Image.Image:
    im = PIL.Image.new("RGB", (SIZE, SIZE), (40, 70, 200))
    ImageDraw.Draw(im).ellipse([64, 64, 192, 192], fill=(220, 30, 30))
    return im


def _rough_star() -> PIL.Image.Image:
    """A wobbly, off-colour star drawn by hand on a blue page: for image→image to clean up."""
    im = PIL.Image.new("RGB", (SIZE, SIZE), (35, 60, 190))
    wobble = [1.0, 0.9, 1.08, 0.95, 1.04, 0.88, 1.1, 0.97, 0.92, 1.05]
    points = []
    for i in range(10):
        radius = (100 if i % 2 == 0 else 42) * wobble[i]
        angle = -math.pi / 2 + math.pi * i / 5 + 0.06 * math.sin(3 * i)
        points.append((128 + radius * math.cos(angle), 140 + radius * math.sin(angle)))
    ImageDraw.Draw(im).polygon(points, fill=(235, 205, 60), outline=(200, 160, 30))
    return im.filter(ImageFilter.GaussianBlur(2.0))


def _swirls() -> PIL.Image.Image:
    """Blue and yellow brush swirls: a stand-in for a painting's style."""
    im = PIL.Image.new("RGB", (SIZE, SIZE), (20, 40, 110))
    d = ImageDraw.Draw(im)
    for k in range(14):
        r = 12 + k * 9
        colour = (240, 210, 60) if k % 3 == 0 else (70, 120, 210)
        box = [128 - r, 110 - r * 0.7, 128 + r, 110 + r * 0.7]
        d.arc(box, start=(k * 47) % 360, end=(k * 47) % 360 + 200, fill=colour, width=5)
    for i in range(8):
        x, y = 30 + 28 * i, 30 + 10 * math.sin(i)
        d.ellipse([x - 6, y - 6, x + 6, y + 6], fill=(250, 230, 120))
    return im


def _gradient() -> PIL.Image.Image:
    return PIL.Image.linear_gradient("L").resize((SIZE, SIZE)).convert("RGB")


_MAKERS = {"sketch": _sketch, "rough star": _rough_star, "red circle": _circle, "swirls": _swirls, "gradient": _gradient}


def sample_names() -> list[str]:
    return list(_MAKERS)


def samples() -> dict[str, PIL.Image.Image]:
    return {name: make() for name, make in _MAKERS.items()}


def sample(name: str) -> PIL.Image.Image:
    if not isinstance(name, str) or name not in _MAKERS:
        raise SettingsError(f"unknown sample {name!r}: choose one of {sample_names()}")
    return _MAKERS[name]()
