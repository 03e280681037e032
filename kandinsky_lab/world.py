"""The shapes world: the synthetic pictures and captions the "nano" model is trained on.

Each picture is 64×64 RGB with one flat-colored object on a flat background:

    shape       circle, square, triangle, star
    color       red, green, blue, yellow, orange, purple, white, black (CSS named colors)
    background  the same eight colors, never the object's own
    size        small or large
    position    center, left, right, top, bottom

Captions come from several templates. The canonical one is
"a {size} {color} {shape} on a {background} background"; shorter ones leave out the size, the
position or both. A caption that does not name a position describes an object in the center, so
"a red circle on a white background" means what a reader expects.

Everything is deterministic given a `random.Random`: `sample(rng)` draws a scene, `render(scene)`
draws it (4× supersampled, so edges are smooth), `caption(scene, rng)` describes it,
`parse(prompt)` reads the attributes back out of any caption, and `scene_for(prompt, rng)` makes a
scene that fits a prompt (a ground-truth picture to compare generated ones with).
"""

import math
import random
import re
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

from .errors import SettingsError

SIDE = 64
SHAPES = ("circle", "square", "triangle", "star")
NEW_SHAPES = ("heart", "cross")  # drawable, but never in nano's training pictures: fine-tuning teaches it (fine_tuning.py)
COLORS = {  # CSS named colors
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
SIZES = {"small": 26, "large": 42}  # side of the object's bounding box, in pixels
POSITIONS = {"center": (32, 32), "left": (20, 32), "right": (44, 32), "top": (32, 20), "bottom": (32, 44)}
PLACES = {"center": "in the center", "left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
TEMPLATES = (  # {place} is always filled; templates without it are only used for centered objects
    "a {size} {color} {shape} on a {background} background",
    "a {color} {shape} on a {background} background",
    "a {size} {color} {shape} {place} on a {background} background",
    "a {color} {shape} {place} on a {background} background",
    "a {color} {shape} {place}, {background} background",
    "{color} {shape} on {background}",
)
JITTER = {"color": 10, "side": 2, "shift": 2}  # ± per channel, ± pixels of size, ± pixels of position
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Scene:
    shape: str
    color: str
    background: str
    size: str = "large"
    position: str = "center"
    # jitter, drawn by `sample`; zero is the clean version of the scene
    dx: int = 0
    dy: int = 0
    dside: int = 0
    tint: tuple[int, int, int] = (0, 0, 0)
    back_tint: tuple[int, int, int] = (0, 0, 0)

    @property
    def box(self) -> tuple[float, float, float]:
        """(center x, center y, side) of the object's bounding box, in pixels."""
        x, y = POSITIONS[self.position]
        return x + self.dx, y + self.dy, SIZES[self.size] + self.dside


def sample(rng: random.Random, **fixed) -> Scene:
    """A random scene with jitter; keyword arguments fix attributes (e.g. color="red")."""
    color = fixed.get("color") or rng.choice(list(COLORS))
    background = fixed.get("background") or rng.choice([c for c in COLORS if c != color])
    if background == color:
        raise SettingsError(f"the object and the background cannot both be {color}")
    jitter = lambda amount: rng.randint(-amount, amount)  # noqa: E731
    return Scene(
        shape=fixed.get("shape") or rng.choice(SHAPES),
        color=color,
        background=background,
        size=fixed.get("size") or rng.choice(list(SIZES)),
        position=fixed.get("position") or rng.choice(list(POSITIONS)),
        dx=jitter(JITTER["shift"]),
        dy=jitter(JITTER["shift"]),
        dside=jitter(JITTER["side"]),
        tint=tuple(jitter(JITTER["color"]) for _ in range(3)),
        back_tint=tuple(jitter(JITTER["color"]) for _ in range(3)),
    )


def outline(shape: str, cx: float, cy: float, width: float, height: float) -> list[tuple[float, float]]:
    """The shape as a polygon filling the box of `width`×`height` centered at (cx, cy)."""
    if shape == "circle":
        points = [(math.cos(a), math.sin(a)) for a in (2 * math.pi * i / 48 for i in range(48))]
    elif shape == "square":
        points = [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]
    elif shape == "triangle":
        points = [(0.0, -1.0), (1.0, 0.8), (-1.0, 0.8)]
    elif shape == "star":
        points = []
        for i in range(10):
            radius = 1.0 if i % 2 == 0 else 0.45
            angle = -math.pi / 2 + math.pi * i / 5
            points.append((radius * math.cos(angle), radius * math.sin(angle) + 0.1))
    elif shape == "heart":
        points = _heart()
    elif shape == "cross":
        a = 0.34  # half the width of each bar
        points = [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a), (-a, -a)]
    else:
        raise SettingsError(f"unknown shape {shape!r}: use one of {', '.join(SHAPES + NEW_SHAPES)}")
    return [(cx + px * width / 2, cy + py * height / 2) for px, py in points]


def _heart(corners: int = 48) -> list[tuple[float, float]]:
    """The classic heart curve (x = 16 sin³t, y = 13 cos t − 5 cos 2t − 2 cos 3t − cos 4t), point down, filling [-1, 1]²."""
    ts = [2 * math.pi * i / corners for i in range(corners)]
    xs = [16 * math.sin(t) ** 3 for t in ts]
    ys = [-(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)) for t in ts]
    middle = (max(ys) + min(ys)) / 2
    half = max(max(xs), (max(ys) - min(ys)) / 2)
    return [(x / half, (y - middle) / half) for x, y in zip(xs, ys)]


def _tinted(color: str, tint: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(min(255, max(0, c + t)) for c, t in zip(COLORS[color], tint))


def render(scene: Scene) -> Image.Image:
    """The scene as a 64×64 RGB picture."""
    big = SIDE * SUPERSAMPLE
    image = Image.new("RGB", (big, big), _tinted(scene.background, scene.back_tint))
    cx, cy, side = (value * SUPERSAMPLE for value in scene.box)
    ImageDraw.Draw(image).polygon(outline(scene.shape, cx, cy, side, side), fill=_tinted(scene.color, scene.tint))
    return image.resize((SIDE, SIDE), Image.Resampling.BOX)


def object_mask(scene: Scene) -> Image.Image:
    """Where `render` draws the object: an L picture, 255 where the object covers half a pixel or more."""
    big = SIDE * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    cx, cy, side = (value * SUPERSAMPLE for value in scene.box)
    ImageDraw.Draw(canvas).polygon(outline(scene.shape, cx, cy, side, side), fill=255)
    return canvas.resize((SIDE, SIDE), Image.Resampling.BOX).point(lambda v: 255 if v >= 128 else 0)


def caption(scene: Scene, rng: random.Random) -> str:
    """One of the templates filled in for the scene; non-centered scenes always name their place."""
    templates = [t for t in TEMPLATES if "{place}" in t or scene.position == "center"]
    text = rng.choice(templates).format(
        size=scene.size, color=scene.color, shape=scene.shape, background=scene.background, place=PLACES[scene.position]
    )
    return with_articles(text)


def taught(shape: str = NEW_SHAPES[0], count: int = 12, seed: int = 1) -> tuple[list[Image.Image], list[str]]:
    """`count` rendered pictures of `shape` (a new one nano never saw, to teach it) and a caption each."""
    rng = random.Random(seed)
    scenes = [sample(rng, shape=shape) for _ in range(count)]
    return [render(s) for s in scenes], [caption(s, rng) for s in scenes]


def canonical(scene: Scene) -> str:
    """The canonical caption, naming the place only when it is not the center."""
    text = f"a {scene.size} {scene.color} {scene.shape}"
    if scene.position != "center":
        text += f" {PLACES[scene.position]}"
    return with_articles(f"{text} on a {scene.background} background")


def vocabulary() -> list[str]:
    """Every word a caption of this world can hold (templates, attributes, places, "an")."""
    texts = [*TEMPLATES, *SHAPES, *COLORS, *SIZES, *PLACES.values(), "an"]
    words = {w for text in texts for w in re.findall(r"[a-z]+", re.sub(r"\{\w+\}", " ", text))}
    return sorted(words)


def with_articles(text: str) -> str:
    """"a orange square" → "an orange square"."""
    return re.sub(r"\ba (?=[aeiou])", "an ", text)


def parse(prompt: str) -> dict[str, str]:
    """The attributes a caption names: shape, color, background, and size/position when given."""
    words = re.findall(r"[a-z]+", prompt.lower())
    found: dict[str, str] = {}
    colors = [w for w in words if w in COLORS]
    if colors:
        found["color"] = colors[0]
    if len(colors) > 1:
        found["background"] = colors[-1]
    for word in words:
        if word in SHAPES or word in NEW_SHAPES:
            found["shape"] = word
        elif word in SIZES:
            found["size"] = word
    for position, place in PLACES.items():
        if place in " ".join(words):
            found["position"] = position
    if "position" not in found and "shape" in found:
        found["position"] = "center"
    return found


def scene_for(prompt: str, rng: random.Random) -> Scene:
    """A random scene showing what the prompt names (the rest drawn at random): a reference picture."""
    return sample(rng, **parse(prompt))


def clean(scene: Scene) -> Scene:
    """The scene without jitter."""
    return replace(scene, dx=0, dy=0, dside=0, tint=(0, 0, 0), back_tint=(0, 0, 0))
