"""Watching and stopping a generation step by step: step events, a Stop signal, a progress bar.

Kandinsky 2.2 pipelines call `callback_on_step_end(pipe, i, t, tensors)` after every denoising step
of both stages (the prior and the decoder). The kit turns that into one `StepEvent` for whoever is
listening, and stops a run by raising `Interrupted` from the callback: the 2.2 pipelines have no
`interrupt` flag, and an exception is the only way out of their loop that wastes no further step.

    stop = StopSignal()                  # in a widget: a Stop button calls stop.set()
    result = text_to_image(kit, settings, on_step=ProgressBar(), stop=stop)
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from tqdm.auto import tqdm

from .errors import CallbackError, expect_tensor, wrong_type


@dataclass(frozen=True)
class StepEvent:
    """One finished denoising step. `latents` are the stage's current latents, after the step."""

    stage: str  # "prior" (CLIP image embedding) or "decoder" (image latents)
    step: int  # 1-based, in the current stage
    total: int  # steps the current stage will take
    timestep: int  # the scheduler's timestep, 999 … 0
    latents: torch.Tensor  # prior: (B, D); decoder: (B, 4, h, w)
    batch: int  # 1-based index of the batch of images being made
    batches: int  # how many batches this call makes


class Interrupted(Exception):
    """Raised inside a pipeline to stop it; the kit catches it and keeps finished images."""

    def __init__(self, stage: str, step: int):
        super().__init__(f"stopped during the {stage} at step {step}")
        self.stage = stage
        self.step = step


class StopSignal:
    """A thread-safe flag: `set()` from anywhere (a button, another thread); the run stops after the current step."""

    def __init__(self):
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()


OnStep = Callable[[StepEvent], None]


def pipeline_callback(stage: str, total: int, batch: int, batches: int, on_step: OnStep | None, stop: StopSignal | None):
    """A `callback_on_step_end` for a diffusers pipeline that reports each step and honours `stop`."""
    if stop is not None and stop.is_set():
        raise Interrupted(stage, 0)

    def callback(pipe, i, t, tensors):
        if on_step is not None:
            try:
                on_step(StepEvent(stage, i + 1, total, int(t), tensors["latents"], batch, batches))
            except Interrupted:
                raise
            except Exception as error:  # the user's code: stop the run cleanly, keep its traceback as the cause
                raise CallbackError(
                    f"on_step raised {type(error).__name__}: {error} (at {stage} step {i + 1}); the run stopped "
                    "and the finished picture(s) are in this error's .result"
                ) from error
        if stop is not None and stop.is_set():
            raise Interrupted(stage, i + 1)
        return {}

    return callback


class ProgressBar:
    """An `on_step` that shows one tqdm bar per stage (works in notebooks and terminals)."""

    def __init__(self):
        self._bar = None
        self._key = None

    def __call__(self, event: StepEvent) -> None:
        key = (event.stage, event.batch)
        if key != self._key:
            self.close()
            label = event.stage if event.batches == 1 else f"{event.stage} {event.batch}/{event.batches}"
            self._bar, self._key = tqdm(total=event.total, desc=label, leave=False), key
        self._bar.update(1)
        if event.step == event.total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._key = None, None


def latents_preview(latents: torch.Tensor) -> list[PIL.Image.Image]:
    """A free look at decoder latents (B, C, h, w): their first three channels as RGB, each stretched to 0..255.

    No model runs, so it costs nothing per step; the picture is small (latent size) and false-colour.
    """
    expect_tensor(latents, "latents", (4,))
    x = latents.detach().float().cpu()[:, :3]
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    x = ((x - low) / (high - low).clamp_min(1e-8) * 255).round().to(torch.uint8)
    return [PIL.Image.fromarray(np.ascontiguousarray(im.permute(1, 2, 0).numpy())) for im in x]


@torch.no_grad()
def decoded_preview(movq, latents: torch.Tensor) -> list[PIL.Image.Image]:
    """Decoder latents (B, C, h, w) through MoVQ to pixels, as the pipeline does at the end: the real look, one decoder pass."""
    if not callable(getattr(movq, "decode", None)):
        raise wrong_type("movq", "the MoVQ model (kit.decoder.movq)", movq)
    expect_tensor(latents, "latents", (4,))
    pixels = movq.decode(latents.to(movq.dtype), force_not_quantize=True).sample
    pixels = ((pixels.float() * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return [PIL.Image.fromarray(np.ascontiguousarray(im.permute(1, 2, 0).numpy())) for im in pixels]


class Previews:
    """An `on_step` that calls `show(images, event)` every `every` decoder steps (and at the last one).

    `decode=False` shows `latents_preview` (free); `decode=True` runs MoVQ on the current latents
    (pass the kit's `decoder.movq`), which shows the picture as it would be if denoising stopped here.
    """

    def __init__(self, show: Callable, every: int = 5, movq=None):
        self.show, self.every, self.movq = show, every, movq

    def __call__(self, event: StepEvent) -> None:
        if event.stage != "decoder" or (event.step % self.every and event.step != event.total):
            return
        images = latents_preview(event.latents) if self.movq is None else decoded_preview(self.movq, event.latents)
        self.show(images, event)
