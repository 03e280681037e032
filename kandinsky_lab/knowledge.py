"""What the loaded model knows, and a plain note when a prompt or a size goes beyond it.

Nano was trained on one small world: the few dozen words of its captions, at 64 × 64 pixels. A
prompt in other words, or a size many times its own, still runs — and gives noise after a long
wait, which a learner cannot tell from a broken install. So before a run the kit says, in one or two
lines, which words the model never saw, how many times its trained pixels the asked size is (with
the expected time on this machine), and the nearest prompt of its world at its own size:

    nano never saw the words 'portrait', 'of', 'young', 'women', 'eyes', 'cinematic', 'low', 'quality', 'bad' and will ignore them; 768 × 768 is 144× the pixels it was trained on (64 × 64): about 43 s here, and no clear shapes
    nano draws shapes: try prompt="a large blue circle on a white background" at height=width=64

The words and the size come from the model's own folder (`kandinsky_lab.json`: "vocabulary" and
"trained_size", written by the training script), so a retrained nano stays right. A model without a
recorded vocabulary — the real Kandinsky 2.2, which knows the words — gets no notes. The notes never
stop a run; they are printed once per Kit when a run starts, kept in `Result.notes`, saved in the
PNG, and shown in the panels as the prompt is typed.
"""

import re

from . import world
from .settings import ImageToImage, Interpolation, Sampling, TextToImage, Variations

WORD = re.compile(r"[a-z0-9]+")


def prompt_texts(settings: Sampling) -> list[str]:
    """The texts a task reads: prompt and negative prompt, or an interpolation's prompts and negative prompt."""
    if isinstance(settings, Interpolation):
        return [i for i in settings.items if isinstance(i, str)] + [settings.negative_prompt]
    if isinstance(settings, (TextToImage, Variations)):
        return [settings.prompt, settings.negative_prompt]
    return []


def unknown_words(vocabulary, texts: list[str]) -> list[str]:
    """The words of `texts` (lower case, in order, once each) that are not in `vocabulary`."""
    found = [w for text in texts if isinstance(text, str) for w in WORD.findall(text.lower())]
    return [w for w in dict.fromkeys(found) if w not in vocabulary]


def nearest_prompt(texts: list[str], vocabulary=None) -> str:
    """The world's caption closest to what the texts name: their shape (if `vocabulary` has it: a heart nano was
    never taught is no suggestion), colors, size and place, the rest filled in."""
    named = world.parse(" ".join(t for t in texts[:1] if isinstance(t, str)))
    color = named.get("color", "red")
    background = named.get("background") or ("white" if color != "white" else "black")
    shape = named.get("shape", "circle")
    if vocabulary is not None and shape not in vocabulary:
        shape = "circle"
    scene = world.Scene(shape, color, background, named.get("size", "large"), named.get("position", "center"))
    return world.canonical(scene)


def _call_seconds(timing: dict, name: str, pixels: int) -> float:
    """One UNet step or MoVQ decode at `pixels`: the linear part plus attention, whose tokens grow with the pixels."""
    part = timing[name]
    scale = pixels / part["attention_pixels"]
    flops = sum(4 * b * (n * scale) * (n * scale + m) * d for b, n, m, d in part["attention"])
    measured = sum(4 * b * n * (n + m) * d for b, n, m, d in part["attention"])  # already inside the linear line
    extra = max(0.0, flops - measured * scale) / timing["attention_flops_per_s"]
    return part["fixed"] + part["per_pixel"] * pixels + extra


def expected_seconds(kit, settings: Sampling, height: int, width: int, wait: bool = True) -> float | None:
    """Roughly how long the run will take where the kit's model is (timing.py measures it once per model).
    None when `wait` is False and the measurement cannot run now (a generation holds the Kit)."""
    return kit.expected_seconds(settings, height, width, wait)


def run_seconds(timing: dict, settings: Sampling, height: int, width: int) -> float:
    """From timing.py's measurement: prior steps, decoder steps and the MoVQ decode, per image."""
    steps = int(settings.steps * settings.strength) if isinstance(settings, ImageToImage) else settings.steps
    prompts = max(1, len([t for t in prompt_texts(settings) if t]))
    decoder = steps * _call_seconds(timing, "unet", height * width) + _call_seconds(timing, "movq", height * width)
    return (settings.prior_steps * timing["prior_step_s"] * prompts + decoder) * settings.num_images


def notes(kit, settings: Sampling, height: int | None = None, width: int | None = None, wait: bool = True) -> list[str]:
    """One or two lines on what the model will not understand in `settings`; [] when it knows it all (or knows any words).

    `wait=False` (the panels, while a run may hold the Kit) leaves the time out rather than wait for the Kit."""
    if kit.vocabulary is None or kit.trained_size is None:
        return []
    height = height or settings.height or kit.default_size
    width = width or settings.width or kit.default_size
    name, side = kit.source if kit.source == "nano" else "this model", kit.trained_size
    texts = prompt_texts(settings)
    taught = (getattr(kit, "adapter", None) and kit.adapter.info.get("words")) or []  # a loaded adapter's new words
    known = kit.vocabulary | set(taught)
    unknown = unknown_words(known, texts)
    factor = height * width / side**2
    problems = []
    if unknown:
        problems.append(f"{name} never saw the word{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} and will ignore {'them' if len(unknown) > 1 else 'it'}")
    if factor >= 2:  # nano's shapes deform from about 4× its pixels and fall apart from about 16× (notebook 00 shows it)
        seconds = expected_seconds(kit, settings, height, width, wait)
        took = (
            "" if seconds is None
            else f"about {seconds:.0f} s here, and " if seconds >= 1.5
            else "about a second here, and " if seconds >= 0.5
            else "under a second here, and "
        )  # fmt: skip
        problems.append(
            f"{width} × {height} is {factor:.3g}× the pixels it was trained on ({side} × {side}): "
            f"{took}{'no clear shapes' if factor >= 16 else 'shapes may come out deformed'}"
        )
    elif factor <= 0.5:
        problems.append(f"{width} × {height} is {factor:.2g}× the pixels it was trained on ({side} × {side}): shapes may come out deformed")
    if not problems:
        return []
    try_prompt = f'prompt="{nearest_prompt(texts, known)}"' if unknown else ""
    try_size = f"height=width={side}" if problems[-1].startswith(f"{width} × {height}") else ""
    suggestion = " at ".join(part for part in (try_prompt, try_size) if part)
    return ["; ".join(problems), f"{name} draws {'shapes' if kit.source == 'nano' else 'what it was trained on'}: try {suggestion}"]


def what_it_draws(kit) -> str:
    """One line for a visitor: what this model draws (from the words it was trained on) and a prompt to try."""
    if kit.vocabulary is None or kit.trained_size is None:
        return f'Kandinsky 2.2 draws what you describe. Try "{kit.example_prompts[0]}".'
    from .world import COLORS, SHAPES  # the shapes world nano is trained on

    shapes = [s for s in SHAPES if s in kit.vocabulary]
    colors = [c for c in COLORS if c in kit.vocabulary]
    name = kit.source if kit.source == "nano" else "This model"
    return (
        f"{name} is a miniature Kandinsky 2.2: it draws one {', '.join(shapes[:-1])} or {shapes[-1]} in {len(colors)} colours "
        f'on a {kit.trained_size} × {kit.trained_size} picture. Try "{kit.example_prompts[0]}".'
        if shapes and colors
        else f'{name} knows only the words it was trained on. Try "{kit.example_prompts[0]}".'
    )
