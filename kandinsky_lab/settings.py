"""What to generate: one frozen dataclass per task, and the checks that keep its values sensible.

Every knob a learner can turn is a field here, named after the diffusers argument it feeds. The
generation functions take these objects and nothing else, so a notebook, a widget panel, a sweep
and a PNG's metadata all describe a picture the same way. Change one with `dataclasses.replace`.

Seeds: image `i` of a call uses prior seed `seed + i` and decoder seed `decoder_seed + i`
(`decoder_seed` defaults to `seed`). The two stages draw from separate CPU generators, so changing a
prior setting never changes the decoder's starting noise.
"""

import math
from dataclasses import dataclass

import PIL.Image

MAX_SEED = 2**63 - 1
MODES = ("lerp", "slerp")
SAMPLERS = ("ddpm", "ddim", "dpm++", "unipc", "euler")  # the decoder's scheduler (samplers.py)
# Allowed ranges. The prior's UnCLIPScheduler spaces its timesteps by (1000 - 1) / (steps - 1), so it
# needs 2 steps or more; neither scheduler has more than its 1000 training timesteps to offer.
WHOLE_RANGES = {"prior_steps": (2, 1000), "steps": (1, 1000), "num_images": (1, 64)}
NUMBER_RANGES = {"prior_guidance_scale": (0.0, 100.0), "guidance_scale": (0.0, 100.0)}


@dataclass(frozen=True, kw_only=True)
class Sampling:
    """Settings shared by every task: the two diffusion stages, the picture size, seeds."""

    prior_guidance_scale: float = 4.0  # classifier-free guidance of the prior; <= 1 turns it off
    prior_steps: int = 25  # denoising steps of the prior (text embedding -> CLIP image embedding), >= 2
    guidance_scale: float = 4.0  # classifier-free guidance of the decoder; <= 1 turns it off
    steps: int = 50  # denoising steps of the decoder (UNet on MoVQ latents)
    sampler: str = "ddpm"  # the decoder's scheduler: "ddpm" (the model card's), "ddim", "dpm++", "unipc", "euler"
    height: int | None = None  # pixels; None: the model's default size
    width: int | None = None  # pixels; None: the model's default size
    num_images: int = 1  # images per call, seeds counting up from `seed`
    seed: int = 0  # prior seed of the first image
    decoder_seed: int | None = None  # decoder seed of the first image; None: the same number as `seed`

    def prior_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.num_images)]

    def decoder_seeds(self) -> list[int]:
        first = self.seed if self.decoder_seed is None else self.decoder_seed
        return [first + i for i in range(self.num_images)]


@dataclass(frozen=True, kw_only=True)
class TextToImage(Sampling):
    """A prompt in, pictures out: prior then decoder."""

    prompt: str = ""
    negative_prompt: str = ""  # "" gives the decoder the model's 'empty image' embedding, as diffusers does


@dataclass(frozen=True, kw_only=True)
class ImageToImage(TextToImage):
    """Like TextToImage, but the decoder starts from a noised copy of `image` instead of pure noise."""

    image: PIL.Image.Image | None = None
    strength: float = 0.3  # 0 keeps the image, 1 ignores it; the decoder runs int(steps * strength) steps


@dataclass(frozen=True, kw_only=True)
class Interpolation(Sampling):
    """A weighted mix of prompts and images in CLIP image-embedding space, decoded to pictures."""

    items: tuple[str | PIL.Image.Image, ...] = ()
    weights: tuple[float, ...] = ()
    mode: str = "lerp"  # "lerp": weighted sum, as diffusers' prior.interpolate; "slerp": along the sphere
    normalize_weights: bool = False  # divide the weights by their sum first
    negative_prompt: str = ""


def check_sampling(s: Sampling) -> None:
    """Raise ValueError naming the first field whose value cannot work."""
    for name, (low, high) in WHOLE_RANGES.items():
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    for name, (low, high) in NUMBER_RANGES.items():
        value = getattr(s, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    if s.sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}, got {s.sampler!r}")
    for name in ("seed", "decoder_seed"):
        value = getattr(s, name)
        if value is None and name == "decoder_seed":
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED - s.num_images:
            raise ValueError(f"{name} must be a whole number from 0 to {MAX_SEED - s.num_images}, got {value!r}")
    for name in ("height", "width"):
        value = getattr(s, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"{name} must be a whole number of pixels or None, got {value!r}")


def check_text(s: TextToImage) -> None:
    check_sampling(s)
    if not isinstance(s.prompt, str) or not s.prompt.strip():
        raise ValueError("prompt must be a non-empty text")
    if not isinstance(s.negative_prompt, str):
        raise ValueError(f"negative_prompt must be a text, got {type(s.negative_prompt).__name__}")


def check_image_to_image(s: ImageToImage) -> None:
    check_text(s)
    if not isinstance(s.image, PIL.Image.Image):
        raise ValueError(f"image must be a PIL image, got {type(s.image).__name__}")
    if not isinstance(s.strength, (int, float)) or not 0 < s.strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {s.strength!r}")
    if int(s.steps * s.strength) < 1:
        raise ValueError(f"steps * strength must be >= 1 (got {s.steps} * {s.strength}); raise steps or strength")


def check_interpolation(s: Interpolation) -> None:
    check_sampling(s)
    if not s.items:
        raise ValueError("items must hold at least one prompt or image")
    if len(s.items) != len(s.weights):
        raise ValueError(f"items and weights must have the same length, got {len(s.items)} and {len(s.weights)}")
    for i, item in enumerate(s.items):
        if isinstance(item, str):
            if not item.strip():
                raise ValueError(f"items[{i}] is an empty prompt")
        elif not isinstance(item, PIL.Image.Image):
            raise ValueError(f"items[{i}] must be a prompt or a PIL image, got {type(item).__name__}")
    for i, w in enumerate(s.weights):
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weights[{i}] must be a finite number >= 0, got {w!r}")
    if sum(s.weights) <= 0:
        raise ValueError("weights must not all be zero")
    if s.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {s.mode!r}")
    if not isinstance(s.negative_prompt, str):
        raise ValueError(f"negative_prompt must be a text, got {type(s.negative_prompt).__name__}")



def check(settings: Sampling) -> None:
    """Run the checks of the task `settings` belongs to (sizes are checked against a model: sizes.py)."""
    for cls, checker in ((ImageToImage, check_image_to_image), (TextToImage, check_text), (Interpolation, check_interpolation)):
        if isinstance(settings, cls):
            return checker(settings)
    raise TypeError(f"settings must be TextToImage, ImageToImage or Interpolation, got {type(settings).__name__}")
