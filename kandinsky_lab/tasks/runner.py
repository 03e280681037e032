"""What every task does with the model in this kernel: embeddings, then the decoder batch by batch.

A task module turns its settings into a `Plan` (the filled-in settings, what the kit noticed, how to
get the embeddings, and `draw`: one decoder call for a batch of rows). `run_here` runs a plan:

    1. embeddings: prompt -> prior -> CLIP image embedding (or images -> CLIP image encoder, mixed)
    2. decoder:    embedding -> UNet denoising MoVQ latents -> MoVQ decoder -> pixels

Images are made in batches of `batch_size` (default: all at once; on CUDA as many at once as the
GPU's free memory is predicted to hold, with a note when that splits the batch). Stopping (a `StopSignal`,
see steps.py) ends the run after the current step and keeps the batches already finished. With
`save_to=folder` each image is written there (PNG with its settings, never overwriting) the moment
its batch is done. On CUDA a size predicted not to fit in the GPU's free memory is refused before the
prior runs (memory.py); an out-of-memory error that happens anyway is caught, the memory released, and
re-raised as `GPUOutOfMemory` with a preset or size that needs less.

The room's server (serve/replica.py) runs the same plans, with rows of several visitors' plans of the
same `key` in one `draw`.
"""

import gc
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from .. import adapters, knowledge, memory
from ..errors import CallbackError, GPUOutOfMemory, KitError
from ..result import Result
from ..settings import Sampling
from ..sizes import nearest_sizes
from ..steps import Interrupted, pipeline_callback, with_previews


@dataclass
class Plan:
    """One request, ready for the model."""

    settings: Sampling  # with height and width (and a guidance left to the model) filled in
    notes: list[str]  # what the kit did to the inputs or expects of them, in words
    embed: Callable  # (on_step, stop) -> Embeddings, one row per picture
    draw: Callable  # (kit, pipeline kwargs, rows: one dict of inputs per row) -> pictures
    inputs: dict = field(default_factory=dict)  # this request's per-row inputs (a start picture, a mask, a hint)
    options: dict = field(default_factory=dict)  # pipeline arguments its rows share (e.g. strength)
    decoder_steps: int | None = None  # steps the decoder runs (for progress); None: settings.steps
    prior_asks: tuple[str, ...] = ()  # prompts `embed` runs through the prior with no negative prompt (one row per
    # prior seed, cached on the Kit): a server may run them batched with other visitors' before calling `embed`
    adapter: object | None = None  # the LoRA adapter it draws with (adapters.Adapter; settings.adapter_scale says how much)

    @property
    def steps(self) -> int:
        return self.settings.steps if self.decoder_steps is None else self.decoder_steps

    def key(self) -> tuple:
        """Plans with equal keys decode in one pipeline call (each row with its own seed's generator)."""
        s = self.settings
        adapter = adapters.tag(self.adapter, s.adapter_scale, "decoder")  # a call never mixes adapters or scales
        return (self.draw, s.height, s.width, s.steps, s.sampler, s.guidance_scale, tuple(sorted(self.options.items())), adapter)

    def adapter_record(self) -> dict | None:
        """What a picture's metadata says about the adapter it was drawn with (None: the base model)."""
        if self.adapter is None or not self.settings.adapter_scale:
            return None
        return self.adapter.record(self.settings.adapter_scale)


def plan_for(kit, settings: Sampling, adapter=None) -> Plan:
    """The task module's plan for `settings` (already checked), drawing with `adapter` (default: the Kit's) at
    `settings.adapter_scale`, filled in from the adapter's own scale when None."""
    from . import plans

    adapter = kit.adapter if adapter is None else adapter
    if adapter is None and settings.adapter_scale:
        raise KitError(f"adapter_scale={settings.adapter_scale:g} but no adapter is loaded: kit.load_adapter(folder) first (or leave adapter_scale as None)")
    if adapter is not None and settings.adapter_scale is None:
        settings = replace(settings, adapter_scale=adapter.scale)
    plan = plans(settings)(kit, settings)
    plan.adapter = adapter
    return plan


def say(kit, line: str, key=None) -> str:
    """Print `line` unless this Kit has said it (or what `key` names) already; return it (for Result.notes)."""
    key = line if key is None else key
    if key not in kit.said:
        kit.said.add(key)
        print(line)
    return line


def announce(kit, settings: Sampling) -> list[str]:
    """knowledge.py's notes on what the model will not understand, and a note for each prompt longer than CLIP
    reads (embeddings.py), printed before the run (each once per Kit). knowledge's suggestion (the nearest prompt,
    different for every prompt) is printed with its problem's first showing only: twelve prompts with one unknown
    word print two lines, not thirteen. Result.notes keeps both lines of every run."""
    from ..embeddings import truncation_notes

    lines = knowledge.notes(kit, settings)
    said = [say(kit, lines[0]), say(kit, lines[1], key=("suggestion", lines[0]))] if lines else []
    return said + [say(kit, line) for line in truncation_notes(kit, knowledge.prompt_texts(settings))]


def decoder_kwargs(settings: Sampling, rows, seeds: list[int], callback) -> dict:
    """The pipeline arguments every decoder call shares: embeddings, size, steps, guidance, one CPU generator per row."""
    return dict(
        image_embeds=rows.image_embeds,
        negative_image_embeds=rows.negative_image_embeds,
        height=settings.height,
        width=settings.width,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance_scale,
        generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds],
        callback_on_step_end=callback,
    )


def run_here(kit, settings: Sampling, *, on_step=None, stop=None, batch_size=None, save_to=None, previews=None) -> Result:
    """Run the task `settings` describes on this kernel's model (Kit.generate; options checked by request.py)."""
    plan = plan_for(kit, settings)
    settings, notes = plan.settings, list(plan.notes)
    on_step = with_previews(kit, on_step, previews)
    if batch_size is None:  # as many at a time as the GPU's free memory holds (all of them off CUDA)
        batch_size = memory.fitting_batch(kit, settings.height, settings.width, settings.num_images)
        if batch_size < settings.num_images:
            notes.append(say(kit, f"{settings.num_images} images in batches of {batch_size}: all at once would not fit in the GPU's free memory"))
    batch_size = min(batch_size, settings.num_images)
    memory.check_fits(kit, settings.height, settings.width, batch_size)
    result = Result([], settings, settings.prior_seeds(), settings.decoder_seeds(), kit.source, batch_size, notes=notes, adapter=plan.adapter_record())
    with kit.lock, adapters.active(kit, plan.adapter, settings.adapter_scale):
        stage, out_of_memory = "prior", False
        try:
            result.embeddings = plan.embed(on_step, stop)
            stage = "decoder"
            decode(kit, result, plan, on_step, stop, save_to)
        except Interrupted as stopped:
            result.interrupted = str(stopped)
        except torch.cuda.OutOfMemoryError:
            out_of_memory = True  # raised below: the error's traceback still holds the failed step's tensors
        except CallbackError as error:  # on_step raised: the run stopped; hand over what is finished
            error.result = result
            raise
        if out_of_memory:
            raise GPUOutOfMemory(out_of_memory_advice(kit, result, stage))
    return result


def decode(kit, result: Result, plan: Plan, on_step, stop, save_to=None) -> None:
    """Decoder stage: appends to `result.images` batch by batch (an interruption keeps what is done)."""
    from .request import save_batch

    s, emb, seeds, size = result.settings, result.embeddings, result.decoder_seeds, result.batch_size
    starts = range(0, len(seeds), size)
    with kit.sampler(s.sampler):
        for b, start in enumerate(starts):
            rows = emb.rows(start, start + size)
            callback = pipeline_callback("decoder", plan.steps, b + 1, len(starts), on_step, stop)
            kwargs = decoder_kwargs(s, rows, seeds[start : start + size], callback) | plan.options
            images = plan.draw(kit, kwargs, [plan.inputs] * len(rows))
            result.images.extend(images)
            if save_to is not None:
                save_batch(result, len(images), save_to)


def out_of_memory_advice(kit, result: Result, stage: str) -> str:
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


def plain_draw(kit, kwargs: dict, rows: list[dict]) -> list:
    """Pictures from embeddings alone: text→image, variations and interpolation."""
    return kit.decoder(**kwargs).images
