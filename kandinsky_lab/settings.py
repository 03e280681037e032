"""What to generate: one frozen dataclass per task, and the checks that keep its values sensible.

Every knob a learner can turn is a field here, named after the diffusers argument it feeds. The
generation functions take these objects and nothing else, so a notebook, a widget panel, a sweep
and a PNG's metadata all describe a picture the same way. Change one with `dataclasses.replace`.

Seeds: image `i` of a call uses prior seed `seed + i` and decoder seed `decoder_seed + i`
(`decoder_seed` defaults to `seed`). The two stages draw from separate CPU generators, so changing a
prior setting never changes the decoder's starting noise.
"""

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

import PIL.Image

from .errors import KitError, SettingsError, WrongType, is_real, is_whole, numpy_if_imported, plain_number, wrong_type

MAX_SEED = 2**63 - 1
MODES = ("lerp", "slerp")
SAMPLERS = ("ddpm", "ddim", "dpm++", "unipc", "euler")  # the decoder's scheduler (samplers.py)
SAMPLER_LABELS = dict(zip(SAMPLERS, ("DDPM", "DDIM", "DPM++ 2M", "UniPC", "Euler")))  # their names in grids, panels and PNGs
# Allowed ranges. The prior's UnCLIPScheduler spaces its timesteps by (1000 - 1) / (steps - 1), so it
# needs 2 steps or more; neither scheduler has more than its 1000 training timesteps to offer.
WHOLE_RANGES = {"prior_steps": (2, 1000), "steps": (1, 1000), "num_images": (1, 64)}
MAX_ADAPTER_SCALE = 4.0  # beyond it a LoRA only breaks the picture
NUMBER_RANGES = {"prior_guidance_scale": (0.0, 100.0), "guidance_scale": (0.0, 100.0)}


def is_array(value) -> bool:
    np = numpy_if_imported()
    return np is not None and isinstance(value, np.ndarray)


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
    adapter_scale: float | None = None  # how strongly a loaded LoRA adapter acts (0: the base model, 1: as trained); None: kit.load_adapter's scale

    def __post_init__(self):
        """numpy numbers become Python ones, and items/weights given as a list, array or generator a tuple,
        so sliders, np.arange and np.linspace work everywhere and metadata stays plain JSON."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("items", "weights") and (isinstance(value, (list, range, Iterator)) or is_array(value)):
                value = tuple(value)
            value = tuple(plain_number(v) for v in value) if f.name in ("items", "weights") and isinstance(value, tuple) else plain_number(value)
            object.__setattr__(self, f.name, value)

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
class Inpaint(TextToImage):
    """Repaint the white part of `mask` in `image` as the prompt describes; the black part is kept.

    White (True, 1) = repaint, as diffusers since 0.19 (older Kandinsky code repainted the black part).
    The prompt describes the whole picture you want, not only the repainted part."""

    image: PIL.Image.Image | None = None
    mask: "PIL.Image.Image | numpy.ndarray | None" = None  # masks.py: PIL L/1/RGBA (alpha) or a 2-D array, the image's size
    keep_outside: bool = False  # paste the original back outside the mask (else it has been through MoVQ, slightly changed)
    feather: float = 0.0  # with keep_outside: blend the paste over about this many pixels (hides the seam)

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.mask, list) or is_array(self.mask):  # one form from here on: an L picture (metadata saves it as PNG)
            from . import masks

            try:
                object.__setattr__(self, "mask", masks.to_image(masks.read(self.mask)))
            except KitError:
                pass  # check_inpaint says what is wrong with it


@dataclass(frozen=True, kw_only=True)
class ControlNet(TextToImage):
    """Text→image that keeps the layout of a depth hint; with `image`, image→image with the hint.

    The hint says *where* (bright = near: the object), the prompt *what*. With a start `image`, the
    prompt first moves the picture's own embedding by `prior_strength` (the prior's emb2emb), then
    the decoder starts from the picture noised to `strength`, as the diffusers guide does."""

    hint: PIL.Image.Image | None = None  # a depth picture (kl.depth_map(kit, picture)), drawn or uploaded
    guidance_scale: float | None = None  # None: the model's own, kit.guidance_scale("controlnet") (4 unless its folder says, as nano's does)
    image: PIL.Image.Image | None = None  # None: text→image with the hint
    strength: float = 0.5  # with image: 0 keeps it, 1 ignores it
    prior_strength: float = 0.85  # with image: how far the prompt moves the picture's embedding


@dataclass(frozen=True, kw_only=True)
class Variations(Sampling):
    """New pictures from a picture's CLIP image embedding alone: no prompt needed.

    With a prompt, the prior's emb2emb first moves the picture's embedding towards it by
    `prior_strength` (0 keeps the picture's embedding, 1 is the prompt's own)."""

    image: PIL.Image.Image | None = None
    prompt: str = ""  # "": variations of the picture
    prior_strength: float = 0.3  # with a prompt: how far it moves the embedding
    negative_prompt: str = ""


@dataclass(frozen=True, kw_only=True)
class Interpolation(Sampling):
    """A weighted mix of prompts and images in CLIP image-embedding space, decoded to pictures."""

    items: tuple[str | PIL.Image.Image, ...] = ()
    weights: tuple[float, ...] = ()
    mode: str = "lerp"  # "lerp": weighted sum, as diffusers' prior.interpolate; "slerp": along the sphere
    normalize_weights: bool = False  # divide the weights by their sum first
    negative_prompt: str = ""


def check_sampling(s: Sampling) -> None:
    """Raise SettingsError (WrongType for a wrong type) naming the first field whose value cannot work."""
    for name, (low, high) in WHOLE_RANGES.items():
        value = getattr(s, name)
        if not is_whole(value):
            raise wrong_type(name, f"a whole number from {low} to {high}", value)
        if not low <= value <= high:
            raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    for name, (low, high) in NUMBER_RANGES.items():
        value = getattr(s, name)
        left = isinstance(s, ControlNet) and name == "guidance_scale"  # None: the model's own (Kit.guidance_scale)
        if value is None and left:
            continue
        if not is_real(value):
            raise wrong_type(name, f"a number from {low:g} to {high:g}" + (" or None" if left else ""), value)
        if not math.isfinite(value) or not low <= value <= high:
            raise SettingsError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    if not isinstance(s.sampler, str) or s.sampler not in SAMPLERS:
        raise SettingsError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}, got {s.sampler!r}")
    for name in ("seed", "decoder_seed"):
        value = getattr(s, name)
        if value is None and name == "decoder_seed":
            continue
        if not is_whole(value):
            raise wrong_type(name, f"a whole number from 0 to {MAX_SEED - s.num_images}", value)
        if not 0 <= value <= MAX_SEED - s.num_images:
            raise SettingsError(f"{name} must be a whole number from 0 to {MAX_SEED - s.num_images}, got {value!r}")
    for name in ("height", "width"):
        value = getattr(s, name)
        if value is not None and not is_whole(value):
            raise wrong_type(name, "a whole number of pixels or None", value)
    if s.adapter_scale is not None:
        if not is_real(s.adapter_scale):
            raise wrong_type("adapter_scale", "a number (0: the base model, 1: the adapter as trained) or None", s.adapter_scale)
        if not math.isfinite(s.adapter_scale) or not -MAX_ADAPTER_SCALE <= s.adapter_scale <= MAX_ADAPTER_SCALE:
            raise SettingsError(f"adapter_scale must be a number from {-MAX_ADAPTER_SCALE:g} to {MAX_ADAPTER_SCALE:g} or None, got {s.adapter_scale!r}")


def check_words(name: str, text) -> None:
    """A text the tokenizer can read: a str that encodes as UTF-8 (no lone surrogates from broken copy-paste)."""
    if not isinstance(text, str):
        raise wrong_type(name, "a text", text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise SettingsError(f"{name} holds a character that is not text (a lone surrogate at position {error.start}); retype it") from None


def check_text(s: TextToImage) -> None:
    check_sampling(s)
    if not isinstance(s.prompt, str) or not s.prompt.strip():
        raise (SettingsError if isinstance(s.prompt, str) else WrongType)(
            "prompt must be a non-empty text" + ("" if isinstance(s.prompt, str) else f", got {type(s.prompt).__name__} {s.prompt!r}")
        )
    check_words("prompt", s.prompt)
    check_words("negative_prompt", s.negative_prompt)


def check_image_to_image(s: ImageToImage) -> None:
    check_text(s)
    if s.image is None:
        raise SettingsError("image is missing: choose or upload a start image (ImageToImage(image=…))")
    if not isinstance(s.image, PIL.Image.Image):
        raise wrong_type("image", "a PIL image (open a file with kl.images.open_image)", s.image)
    if not is_real(s.strength):
        raise wrong_type("strength", "a number in (0, 1]", s.strength)
    if not 0 < s.strength <= 1:
        raise SettingsError(f"strength must be in (0, 1], got {s.strength!r}")
    if int(s.steps * s.strength) < 1:
        raise SettingsError(f"steps * strength must be >= 1 (got {s.steps} * {s.strength}); raise steps or strength")


def check_inpaint(s: Inpaint) -> None:
    check_text(s)
    if s.image is None:
        raise SettingsError("image is missing: inpainting repaints part of a picture (Inpaint(image=…, mask=…))")
    if not isinstance(s.image, PIL.Image.Image):
        raise wrong_type("image", "a PIL image (open a file with kl.images.open_image)", s.image)
    if s.mask is None:
        raise SettingsError("mask is missing: paint the part to repaint white (kl.masks.rectangle(image.size, box), or the mask painter)")
    from . import masks  # numpy: only where a mask is checked (a thin client's other tasks never import it)

    found = masks.read(s.mask, s.image.size)
    if not found.any():
        raise SettingsError("the mask is all black: nothing to repaint. Paint the part to change white (white = repaint)")
    if found.all():
        raise SettingsError("the mask is all white: everything would be repainted, which is text→image: call kl.text_to_image, or keep some of the picture black")
    if not isinstance(s.keep_outside, bool):
        raise wrong_type("keep_outside", "True or False", s.keep_outside)
    if not is_real(s.feather):
        raise wrong_type("feather", "a number of pixels >= 0", s.feather)
    if not math.isfinite(s.feather) or not 0 <= s.feather <= 256:
        raise SettingsError(f"feather must be a number of pixels from 0 to 256, got {s.feather!r}")
    if s.feather and not s.keep_outside:
        raise SettingsError("feather blends the pasted original into the result: it needs keep_outside=True")


def _check_picture(name: str, value, what: str) -> None:
    if value is None:
        raise SettingsError(f"{name} is missing: {what}")
    if not isinstance(value, PIL.Image.Image):
        raise wrong_type(name, "a PIL image (open a file with kl.images.open_image)", value)


def check_fraction(name: str, value) -> None:
    """`value` is a number in (0, 1] (a strength)."""
    if not is_real(value):
        raise wrong_type(name, "a number in (0, 1]", value)
    if not 0 < value <= 1:
        raise SettingsError(f"{name} must be in (0, 1], got {value!r}")


def check_controlnet(s: ControlNet) -> None:
    check_text(s)
    _check_picture("hint", s.hint, "give a depth picture (kl.depth_map(kit, picture)), or draw one: white = near")
    if s.image is not None:
        _check_picture("image", s.image, "")
        check_fraction("strength", s.strength)
        check_fraction("prior_strength", s.prior_strength)
        if int(s.steps * s.strength) < 1:
            raise SettingsError(f"steps * strength must be >= 1 (got {s.steps} * {s.strength}); raise steps or strength")
        check_prior_strength(s.prior_steps, s.prior_strength)


def check_variations(s: Variations) -> None:
    check_sampling(s)
    _check_picture("image", s.image, "variations are made from a picture (Variations(image=…))")
    check_words("prompt", s.prompt)
    check_words("negative_prompt", s.negative_prompt)
    if s.prompt.strip():
        check_fraction("prior_strength", s.prior_strength)
        check_prior_strength(s.prior_steps, s.prior_strength)


def check_prior_strength(prior_steps: int, prior_strength: float) -> None:
    """emb2emb runs int(prior_steps * prior_strength) prior steps: at least one, or it has nothing to run."""
    if int(prior_steps * prior_strength) < 1:
        raise SettingsError(
            f"prior_steps * prior_strength must be >= 1 (got {prior_steps} * {prior_strength}): the prior would run no step; "
            "raise prior_steps or prior_strength"
        )


def check_interpolation(s: Interpolation) -> None:
    check_sampling(s)
    for name in ("items", "weights"):
        if not isinstance(getattr(s, name), tuple):
            raise wrong_type(name, "a tuple or list", getattr(s, name))
    if not s.items:
        raise SettingsError("items must hold at least one prompt or image")
    if len(s.items) != len(s.weights):
        raise SettingsError(f"items and weights must have the same length, got {len(s.items)} and {len(s.weights)}")
    for i, item in enumerate(s.items):
        if isinstance(item, str):
            if not item.strip():
                raise SettingsError(f"items[{i}] is an empty prompt")
            check_words(f"items[{i}]", item)
        elif not isinstance(item, PIL.Image.Image):
            raise wrong_type(f"items[{i}]", "a prompt or a PIL image", item)
    for i, w in enumerate(s.weights):
        if not is_real(w):
            raise wrong_type(f"weights[{i}]", "a finite number >= 0", w)
        if not math.isfinite(w) or w < 0:
            raise SettingsError(f"weights[{i}] must be a finite number >= 0, got {w!r}")
    if sum(s.weights) <= 0:
        raise SettingsError("weights must not all be zero")
    if not isinstance(s.mode, str) or s.mode not in MODES:
        raise SettingsError(f"mode must be one of {MODES}, got {s.mode!r}")
    if not isinstance(s.normalize_weights, bool):
        raise wrong_type("normalize_weights", "True or False", s.normalize_weights)
    check_words("negative_prompt", s.negative_prompt)


# The task function for each settings class, most specific first (ImageToImage, Inpaint and ControlNet are TextToImages).
TASK_FUNCTIONS = {
    ImageToImage: "image_to_image",
    Inpaint: "inpaint",
    ControlNet: "controlnet",
    TextToImage: "text_to_image",
    Variations: "variations",
    Interpolation: "interpolate",
}


def task_class(settings) -> type:
    """The settings class `settings` belongs to (a user's subclass counts as its task's class)."""
    for cls in TASK_FUNCTIONS:
        if isinstance(settings, cls):
            return cls
    raise wrong_type("settings", "TextToImage, ImageToImage, Inpaint, ControlNet, Variations or Interpolation", settings)


def expect_task(settings, cls: type) -> None:
    """Refuse another task's settings, naming the function that takes them (nothing is silently ignored)."""
    found = task_class(settings)
    if found is not cls:
        raise WrongType(
            f"{TASK_FUNCTIONS[cls]} takes {cls.__name__} settings, got {type(settings).__name__}: "
            f"call kl.{TASK_FUNCTIONS[found]}(kit, settings) instead"
        )


def check(settings: Sampling) -> None:
    """Run the checks of the task `settings` belongs to (sizes are checked against a model: sizes.py)."""
    checker = {
        ImageToImage: check_image_to_image,
        Inpaint: check_inpaint,
        ControlNet: check_controlnet,
        TextToImage: check_text,
        Variations: check_variations,
        Interpolation: check_interpolation,
    }
    checker[task_class(settings)](settings)
