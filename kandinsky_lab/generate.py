"""The tasks as functions of (kit, settings): text→image, image→image, inpainting, depth ControlNet,
variations and interpolation.

Each one runs the same two stages:

    1. embeddings: prompt -> prior -> CLIP image embedding (or images -> CLIP image encoder, mixed)
    2. decoder:    embedding -> UNet denoising MoVQ latents -> MoVQ decoder -> pixels
                   (inpainting and ControlNet: a UNet of their own, which also reads the picture's latents
                   and the mask, or the depth hint; variations: the picture's own embedding, no prior)

    >>> import kandinsky_lab as kl
    >>> kit = kl.load("tiny")
    >>> result = kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", steps=10))
    >>> result.images[0]

Images are made in batches of `batch_size` (default: all at once; on CUDA as many at once as the
GPU's free memory is predicted to hold, with a note when that splits the batch). Stopping (a `StopSignal`, see
steps.py) ends the run after the current step and keeps the batches already finished. With
`save_to=folder` each image is written there (PNG with its settings, never overwriting) the moment
its batch is done, so nothing is lost if a later batch fails. On CUDA a size predicted not to fit
in the GPU's free memory is refused before the prior runs (memory.py); an out-of-memory error that
happens anyway is caught, the memory released, and re-raised as `GPUOutOfMemory` with a preset or
size that needs less.
"""


import dataclasses
import gc
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from . import extras, knowledge, masks, memory, mixing
from .embeddings import Embeddings, image_embedding, moved_embeddings, prompt_embeddings, truncation_notes, zero_embedding
from .errors import CallbackError, GPUOutOfMemory, SaveError, SettingsError, plain_number, wrong_type
from .images import to_rgb
from .kit import Kit, expect_kit
from .settings import (
    TASK_FUNCTIONS,
    ControlNet,
    ImageToImage,
    Inpaint,
    Interpolation,
    Sampling,
    TextToImage,
    Variations,
    check_controlnet,
    check_image_to_image,
    check_inpaint,
    check_interpolation,
    check_text,
    check_variations,
    expect_task,
    task_class,
)
from .sizes import check_size, model_size, nearest_sizes, resize_to
from .steps import Interrupted, OnStep, StopSignal, pipeline_callback


@dataclass
class Result:
    """Pictures and everything needed to make them again."""

    images: list[PIL.Image.Image]
    settings: Sampling  # as asked, with height and width (and a guidance left to the model) filled in
    prior_seeds: list[int]  # per image
    decoder_seeds: list[int]  # per image
    model: str  # the Kit's source
    batch_size: int = 1  # images per decoder call (numerics differ slightly between batch sizes)
    embeddings: Embeddings | None = None  # None if stopped during the prior
    interrupted: str | None = None  # e.g. "stopped during the decoder at step 3"
    notes: list[str] = field(default_factory=list)  # what the kit did to the inputs, in words
    paths: list[Path] = field(default_factory=list)  # where each image was saved (with `save_to`)

    @property
    def size(self) -> tuple[int, int]:
        return self.settings.height, self.settings.width


def text_to_image(
    kit: Kit,
    settings: TextToImage,
    *,
    on_step: OnStep | None = None,
    stop: StopSignal | None = None,
    batch_size: int | None = None,
    save_to: str | Path | None = None,
) -> Result:
    """Prompt -> prior -> decoder -> pictures."""
    expect_kit(kit)
    expect_task(settings, TextToImage)
    check_text(settings)
    settings = _with_size(kit, settings)
    notes = announce(kit, settings) + truncation_notes(kit, knowledge.prompt_texts(settings))
    return _run(kit, settings, lambda: _prompt_embeds(kit, settings, on_step, stop), on_step, stop, batch_size, save_to, notes=notes)


def image_to_image(
    kit: Kit,
    settings: ImageToImage,
    *,
    on_step: OnStep | None = None,
    stop: StopSignal | None = None,
    batch_size: int | None = None,
    save_to: str | Path | None = None,
) -> Result:
    """Like text_to_image, but the decoder starts from `settings.image` noised to `settings.strength`.

    With height/width None it renders at the model's own size (`start_image_size`), the image resized to it.
    """
    expect_kit(kit)
    expect_task(settings, ImageToImage)
    check_image_to_image(settings)
    rgb, converted = to_rgb(settings.image, "image")  # settings keep the image as given: metadata records that one
    height, width = planned_size(kit, settings)
    settings = dataclasses.replace(settings, height=height, width=width)
    init, resized = resize_to(rgb, height, width)
    notes = announce(kit, settings) + [n for n in (converted, resized) if n] + truncation_notes(kit, knowledge.prompt_texts(settings))
    return _run(kit, settings, lambda: _prompt_embeds(kit, settings, on_step, stop), on_step, stop, batch_size, save_to, init, notes=notes)


def inpaint(
    kit: Kit,
    settings: Inpaint,
    *,
    on_step: OnStep | None = None,
    stop: StopSignal | None = None,
    batch_size: int | None = None,
    save_to: str | Path | None = None,
) -> Result:
    """Repaint the white part of `settings.mask` in `settings.image` as the prompt describes.

    The decoder is the inpainting UNet (extras.py: loaded on the first call, sharing MoVQ and the
    scheduler). It works on the latent grid, so the mask is first widened to whole latent cells (one cell
    is `kit.latent_cell` pixels wide: 4 for nano, 8 for the real model): every painted pixel is
    repainted, however thin the stroke. Outside the mask the picture comes back through MoVQ (slightly
    changed); `keep_outside=True` pastes the original back there, blended over `feather` pixels.
    With height/width None it renders at the size image→image would (`start_image_size`).
    """
    expect_kit(kit)
    expect_task(settings, Inpaint)
    check_inpaint(settings)
    rgb, converted = to_rgb(settings.image, "image")
    height, width = planned_size(kit, settings)
    settings = dataclasses.replace(settings, height=height, width=width)
    init, resized = resize_to(rgb, height, width)
    wanted = masks.read(settings.mask, settings.image.size)  # checked: the image's size
    if wanted.shape != (height, width):
        wanted = masks.read(masks.to_image(wanted).resize((width, height), PIL.Image.Resampling.NEAREST))
    cells = masks.latent_cells(wanted, kit.latent_cell)
    paste = masks.feather(wanted, settings.feather) if settings.keep_outside else None
    notes = announce(kit, settings) + [n for n in (converted, resized) if n] + truncation_notes(kit, knowledge.prompt_texts(settings))
    extras.pipeline(kit, "inpaint")  # load the inpainting UNet now, so the memory check counts it
    embed = lambda: _prompt_embeds(kit, settings, on_step, stop)  # noqa: E731
    return _run(kit, settings, embed, on_step, stop, batch_size, save_to, init, notes=notes, inpaint_masks=(cells, paste))


def with_kit_guidance(kit: Kit, settings: ControlNet) -> ControlNet:
    """`settings` with a guidance_scale of None (the default) made the model's own: kit.guidance_scale("controlnet")."""
    if settings.guidance_scale is not None:
        return settings
    return dataclasses.replace(settings, guidance_scale=kit.guidance_scale("controlnet"))


def controlnet(
    kit: Kit,
    settings: ControlNet,
    *,
    on_step: OnStep | None = None,
    stop: StopSignal | None = None,
    batch_size: int | None = None,
    save_to: str | Path | None = None,
) -> Result:
    """Text→image (or, with `settings.image`, image→image) whose layout follows the depth hint.

    The ControlNet UNet (extras.py: loaded on the first call, sharing MoVQ and the scheduler) reads the
    hint beside the latents, at 8 × the latents' size (the size of the picture for the real model,
    twice it for nano): the kit resizes the hint to that. With a start image the prompt moves the
    picture's own embedding (emb2emb, `prior_strength`) before the decoder starts from the picture noised
    to `strength`, as the diffusers guide does.
    """
    expect_kit(kit)
    expect_task(settings, ControlNet)
    check_controlnet(settings)
    settings = with_kit_guidance(kit, settings)  # the result and its PNG record the number
    if settings.image is not None:
        height, width = planned_size(kit, settings)
        settings = dataclasses.replace(settings, height=height, width=width)
        rgb, converted = to_rgb(settings.image, "image")
        init, resized = resize_to(rgb, height, width)
        notes = [n for n in (converted, resized) if n]
    else:
        settings, init, notes = _with_size(kit, settings), None, []
    notes = announce(kit, settings) + notes + truncation_notes(kit, knowledge.prompt_texts(settings))
    hint = hint_tensor(kit, settings.hint, settings.height, settings.width)  # refuses an empty hint before any work
    pipe = extras.pipeline(kit, "controlnet") if init is None else extras.image_to_image_pipeline(kit, "controlnet")

    def draw(kwargs: dict, rows: int) -> list:
        # diffusers 0.42's ControlNet pipelines still take the older per-step `callback(step, t, latents)`
        on_end = kwargs.pop("callback_on_step_end")
        kwargs = kwargs | {"hint": hint.repeat(rows, 1, 1, 1), "callback": lambda i, t, latents: on_end(pipe, i, t, {"latents": latents})}
        if init is None:
            return pipe(**kwargs).images
        # init has the exact size already; diffusers 0.42's ControlNet image→image passes (width, height) to a
        # (height, width) resize, as its plain image→image does: no size keeps non-square pictures upright
        kwargs.update(height=None, width=None)
        return pipe(image=[init] * rows, strength=settings.strength, **kwargs).images

    if init is None:
        embed = lambda: _prompt_embeds(kit, settings, on_step, stop)  # noqa: E731
    else:
        embed = lambda: _moved(kit, settings, settings.prompt, settings.image, settings.prior_strength, settings.negative_prompt)  # noqa: E731
    steps = settings.steps if init is None else int(settings.steps * settings.strength)
    return _run(kit, settings, embed, on_step, stop, batch_size, save_to, notes=notes, draw=draw, decoder_steps=steps)


def variations(
    kit: Kit,
    settings: Variations,
    *,
    on_step: OnStep | None = None,
    stop: StopSignal | None = None,
    batch_size: int | None = None,
    save_to: str | Path | None = None,
) -> Result:
    """Pictures from `settings.image`'s CLIP image embedding alone (no prompt: unCLIP's variations).

    With a prompt, the prior's emb2emb first moves the picture's embedding towards the prompt by
    `prior_strength`. Each picture differs only by its decoder seed (and, with a prompt, its prior seed).
    """
    expect_kit(kit)
    expect_task(settings, Variations)
    check_variations(settings)
    to_rgb(settings.image, "image")
    settings = _with_size(kit, settings)
    texts = [t for t in (settings.prompt, settings.negative_prompt) if t.strip()]
    notes = announce(kit, settings) + truncation_notes(kit, texts)
    if settings.prompt.strip():
        embed = lambda: _moved(kit, settings, settings.prompt, settings.image, settings.prior_strength, settings.negative_prompt)  # noqa: E731
    else:
        embed = lambda: _picture_embeds(kit, settings)  # noqa: E731
    return _run(kit, settings, embed, on_step, stop, batch_size, save_to, notes=notes)


def _picture_embeds(kit: Kit, s: Variations) -> Embeddings:
    rows = len(s.prior_seeds())
    picture = image_embedding(kit, s.image).repeat(rows, 1)
    if s.negative_prompt.strip():
        negative = prompt_embeddings(kit, s.negative_prompt, "", s.prior_steps, s.prior_guidance_scale, s.prior_seeds()).image_embeds
    else:
        negative = zero_embedding(kit, rows)
    return Embeddings(picture, negative)


def _moved(kit: Kit, s: Sampling, prompt: str, image, strength: float, negative_prompt: str) -> Embeddings:
    """emb2emb for the prompt; the negative moved all the way to the negative prompt (strength 1, as the
    diffusers guide does), or the zero-image embedding without one."""
    seeds = s.prior_seeds()
    moved = moved_embeddings(kit, prompt, image, strength, s.prior_steps, s.prior_guidance_scale, seeds)
    if negative_prompt.strip():
        negative = moved_embeddings(kit, negative_prompt, image, 1.0, s.prior_steps, s.prior_guidance_scale, seeds)
    else:
        negative = zero_embedding(kit, len(seeds))
    return Embeddings(moved, negative)


def hint_tensor(kit: Kit, hint: PIL.Image.Image, height: int, width: int) -> torch.Tensor:
    """(1, 3, h, w) in [0, 1] on the Kit's device: the hint's grey levels at the size the ControlNet UNet's
    hint block reads (8 × the latents' size; its three stride-2 convolutions bring it to the latents')."""
    side = lambda pixels: pixels // kit.latent_cell * 8  # noqa: E731
    grey = to_rgb(hint, "hint")[0].convert("L").resize((side(width), side(height)), PIL.Image.Resampling.BILINEAR)
    values = torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255)
    return values[None, None].repeat(1, 3, 1, 1).to(device=kit.execution_device, dtype=kit.dtype)


def interpolate(
    kit: Kit,
    settings: Interpolation,
    *,
    on_step: OnStep | None = None,
    stop: StopSignal | None = None,
    batch_size: int | None = None,
    save_to: str | Path | None = None,
) -> Result:
    """Mix prompts and images with weights in CLIP image-embedding space, then decode the mix.

    Each prompt goes through the prior with the image's own prior seed, so changing a weight never
    changes what a prompt contributes; images go through the CLIP image encoder.
    """
    expect_kit(kit)
    expect_task(settings, Interpolation)
    check_interpolation(settings)
    for i, item in enumerate(settings.items):
        if isinstance(item, PIL.Image.Image):
            to_rgb(item, f"items[{i}]")  # refuses an empty picture before any work (image_embedding converts)
    settings = _with_size(kit, settings)
    notes = announce(kit, settings) + truncation_notes(kit, knowledge.prompt_texts(settings))
    return _run(kit, settings, lambda: interpolation_embeddings(kit, settings, on_step, stop), on_step, stop, batch_size, save_to, notes=notes)


def announce(kit: Kit, settings: Sampling) -> list[str]:
    """knowledge.py's notes on what the model will not understand, printed before the run (each once per Kit)."""
    return [_say(kit, line) for line in knowledge.notes(kit, settings)]


def _say(kit: Kit, line: str) -> str:
    """Print `line` unless this Kit has said it already; return it (for Result.notes)."""
    if line not in kit.said:
        kit.said.add(line)
        print(line)
    return line


def interpolation_embeddings(kit: Kit, settings: Interpolation, on_step=None, stop=None) -> Embeddings:
    """The mixed embeddings of `settings.items` (one row per image), and the negative to guide against."""
    expect_kit(kit)
    expect_task(settings, Interpolation)
    check_interpolation(settings)
    seeds = settings.prior_seeds()
    parts = []
    for item in settings.items:
        if isinstance(item, str):
            e = prompt_embeddings(kit, item, "", settings.prior_steps, settings.prior_guidance_scale, seeds, on_step, stop)
            parts.append(e.image_embeds)
        else:
            parts.append(image_embedding(kit, item).repeat(len(seeds), 1))
    mixed = mixing.mix(parts, list(settings.weights), settings.mode, settings.normalize_weights)
    if settings.negative_prompt:
        negative = prompt_embeddings(
            kit, settings.negative_prompt, "", settings.prior_steps, settings.prior_guidance_scale, seeds, on_step, stop
        ).image_embeds
    else:
        negative = zero_embedding(kit, len(seeds))
    return Embeddings(mixed, negative)


def _prompt_embeds(kit: Kit, s: TextToImage, on_step, stop) -> Embeddings:
    return prompt_embeddings(kit, s.prompt, s.negative_prompt, s.prior_steps, s.prior_guidance_scale, s.prior_seeds(), on_step, stop)


def planned_size(kit: Kit, settings: Sampling, batch_size: int | None = None) -> tuple[int, int]:
    """The (height, width) a task will render for `settings`, or ValueError saying why it cannot
    (the size rule, or on CUDA a size that will not fit in the GPU's free memory)."""
    expect_kit(kit)
    task_class(settings)
    if isinstance(settings, (ImageToImage, Inpaint, ControlNet)) and isinstance(settings.image, PIL.Image.Image) and (settings.height is None or settings.width is None):
        height, width, _ = start_image_size(kit, settings.image)
        settings = dataclasses.replace(settings, height=settings.height or height, width=settings.width or width)
    settings = _with_size(kit, settings)
    batch = batch_size or memory.fitting_batch(kit, settings.height, settings.width, settings.num_images)
    memory.check_fits(kit, settings.height, settings.width, min(batch, settings.num_images))
    return settings.height, settings.width


def start_image_size(kit: Kit, image: PIL.Image.Image) -> tuple[int, int, str]:
    """(height, width, why) image→image renders at when the settings give no size: the model's own size,
    at the start image's aspect ratio unless the model was trained on one square size only (nano)."""
    if kit.trained_size is not None:
        side = kit.trained_size
        height, width = model_size(image, side, kit.size_multiple, square=True)
        why = f"{kit.source} was trained on {side} × {side} pictures only; a start image of another size or shape gives deformed shapes"
    else:
        height, width = model_size(image, kit.default_size, kit.size_multiple)
        why = f"the model's own size ({kit.default_size} × {kit.default_size} pixels) at the start image's shape: it draws best at the size it was trained at"
    return height, width, why


def _with_size(kit: Kit, settings):
    """Fill in the model's default size and check the size rule (sizes.py)."""
    height = kit.default_size if settings.height is None else settings.height
    width = kit.default_size if settings.width is None else settings.width
    check_size(height, width, kit.size_multiple)
    return dataclasses.replace(settings, height=height, width=width)


def _run(kit: Kit, settings: Sampling, embed, on_step, stop, batch_size, save_to, init_image=None, notes=(), inpaint_masks=None, draw=None, decoder_steps=None) -> Result:
    """Embeddings, then the decoder batch by batch; a stop keeps the finished batches."""
    batch_size = plain_number(batch_size)
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)):
        raise wrong_type("batch_size", "a whole number >= 1 or None", batch_size)
    if batch_size is not None and batch_size < 1:
        raise SettingsError(f"batch_size must be a whole number >= 1 or None, got {batch_size!r}")
    if on_step is not None and not callable(on_step):
        raise wrong_type("on_step", "a function taking a kl.StepEvent (or None)", on_step)
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise wrong_type("stop", "a kl.StopSignal (or None)", stop)
    if save_to is not None:
        _check_save_to(save_to, settings)
    if batch_size is None:  # as many at a time as the GPU's free memory holds (all of them off CUDA)
        batch_size = memory.fitting_batch(kit, settings.height, settings.width, settings.num_images)
        if batch_size < settings.num_images:
            notes = [*notes, _say(kit, f"{settings.num_images} images in batches of {batch_size}: all at once would not fit in the GPU's free memory")]
    batch_size = min(batch_size, settings.num_images)
    memory.check_fits(kit, settings.height, settings.width, batch_size)
    result = Result([], settings, settings.prior_seeds(), settings.decoder_seeds(), kit.source, batch_size, notes=list(notes))
    with kit.lock:
        stage, out_of_memory = "prior", False
        try:
            result.embeddings = embed()
            stage = "decoder"
            decode(kit, result, on_step, stop, init_image, save_to, inpaint_masks, draw, decoder_steps)
        except Interrupted as stopped:
            result.interrupted = str(stopped)
        except torch.cuda.OutOfMemoryError:
            out_of_memory = True  # raised below: the error's traceback still holds the failed step's tensors
        except CallbackError as error:  # on_step raised: the run stopped; hand over what is finished
            error.result = result
            raise
        if out_of_memory:
            raise GPUOutOfMemory(_out_of_memory_advice(kit, result, stage))
    return result


def _check_save_to(save_to, settings: Sampling) -> None:
    """Before any work: `save_to` is a folder that exists or can be made and written, and the settings
    serialise into the PNG metadata. A picture is never made only to be lost at the saving step."""
    from .metadata import settings_to_dict  # metadata.py imports this module

    if not isinstance(save_to, (str, os.PathLike)):
        raise wrong_type("save_to", "a folder path (text or pathlib.Path) or None", save_to)
    folder = Path(save_to)
    if folder.exists() and not folder.is_dir():
        raise SettingsError(f"save_to {str(folder)!r} is a file, not a folder: choose a folder for the pictures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(f"save_to {str(folder)!r} cannot be created: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SettingsError(f"save_to {str(folder)!r} is not writable: choose another folder")
    try:
        json.dumps(settings_to_dict(settings))
    except (TypeError, ValueError) as error:
        raise SettingsError(f"these settings cannot be written into the PNG metadata: {error}") from None


def _out_of_memory_advice(kit: Kit, result: Result, stage: str) -> str:
    """Free what the failed call held, and say what would need less memory."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    s = result.settings
    tips = []
    if kit.offload != "sequential":
        better = "model" if kit.offload is None else "sequential"
        tips.append(f'load with offload="{better}"' + (" (fits a 16 GB T4)" if better == "model" else ""))
    if result.batch_size > 1:
        tips.append("batch_size=1")
    smaller = [nearest_sizes(int(v * 0.75), kit.size_multiple)[0] for v in (s.height, s.width)]
    if smaller != [s.height, s.width]:
        tips.append(f"a smaller size such as height={smaller[0]}, width={smaller[1]}")
    kept = f"; {len(result.images)} finished image(s) kept" + (" and saved" if result.paths else "") if result.images else ""
    return (
        f"the GPU ran out of memory during the {stage} at {s.width} x {s.height} "
        f"(offload={kit.offload!r}, {result.batch_size} image(s) per batch){kept}. Memory was released; "
        f"try {' or '.join(tips)}."
    )


def decode(kit: Kit, result: Result, on_step, stop, init_image=None, save_to=None, inpaint_masks=None, draw=None, decoder_steps=None) -> None:
    """Decoder stage: appends to `result.images` batch by batch (an interruption keeps what is done).

    With `inpaint_masks` = (mask on whole latent cells, soft paste-back mask or None), `init_image` is the
    picture to repaint, through the inpainting pipeline (extras.py). `draw(kwargs, rows)`, if given, makes
    a batch's pictures from the shared pipeline arguments (ControlNet); `decoder_steps` is then the number
    of steps it runs, for progress."""
    s, emb, seeds, size = result.settings, result.embeddings, result.decoder_seeds, result.batch_size
    starts = range(0, len(seeds), size)
    steps = int(s.steps * s.strength) if init_image is not None and inpaint_masks is None else s.steps
    steps = decoder_steps or steps
    with kit.sampler(s.sampler):
        for b, start in enumerate(starts):
            rows = emb.rows(start, start + size)
            kwargs = dict(
                image_embeds=rows.image_embeds,
                negative_image_embeds=rows.negative_image_embeds,
                height=s.height,
                width=s.width,
                num_inference_steps=s.steps,
                guidance_scale=s.guidance_scale,
                generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds[start : start + size]],
                callback_on_step_end=pipeline_callback("decoder", steps, b + 1, len(starts), on_step, stop),
            )
            if draw is not None:
                images = draw(kwargs, len(rows))
            elif inpaint_masks is not None:
                cells, paste = inpaint_masks
                # one picture and mask per row: diffusers' inpainting pipeline pairs them with the rows itself
                images = extras.pipeline(kit, "inpaint")(image=[init_image] * len(rows), mask_image=[cells] * len(rows), **kwargs).images
                if paste is not None:
                    images = [PIL.Image.composite(picture, init_image, paste) for picture in images]
            elif init_image is None:
                images = kit.decoder(**kwargs).images
            else:
                # init_image already has the exact size. height/width=None keeps it: diffusers' img2img (0.34 and
                # later) passes (width, height) to a (height, width) resize and would transpose non-square pictures.
                kwargs.update(height=None, width=None)
                images = kit.img2img(image=[init_image] * len(rows), strength=s.strength, **kwargs).images
            result.images.extend(images)
            if save_to is not None:
                from .metadata import save_image  # metadata.py imports this module

                new = range(len(result.images) - len(images), len(result.images))
                try:
                    result.paths += [save_image(result, i, save_to) for i in new]
                except OSError as error:  # a full disk, a folder removed meanwhile: keep the pictures
                    raise SaveError(
                        f"could not save to {save_to}: {error}; the {len(result.images)} finished picture(s) are in this error's .result",
                        result,
                    ) from error


def run(kit: Kit, settings: Sampling, **options) -> Result:
    """The task that `settings` describes: text_to_image, image_to_image, inpaint, controlnet, variations or interpolate."""
    tasks = {
        "image_to_image": image_to_image,
        "inpaint": inpaint,
        "controlnet": controlnet,
        "text_to_image": text_to_image,
        "variations": variations,
        "interpolate": interpolate,
    }
    return tasks[TASK_FUNCTIONS[task_class(settings)]](kit, settings, **options)
