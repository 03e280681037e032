"""Watching and stopping a generation step by step: step events, a Stop signal, a progress bar.

Kandinsky 2.2 pipelines call `callback_on_step_end(pipe, i, t, tensors)` after every denoising step
of both stages (the prior and the decoder). The kit turns that into one `StepEvent` for whoever is
listening, and stops a run by raising `Interrupted` from the callback: the 2.2 pipelines have no
`interrupt` flag, and an exception is the only way out of their loop that wastes no further step.

    stop = StopSignal()                  # in a widget: a Stop button calls stop.set()
    result = text_to_image(kit, settings, on_step=ProgressBar(), stop=stop)
"""

import dataclasses
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import PIL.Image

from .errors import CallbackError, expect_tensor, wrong_type


@dataclass(frozen=True)
class StepEvent:
    """One finished denoising step. `latents` are the stage's current latents, after the step (a torch tensor;
    None on a room server's client, which gets `previews` instead when it asks for them)."""

    stage: str  # "prior" (CLIP image embedding) or "decoder" (image latents)
    step: int  # 1-based, in the current stage
    total: int  # steps the current stage will take
    timestep: int  # the scheduler's timestep, 999 … 0
    latents: "torch.Tensor | None"  # noqa: F821  prior: (B, D); decoder: (B, 4, h, w)
    batch: int  # 1-based index of the batch of images being made
    batches: int  # how many batches this call makes
    previews: tuple[PIL.Image.Image, ...] | None = None  # with a task's previews=…: the batch's pictures so far


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
                raise callback_failed(error, stage, i + 1) from error
        if stop is not None and stop.is_set():
            raise Interrupted(stage, i + 1)
        return {}

    return callback


def callback_failed(error: Exception, stage: str, step: int) -> CallbackError:
    """The error a run raises when its `on_step` raised `error` (the caller sets `.result` to what was finished)."""
    return CallbackError(
        f"on_step raised {type(error).__name__}: {error} (at {stage} step {step}); the run stopped "
        "and the finished picture(s) are in this error's .result"
    )


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
            from tqdm.auto import tqdm  # here, not at the top: the panels' bars are widgets, and a thin client needs no tqdm

            self._bar, self._key = tqdm(total=event.total, desc=label, leave=False), key
        self._bar.update(1)
        if event.step == event.total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._key = None, None


def latents_preview(latents, colors=None) -> list[PIL.Image.Image]:
    """A free look at decoder latents (B, C, h, w), one small picture (latent size) each.

    With `colors` (from `preview_colors`) each latent pixel goes through the model's own linear map to
    RGB: about the colours of the finished picture. Without, the first three channels are shown as RGB,
    each stretched to 0..255 (false colour: to see the latents themselves).
    """
    import numpy as np
    import torch

    expect_tensor(latents, "latents", (4,))
    x = latents.detach().float().cpu()
    if colors is not None:
        rgb = torch.einsum("bchw,cr->brhw", x, colors[:-1]) + colors[-1].view(1, 3, 1, 1)  # (B, 3, h, w) in 0..1
        x = (rgb.clamp(0, 1) * 255).round().to(torch.uint8)
    else:
        x = x[:, :3]
        low = x.amin(dim=(1, 2, 3), keepdim=True)
        high = x.amax(dim=(1, 2, 3), keepdim=True)
        x = ((x - low) / (high - low).clamp_min(1e-8) * 255).round().to(torch.uint8)
    return [PIL.Image.fromarray(np.ascontiguousarray(im.permute(1, 2, 0).numpy())) for im in x]


def fit_preview_colors(movq, images: list[PIL.Image.Image]):
    """A (C + 1, 3) least-squares map from MoVQ latents (C channels and a constant) to RGB in 0..1.

    Each picture is encoded with MoVQ; its pixels, averaged over each latent cell, are what the
    latent pixel there should preview as. Every model's latents differ (nano's are not the real
    model's), so the map is fitted to the loaded MoVQ.
    """
    import numpy as np
    import torch

    factor = 2 ** (len(movq.config.block_out_channels) - 1)
    side = 16 * factor  # 16 × 16 latents each
    pixels = torch.stack([torch.from_numpy(np.array(im.convert("RGB").resize((side, side), PIL.Image.Resampling.BICUBIC))) for im in images])
    pixels = pixels.permute(0, 3, 1, 2).float() / 255  # (N, 3, side, side) in 0..1
    device = next(movq.parameters()).device
    with torch.no_grad():
        latents = movq.encode((pixels * 2 - 1).to(device, movq.dtype)).latents.float().cpu()  # (N, C, 16, 16)
    target = torch.nn.functional.avg_pool2d(pixels, factor)  # (N, 3, 16, 16)
    x = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    x = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    y = target.permute(0, 2, 3, 1).reshape(-1, 3)
    return torch.linalg.lstsq(x, y).solution  # (C + 1, 3)


def preview_colors(kit):
    """The loaded model's latent → RGB map for previews, fitted on first use and kept on the Kit."""
    with kit.lock:
        if kit.preview_colors is None:
            from .samples import samples  # pictures with many colours: the samples and a few shapes of nano's world
            from .world import render, sample

            rng = random.Random(0)
            pictures = list(samples().values()) + [render(sample(rng)) for _ in range(12)]
            kit.preview_colors = fit_preview_colors(kit.decoder.movq, pictures)
        return kit.preview_colors


def decoded_preview(movq, latents) -> list[PIL.Image.Image]:
    """Decoder latents (B, C, h, w) through MoVQ to pixels, as the pipeline does at the end: the real look, one decoder pass."""
    if not callable(getattr(movq, "decode", None)):
        raise wrong_type("movq", "the MoVQ model (kit.decoder.movq)", movq)
    import numpy as np
    import torch

    expect_tensor(latents, "latents", (4,))
    with torch.no_grad():
        pixels = movq.decode(latents.to(movq.dtype), force_not_quantize=True).sample
    pixels = ((pixels.float() * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return [PIL.Image.fromarray(np.ascontiguousarray(im.permute(1, 2, 0).numpy())) for im in pixels]


class Previews:
    """An `on_step` that calls `show(images, event)` every `every` decoder steps (and at the last one).

    By default it shows `latents_preview` (free) with `colors` (pass `preview_colors(kit)` for the
    model's colours; None gives false colour); with `movq` (the kit's `decoder.movq`) it runs MoVQ on
    the current latents, which shows the picture as it would be if denoising stopped here. An event that
    brings its own `previews` (a room server's, or a task run with previews=…) shows those.
    """

    def __init__(self, show: Callable, every: int = 5, movq=None, colors=None):
        self.show, self.every, self.movq, self.colors = show, every, movq, colors

    def __call__(self, event: StepEvent) -> None:
        if event.stage != "decoder" or (event.step % self.every and event.step != event.total):
            return
        if event.previews is not None:
            images = list(event.previews)
        elif event.latents is None:
            return
        else:
            images = latents_preview(event.latents, self.colors) if self.movq is None else decoded_preview(self.movq, event.latents)
        self.show(images, event)


PREVIEW_MODES = ("colors", "decoded")  # a task's previews=…: latents in the model's colours (free), or through MoVQ


def with_previews(kit, on_step: OnStep | None, mode: str | None, every: int = 5) -> OnStep | None:
    """`on_step` given decoder events that carry `previews` (pictures of the batch so far) every `every` steps
    and at the last one: how a room server shows progress to a client that has no latents to look at."""
    if on_step is None or mode is None:
        return on_step
    if mode not in PREVIEW_MODES:
        raise wrong_type("previews", f"None or one of {PREVIEW_MODES}", mode)

    def with_pictures(event: StepEvent) -> None:
        if event.stage == "decoder" and event.latents is not None and (event.step % every == 0 or event.step == event.total):
            if mode == "decoded":
                pictures = decoded_preview(kit.decoder.movq, event.latents)
            else:
                pictures = latents_preview(event.latents, preview_colors(kit))
            event = dataclasses.replace(event, previews=tuple(pictures))
        on_step(event)

    return with_pictures
