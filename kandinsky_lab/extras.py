"""Extra decoder UNets — inpainting and depth ControlNet — loaded the first time a task needs one.

Kandinsky 2.2 ships each of these tasks as a repository of its own beside the decoder
(kandinsky-community/kandinsky-2-2-decoder-inpaint, …-controlnet-depth: unet/, movq/, scheduler/).
Only the UNet differs (the inpainting one reads 9 input channels: latents, the masked picture's
latents, the mask; the ControlNet one 8: latents and a depth hint, `addition_embed_type="image_hint"`),
so the kit loads just the `unet/` subfolder, through the same `from_pretrained` call for every source, and
builds the task's pipeline around the decoder's own MoVQ and scheduler: one extra UNet, never a second
copy of the rest. It is placed by the Kit's memory preset and kept on the Kit for later calls.

    source            where a task's UNet comes from
    "kandinsky-2-2"   kandinsky-community/kandinsky-2-2-decoder-inpaint, …-controlnet-depth (only unet/ is fetched)
    "nano", a folder  <folder>/decoder-inpaint/unet, <folder>/controlnet-depth/unet (nano's: training/inpaint.py, controlnet.py)
    "tiny"            built in-process with seeded random weights, for plumbing tests

Memory: with `offload=None` the task's UNet stays on the GPU beside the decoder's (the real one: 1.25 B
parameters, 2.5 GB in float16, so about 13 GiB at 768² where text→image peaks at 10.6: predicted from
the real-scale figures, not yet measured on a GPU). It is loaded before memory.py's check, so the check
counts it; with `offload="model"` only the UNet that runs is on the GPU.
"""

from pathlib import Path

import torch
from diffusers import KandinskyV22ControlnetImg2ImgPipeline, KandinskyV22ControlnetPipeline, KandinskyV22InpaintPipeline, UNet2DConditionModel

from . import devices
from .errors import GPUOutOfMemory, SourceError
from .quiet import quiet_loading

# task -> (folder beside prior/ and decoder/, hub repository, the pipeline class around the UNet)
TASKS = {
    "inpaint": ("decoder-inpaint", "kandinsky-community/kandinsky-2-2-decoder-inpaint", KandinskyV22InpaintPipeline),
    "controlnet": ("controlnet-depth", "kandinsky-community/kandinsky-2-2-controlnet-depth", KandinskyV22ControlnetPipeline),
}
IN_CHANNELS = {"inpaint": 9, "controlnet": 8}
EMBEDDING = {"inpaint": "image", "controlnet": "image_hint"}  # the UNet's addition_embed_type
# a second pipeline around the same UNet: image→image with the hint
IMAGE_TO_IMAGE = {"controlnet": KandinskyV22ControlnetImg2ImgPipeline}
TINY_SEED = 1


def pipeline(kit, task: str):
    """The Kit's pipeline for `task`, loading its UNet on the first call (later calls reuse it)."""
    with kit.lock:
        if task not in kit.extras:
            cls = TASKS[task][2]
            pipe = cls(unet=_load_unet(kit, task), scheduler=kit.decoder.scheduler, movq=kit.decoder.movq)
            pipe.set_progress_bar_config(disable=True)
            try:
                devices.place([pipe], kit.device, kit.offload)
            except torch.cuda.OutOfMemoryError:
                raise GPUOutOfMemory(
                    f"the {task} UNet does not fit beside the loaded model on the GPU: "
                    f'load with offload="model" (one UNet on the GPU at a time)'
                ) from None
            kit.extras[task] = pipe
        return kit.extras[task]


def image_to_image_pipeline(kit, task: str):
    """`task`'s image→image pipeline (ControlNet's), around the very same UNet, MoVQ and scheduler."""
    with kit.lock:
        name = f"{task}-img2img"
        if name not in kit.extras:
            pipe = IMAGE_TO_IMAGE[task](**pipeline(kit, task).components)
            pipe.set_progress_bar_config(disable=True)
            kit.extras[name] = pipe
        return kit.extras[name]


def unet_source(kit, task: str) -> str:
    """Where `task`'s UNet is loaded from, in words (for notes and errors)."""
    from .loading import HUB_SOURCES, NANO, NANO_FOLDER

    folder, repo, _ = TASKS[task]
    if kit.source == "tiny":
        return "random weights (tiny)"
    if kit.source in HUB_SOURCES:
        return repo
    return str((NANO_FOLDER if kit.source == NANO else Path(kit.source)) / folder)


def _load_unet(kit, task: str) -> UNet2DConditionModel:
    from .loading import DTYPE_ARG, HUB_SOURCES, _hub_ready

    folder, repo, _ = TASKS[task]
    if kit.source == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            config = {**kit.decoder.unet.config, "in_channels": IN_CHANNELS[task], "addition_embed_type": EMBEDDING[task]}
            unet = UNet2DConditionModel.from_config(config)
        return unet if kit.dtype == torch.float32 else unet.to(dtype=kit.dtype)
    if kit.source in HUB_SOURCES:
        reference, options = repo, _hub_ready(repo, only=("unet",))
    else:
        reference, options = Path(unet_source(kit, task)), {}
        if not (reference / "unet" / "config.json").is_file():
            raise SourceError(
                f"{kit.source} has no {task} UNet: looked for {reference / 'unet'} "
                f"(nano's are made by `python -m training.train --out <folder> --resume <folder>`; a folder of the "
                f"real model can copy {repo}'s unet/ there)"
            )
    try:
        with quiet_loading():
            unet = UNet2DConditionModel.from_pretrained(reference, subfolder="unet", **{DTYPE_ARG: kit.dtype, "use_safetensors": True, **options})
    except Exception as error:
        raise SourceError(f"could not load the {task} UNet from {reference}: {error}") from error
    if unet.config.in_channels != IN_CHANNELS[task] or unet.config.addition_embed_type != EMBEDDING[task]:
        raise SourceError(
            f"{reference}/unet takes {unet.config.in_channels} input channels ({unet.config.addition_embed_type!r}); "
            f"a {task} UNet takes {IN_CHANNELS[task]} ({EMBEDDING[task]!r})"
        )
    return unet
