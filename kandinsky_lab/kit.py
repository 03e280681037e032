"""The loaded model: one copy of the Kandinsky 2.2 weights behind all three tasks.

The model card loads the weights up to three times (a text→image pipeline, an image→image pipeline,
a prior pipeline for interpolation). A `Kit` holds each module once and builds the three diffusers
pipelines around the same objects:

    prior    KandinskyV22PriorPipeline   text/image encoders + PriorTransformer
    decoder  KandinskyV22Pipeline        UNet + MoVQ, text→image and interpolation
    img2img  KandinskyV22Img2ImgPipeline the *same* UNet, scheduler and MoVQ objects as `decoder`
    emb2emb  KandinskyV22PriorEmb2EmbPipeline     the *same* prior modules: a prompt moves a picture's embedding
    extras   e.g. {"inpaint": KandinskyV22InpaintPipeline}: a task's own UNet, loaded on first use
             (extras.py), around the decoder's scheduler and MoVQ

It also remembers prior outputs (`prior_runs` counts real prior calls), so decoding the same
prompt again with other decoder settings skips the prior. Get one with `kandinsky_lab.load()`.
"""

import json
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import samplers
from .backend import EXAMPLE_PROMPTS, GUIDANCE_SCALE, GUIDED_TASKS, Backend  # noqa: F401 (re-exported)
from .errors import KitError, wrong_type
from .quiet import quiet_loading
from .sizes import size_multiple

with quiet_loading():  # the pipelines' first import loads transformers' CLIP processor, which warns about torchvision
    from diffusers import KandinskyV22Img2ImgPipeline, KandinskyV22Pipeline, KandinskyV22PriorEmb2EmbPipeline, KandinskyV22PriorPipeline

INFO_FILE = "kandinsky_lab.json"  # written beside prior/ and decoder/ by Kit.save
CACHE_ENTRIES = 512  # prior outputs kept: each is a few KB (one embedding per seed)


@dataclass(eq=False, repr=False)
class Kit(Backend):
    prior: KandinskyV22PriorPipeline
    decoder: KandinskyV22Pipeline
    source: str  # what was loaded: "nano", "tiny", a hub id, or a folder
    default_size: int  # height and width used when settings leave them as None
    device: torch.device
    dtype: torch.dtype
    offload: str | None = None
    vocabulary: frozenset[str] | None = None  # the words of the captions it was trained on, if recorded (knowledge.py)
    trained_size: int | None = None  # the side it was trained at, if recorded
    guidance: dict[str, float] | None = None  # decoder guidance per task, where its folder recommends one (kandinsky_lab.json)
    prior_runs: int = 0  # prior pipeline calls made so far (cached embeddings do not count)
    img2img: KandinskyV22Img2ImgPipeline = field(init=False)
    emb2emb: KandinskyV22PriorEmb2EmbPipeline = field(init=False)
    cache: OrderedDict = field(init=False, default_factory=OrderedDict, repr=False)
    memory_lines: dict | None = field(init=False, default=None, repr=False)  # memory.py's probe, on CUDA
    lock: threading.RLock = field(init=False, default_factory=threading.RLock, repr=False)
    timing: dict | None = field(init=False, default=None, repr=False)  # knowledge.py's calibration
    said: set = field(init=False, default_factory=set, repr=False)  # notes already printed or shown
    preview_colors: torch.Tensor | None = field(init=False, default=None, repr=False)  # steps.py's latent → RGB map
    _execution: torch.device | None = field(init=False, default=None, repr=False)  # see execution_device
    extras: dict = field(init=False, default_factory=dict, repr=False)  # task -> pipeline with its own UNet (extras.py)
    depth_estimator: object | None = field(init=False, default=None, repr=False)  # transformers' depth pipeline (depth.py)
    adapter: object | None = field(init=False, default=None, repr=False)  # the LoRA adapter tasks draw with (adapters.py)
    prior_tag: tuple | None = field(init=False, default=None, repr=False)  # the adapter the prior draws with now, for its cache

    def __post_init__(self):
        # Built from the decoder's own module objects: no second copy of any weight.
        self.img2img = KandinskyV22Img2ImgPipeline(**self.decoder.components)
        self.img2img.set_progress_bar_config(disable=True)
        self.emb2emb = KandinskyV22PriorEmb2EmbPipeline(**self.prior.components)
        self.emb2emb.set_progress_bar_config(disable=True)

    def generate(self, settings, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None):
        """Run the pipelines for `settings` here (tasks/runner.py); the task functions call this."""
        from .tasks.runner import run_here

        return run_here(self, settings, on_step=on_step, stop=stop, batch_size=batch_size, save_to=save_to, previews=previews)

    def expected_seconds(self, settings, height: int, width: int, wait: bool = True) -> float | None:
        from .timing import expected_seconds

        return expected_seconds(self, settings, height, width, wait)

    def check_fits(self, height: int, width: int, batch: int) -> None:
        from .memory import check_fits

        check_fits(self, height, width, batch)

    def fitting_batch(self, height: int, width: int, images: int) -> int:
        from .memory import fitting_batch

        return fitting_batch(self, height, width, images)

    def depth_map(self, picture):
        from .depth import estimate

        return estimate(self, picture)

    def load_adapter(self, folder, scale: float = 1.0):
        """Draw every task with the LoRA adapter in `folder` (kl.finetune's), at `scale` unless settings say
        otherwise (`adapter_scale`); replaces the adapter loaded before. Returns it (adapters.Adapter)."""
        from .adapters import load

        return load(self, folder, scale)

    def unload_adapter(self):
        """Back to the base model: the adapter's LoRA layers are taken out. Returns the adapter (or None)."""
        from .adapters import unload

        return unload(self)

    @property
    def size_multiple(self) -> int:
        return size_multiple(self.decoder.movq.config.block_out_channels)

    @property
    def latent_cell(self) -> int:
        """Pixels per latent pixel along a side: MoVQ's downscale factor (4 for nano, 8 for the real model)."""
        return 2 ** (len(self.decoder.movq.config.block_out_channels) - 1)

    @property
    def execution_device(self) -> torch.device:
        """Where tensors go for the next call (the GPU even while offloaded modules wait on the CPU).

        Asked of diffusers once: its answer walks every module (tens of milliseconds at real scale, which
        the real-scale GPU benchmark found as the kit's overhead over raw diffusers when asked per call)."""
        if self._execution is None:
            self._execution = self.decoder._execution_device
        return self._execution

    @contextmanager
    def sampler(self, name: str):
        """Decode with the sampler `name` (samplers.py) inside the block; the loaded scheduler is back after it."""
        with self.lock:
            loaded = self.decoder.scheduler
            chosen = samplers.build(name, loaded)
            pipelines = [self.decoder, self.img2img, *self.extras.values()]
            for pipe in pipelines:
                pipe.scheduler = chosen
            try:
                yield chosen
            finally:
                for pipe in pipelines:
                    pipe.scheduler = loaded

    def remember(self, key, value) -> None:
        self.cache[key] = value
        self.cache.move_to_end(key)
        while len(self.cache) > CACHE_ENTRIES:
            self.cache.popitem(last=False)

    def recall(self, key):
        value = self.cache.get(key)
        if value is not None:
            self.cache.move_to_end(key)
        return value

    def save(self, folder: str | Path) -> Path:
        """Write `prior/` and `decoder/` as `save_pretrained` does (safetensors), loadable with `load(folder)`;
        a task UNet loaded so far (extras.py) goes to its own folder, e.g. `decoder-inpaint/unet/`."""
        from .extras import TASKS

        folder = Path(folder)
        self.prior.save_pretrained(folder / "prior", safe_serialization=True)
        self.decoder.save_pretrained(folder / "decoder", safe_serialization=True)
        for task, pipe in self.extras.items():
            if task in TASKS:  # not the image→image pipelines around the same UNets
                pipe.unet.save_pretrained(folder / TASKS[task][0] / "unet", safe_serialization=True)
        info = {"default_size": self.default_size, "saved_from": self.source}
        if self.vocabulary is not None:
            info |= {"vocabulary": sorted(self.vocabulary), "trained_size": self.trained_size}
        if self.guidance:
            info |= {"guidance_scale": dict(self.guidance)}
        (folder / INFO_FILE).write_text(json.dumps(info))
        return folder

    def shares_weights(self) -> bool:
        """True when every task's pipeline uses the very same parameter tensors."""
        same = lambda a, b: all(x is y for x, y in zip(a.parameters(), b.parameters(), strict=True))
        return (
            same(self.decoder.unet, self.img2img.unet)
            and all(same(self.decoder.movq, pipe.movq) for pipe in (self.img2img, *self.extras.values()))
            and all(pipe.scheduler is self.decoder.scheduler for pipe in (self.img2img, *self.extras.values()))
        )

    def parameter_count(self) -> dict[str, int]:
        modules = {**self.prior.components, **self.decoder.components}
        modules |= {f"{task}_unet": pipe.unet for task, pipe in self.extras.items() if not task.endswith("-img2img")}
        return {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items() if isinstance(m, torch.nn.Module)}

    def __repr__(self) -> str:
        offload = f", offload={self.offload}" if self.offload else ""
        return f"Kit(source={self.source!r}, device={self.device}, dtype={str(self.dtype).removeprefix('torch.')}{offload})"


def expect_kit(kit, what: str = "this") -> None:
    """Refuse anything but a Kit with the model in this kernel, naming what was passed (a common slip: the
    pipeline, or the settings first); a room server's client is told in one line why it cannot."""
    if isinstance(kit, Backend) and not isinstance(kit, Kit):
        raise KitError(f"{what} needs the model in this kernel, and {kit!r} is a client of a room's server: load a model here with kl.load(\"nano\") (or the real model on a GPU)")
    if not isinstance(kit, Kit):
        raise wrong_type("kit", "a Kit from kl.load()", kit)
