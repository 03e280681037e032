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
import time

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

from . import world
from .settings import ImageToImage, Interpolation, Sampling, TextToImage, Variations

WORD = re.compile(r"[a-z0-9]+")
CALIBRATION_SCALES = (1, 2)  # UNet and MoVQ timed at the trained side × these, to fit time per pixel
ATTENTION_PROBE_TOKENS = 2048  # one attention call of this many tokens measures the machine's attention speed


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


def nearest_prompt(texts: list[str]) -> str:
    """The world's caption closest to what the texts name: their shape, colors, size and place, the rest filled in."""
    named = world.parse(" ".join(t for t in texts[:1] if isinstance(t, str)))
    color = named.get("color", "red")
    background = named.get("background") or ("white" if color != "white" else "black")
    scene = world.Scene(named.get("shape", "circle"), color, background, named.get("size", "large"), named.get("position", "center"))
    return world.canonical(scene)


def _attention_sizes(module: torch.nn.Module, call) -> list[tuple[int, int, int, int]]:
    """(batch, query tokens, extra key tokens, inner width) of every attention layer that `call` runs."""
    seen, hooks = [], []

    def record(layer, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        batch, tokens = x.shape[0], (x.shape[2] * x.shape[3] if x.dim() == 4 else x.shape[1])
        extra = kwargs.get("encoder_hidden_states")
        seen.append((batch, tokens, 0 if extra is None else extra.shape[1], layer.inner_dim))

    for layer in module.modules():
        if isinstance(layer, Attention):
            hooks.append(layer.register_forward_pre_hook(record, with_kwargs=True))
    try:
        call()
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def _timed(call, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    call()  # the first call of a shape chooses kernels
    sync(device)
    start = time.perf_counter()
    call()
    sync(device)
    return time.perf_counter() - start


def calibrate(kit, wait: bool = True) -> dict | None:
    """`measure(kit)` once per Kit, holding the Kit's lock; None when `wait` is False and a run holds it."""
    if kit.timing is not None:
        return kit.timing
    if not kit.lock.acquire(blocking=wait):
        return None
    try:
        if kit.timing is None:
            kit.timing = measure(kit)
        return kit.timing
    finally:
        kit.lock.release()


@torch.no_grad()
def measure(kit) -> dict:
    """Measure, once per Kit, what the time estimate needs (a few tenths of a second on nano's CPU).

    A UNet step and a MoVQ decode cost a fixed part, a part linear in the pixels (convolutions), and
    attention, which grows with the square of the tokens and takes over at large sizes. So: both are
    timed at the trained size and twice its side (the linear line), their attention layers' token
    counts are recorded, and one attention call gives this machine's attention speed.
    """
    unet, movq, prior = kit.decoder.unet, kit.decoder.movq, kit.prior.prior
    device, dtype, side = kit.execution_device, kit.dtype, kit.trained_size
    factor = 2 ** (len(movq.config.block_out_channels) - 1)
    timing = {"pixels": side * side}
    for name, module in (("unet", unet), ("movq", movq)):
        points = []
        for scale in CALIBRATION_SCALES:
            s = side * scale // factor
            latents = torch.zeros(2, unet.config.in_channels, s, s, device=device, dtype=dtype)
            embeds = torch.zeros(2, unet.config.encoder_hid_dim, device=device, dtype=dtype)
            if name == "unet":
                call = lambda: unet(latents, torch.tensor(500, device=device), encoder_hidden_states=None, added_cond_kwargs={"image_embeds": embeds})  # noqa: E731
            else:
                call = lambda: movq.decode(latents[:1, : movq.config.latent_channels], force_not_quantize=True)  # noqa: E731
            points.append(((side * scale) ** 2, _timed(call, device)))
        (p0, t0), (p1, t1) = points
        per_pixel = max(0.0, (t1 - t0) / (p1 - p0))
        # attention layers' token counts, recorded at the larger size (the last `call`)
        attention = _attention_sizes(module, call)
        timing[name] = {"fixed": max(0.0, t0 - per_pixel * p0), "per_pixel": per_pixel, "attention": attention, "attention_pixels": p1}
    q = torch.zeros(1, 1, ATTENTION_PROBE_TOKENS, 64, device=device, dtype=dtype)
    timing["attention_flops_per_s"] = 4 * ATTENTION_PROBE_TOKENS**2 * 64 / _timed(lambda: F.scaled_dot_product_attention(q, q, q), device)
    dim = prior.config.embedding_dim
    width = prior.encoder_hidden_states_proj.in_features if prior.encoder_hidden_states_proj is not None else dim
    hidden = torch.zeros(2, dim, device=device, dtype=dtype)
    tokens = torch.zeros(2, prior.config.num_embeddings, width, device=device, dtype=dtype)
    mask = torch.ones(2, prior.config.num_embeddings, dtype=torch.bool, device=device)
    timing["prior_step_s"] = _timed(lambda: prior(hidden, timestep=500, proj_embedding=hidden, encoder_hidden_states=tokens, attention_mask=mask), device)
    return timing


def _call_seconds(timing: dict, name: str, pixels: int) -> float:
    """One UNet step or MoVQ decode at `pixels`: the linear part plus attention, whose tokens grow with the pixels."""
    part = timing[name]
    scale = pixels / part["attention_pixels"]
    flops = sum(4 * b * (n * scale) * (n * scale + m) * d for b, n, m, d in part["attention"])
    measured = sum(4 * b * n * (n + m) * d for b, n, m, d in part["attention"])  # already inside the linear line
    extra = max(0.0, flops - measured * scale) / timing["attention_flops_per_s"]
    return part["fixed"] + part["per_pixel"] * pixels + extra


def expected_seconds(kit, settings: Sampling, height: int, width: int, wait: bool = True) -> float | None:
    """Roughly how long the run will take here: prior steps, decoder steps and the MoVQ decode, per image.
    None when `wait` is False and the calibration cannot run now (a generation holds the Kit)."""
    timing = calibrate(kit, wait)
    if timing is None:
        return None
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
    unknown = unknown_words(kit.vocabulary, texts)
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
    try_prompt = f'prompt="{nearest_prompt(texts)}"' if unknown else ""
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
