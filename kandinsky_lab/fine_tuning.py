"""Fine-tuning with LoRA: teach the loaded model a new concept from a few captioned pictures.

    run = kl.finetune(kit, kl.FineTune(pictures=…, captions=…), save_to="outputs/adapters/heart")
    kit.load_adapter(run.folder)            # every task now draws with it

Built on peft through diffusers' adapter API (`add_adapter`, `save_lora_adapter`): small trainable
low-rank matrices beside the frozen attention projections (for the UNet's added-KV attention that
includes add_k_proj / add_v_proj), kept in float32 while a GPU runs the frozen model in half precision.
The two parts learn different things, with the objectives of the Kandinsky team's own LoRA scripts:

    decoder  the UNet predicts the noise (the scheduler's target: ε, or v for nano) on the first 4 of its 8
             output channels, conditioned on each picture's own CLIP image embedding. It never sees the
             caption: a decoder LoRA changes how every embedding is drawn, words do nothing.
    prior    the PriorTransformer predicts the picture's normalised CLIP image embedding from the caption's
             CLIP text embeddings: this is where a new *word* learns which picture it means.

MoVQ latents, image embeddings and text embeddings are computed once, before the loop. Every
`checkpoint_every` steps (and at the end, or when stopped) the adapter is saved (adapters.py's folder
layout) and, with `preview_prompts`, drawn at a fixed seed: a diffusion model's loss barely moves, the
pictures show the progress. Progress: a tqdm bar, and `on_progress(TrainingEvent)` after every step
(training_view.py draws the loss curve and the grids in a notebook).
"""

import dataclasses
import gc
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import PIL.Image
import torch

from . import adapters
from .errors import GPUOutOfMemory, ImageError, KitError, SettingsError, expect_whole, is_real, plain_number, wrong_type
from .images import to_rgb
from .quiet import quiet_loading
from .steps import StopSignal

PARTS = adapters.PARTS
TARGETS = {  # the Linear layers a LoRA adapts, by their name in the module
    "decoder": ["to_q", "to_k", "to_v", "to_out.0", "add_k_proj", "add_v_proj"],
    "prior": ["to_q", "to_k", "to_v", "to_out.0"],
}
TRAINING = "kl-training"  # the peft name of the adapter being trained
MAX_PICTURES = 1000
LISTS = ("pictures", "captions", "parts", "keep_prompts", "preview_prompts")


@dataclass(frozen=True, kw_only=True)
class FineTune:
    """What to teach and how: pictures with a caption each, which parts learn, and the optimiser's knobs."""

    pictures: tuple[PIL.Image.Image, ...] = ()
    captions: tuple[str, ...] = ()  # one per picture; the prior learns their words
    parts: tuple[str, ...] = ("decoder", "prior")  # "decoder", "prior" or both
    rank: int = 4  # of each LoRA matrix pair: trainable numbers per layer = rank × (inputs + outputs)
    steps: int = 300
    learning_rate: float = 1e-3
    batch_size: int = 4  # pictures per step (drawn at random, with repeats, from `pictures`)
    seed: int = 0  # of the batches, noise and timesteps (a CPU generator): the same settings train the same adapter
    size: int | None = None  # pixels per side the pictures are trained at; None: the model's default size
    checkpoint_every: int = 0  # save (and preview) every this many steps; 0: at the end only
    keep_prompts: tuple[str, ...] = ()  # what the model should go on drawing as before: it draws them once before
    # training, and learns its own pictures beside the new ones (DreamBooth's "prior preservation"), one each per step
    preview_prompts: tuple[str, ...] = ()  # drawn at each checkpoint with `preview_seed`
    preview_seed: int = 0
    gradient_checkpointing: bool = False  # the decoder's UNet recomputes activations: less GPU memory, more time per step
    name: str = ""  # the adapter's name; "": the words it teaches (those the model has not seen), else "adapter"

    def __post_init__(self):
        for name in LISTS:
            value = getattr(self, name)
            if isinstance(value, (list, range)) or (name == "parts" and isinstance(value, str)):
                object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        for f in dataclasses.fields(self):
            if f.name not in LISTS:
                object.__setattr__(self, f.name, plain_number(getattr(self, f.name)))


@dataclass
class TrainingEvent:
    """What on_progress gets after each step (and at each checkpoint, with `checkpoint` set)."""

    step: int  # steps done
    steps: int
    losses: dict[str, float]  # this step's loss per part
    checkpoint: Path | None = None  # the folder saved at this step
    preview: PIL.Image.Image | None = None  # the preview grid drawn at this checkpoint


@dataclass
class Training:
    """What a run made: the adapter's folder, the losses, the checkpoints and their previews."""

    folder: Path | None  # the adapter (the last checkpoint); None if stopped before the first step
    settings: FineTune
    losses: dict[str, list[float]]  # per part, one per step
    checkpoints: list[Path] = field(default_factory=list)
    previews: dict[int, PIL.Image.Image] = field(default_factory=dict)  # step -> grid
    trainable: dict[str, int] = field(default_factory=dict)  # LoRA parameters per part
    frozen: dict[str, int] = field(default_factory=dict)  # the part's own parameters
    seconds: float = 0.0
    interrupted: str | None = None
    notes: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # caption words the model had not seen
    saved_step: int = 0  # the step `folder` holds

    @property
    def steps(self) -> int:
        return max((len(v) for v in self.losses.values()), default=0)


def check(kit, s: FineTune) -> None:
    """Refuse settings that cannot train (before any work), naming the field."""
    if not isinstance(s, FineTune):
        raise wrong_type("settings", "a kl.FineTune", s)
    if not s.pictures:
        raise SettingsError("pictures is empty: fine-tuning needs at least one picture (with a caption each)")
    if len(s.pictures) > MAX_PICTURES:
        raise SettingsError(f"pictures holds {len(s.pictures)}: at most {MAX_PICTURES}")
    if len(s.captions) != len(s.pictures):
        raise SettingsError(f"{len(s.pictures)} pictures but {len(s.captions)} captions: give one caption per picture, in the same order")
    for i, caption in enumerate(s.captions):
        if not isinstance(caption, str) or not caption.strip():
            raise SettingsError(f"captions[{i}] must be a text that describes picture {i}, got {caption!r}")
    for i, picture in enumerate(s.pictures):
        if not isinstance(picture, PIL.Image.Image):
            raise wrong_type(f"pictures[{i}]", "a PIL image", picture)
    if not s.parts or any(p not in PARTS for p in s.parts) or len(set(s.parts)) != len(s.parts):
        raise SettingsError(f"parts must name one or both of {PARTS}, got {s.parts!r}")
    expect_whole(s.steps, "steps", 1, 100_000)
    expect_whole(s.rank, "rank", 1, 1024)
    expect_whole(s.batch_size, "batch_size", 1, 256)
    expect_whole(s.seed, "seed", 0, 2**63 - 1)
    expect_whole(s.preview_seed, "preview_seed", 0, 2**63 - 1)
    expect_whole(s.checkpoint_every, "checkpoint_every", 0, 100_000)
    if not is_real(s.learning_rate) or not math.isfinite(s.learning_rate) or not 0 < s.learning_rate <= 1:
        raise SettingsError(f"learning_rate must be a number above 0 and at most 1, got {s.learning_rate!r}")
    if s.size is not None:
        expect_whole(s.size, "size", kit.size_multiple, 4096)
        if s.size % kit.size_multiple:
            raise SettingsError(f"size must be a multiple of {kit.size_multiple} for this model, got {s.size}")
    if not isinstance(s.name, str) or (s.name and not re.fullmatch(r"[\w-]{1,64}", s.name)):
        raise SettingsError(f"name must be up to 64 letters, digits, - or _, got {s.name!r}")
    for name in ("keep_prompts", "preview_prompts"):
        if any(not isinstance(p, str) or not p.strip() for p in getattr(s, name)):
            raise SettingsError(f"{name} must be texts, got {getattr(s, name)!r}")
    if not isinstance(s.gradient_checkpointing, bool):
        raise wrong_type("gradient_checkpointing", "True or False", s.gradient_checkpointing)
    for part in s.parts:
        check_rank(adapters.modules(kit)[part], part, s.rank)
    if s.gradient_checkpointing and not any(getattr(adapters.modules(kit)[p], "_supports_gradient_checkpointing", False) for p in s.parts):
        raise SettingsError(f"gradient_checkpointing: the {' and the '.join(s.parts)} cannot checkpoint (only the decoder's UNet can): set it False")


def targets(module, part: str) -> list[str]:
    """The full names of the Linear layers a LoRA of `part` adapts."""
    return [name for name, m in module.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and any(name.endswith("." + t) or name == t for t in TARGETS[part])]


def lora_parameters(kit, part: str, rank: int) -> int:
    """How many numbers a rank-`rank` LoRA of `part` trains: rank × (inputs + outputs) for each adapted layer."""
    module = adapters.modules(kit)[part]
    named = dict(module.named_modules())
    return sum(rank * sum(features(named[name])) for name in targets(module, part))


def check_rank(module, part: str, rank: int) -> None:
    layers = {name: min(features(m)) for name, m in module.named_modules() if name in set(targets(module, part))}
    if not layers:
        raise KitError(f"the {part} has none of the layers a LoRA adapts ({', '.join(TARGETS[part])})")
    smallest = min(layers, key=layers.get)
    if rank > layers[smallest]:
        raise SettingsError(f"rank {rank} is larger than the {part}'s smallest adapted layer ({smallest}: {layers[smallest]} features): at most {layers[smallest]}")


def features(layer) -> tuple[int, int]:
    """(inputs, outputs) of a Linear or Conv2d layer."""
    if isinstance(layer, torch.nn.Conv2d):
        return layer.in_channels, layer.out_channels
    return layer.in_features, layer.out_features


def prepared_pictures(kit, s: FineTune) -> tuple[list[PIL.Image.Image], int, list[str]]:
    """RGB pictures at the training size (square), and what was done to them, in words."""
    size = s.size or kit.trained_size or kit.default_size
    out, converted, resized = [], [], []
    for i, picture in enumerate(s.pictures):
        rgb, note = to_rgb(picture, f"pictures[{i}]")
        if note:
            converted.append(f"{i} ({note})")
        if rgb.size != (size, size):
            resized.append(i)
            side = min(rgb.size)
            left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
            rgb = rgb.crop((left, top, left + side, top + side)).resize((size, size), PIL.Image.Resampling.BICUBIC)
        out.append(rgb)
    notes = []
    if converted:
        notes.append(f"pictures converted to RGB: {', '.join(converted)}"[:400])
    if resized:
        notes.append(f"{len(resized)} of the {len(out)} pictures were not {size} x {size}: cropped to a centred square and resized to it")
    return out, size, notes


def new_words(kit, captions) -> list[str]:
    """Caption words the model's training captions never had (nano records its vocabulary)."""
    if kit.vocabulary is None:
        return []
    return sorted({w for c in captions for w in re.findall(r"[a-z]+", c.lower())} - set(kit.vocabulary))


@torch.no_grad()
def encode(kit, s: FineTune, pictures: list, size: int) -> dict:
    """Everything the loop reads, computed once: MoVQ latents, image embeddings, caption encodings."""
    from .embeddings import image_embedding

    device = kit.execution_device
    embeds = torch.cat([image_embedding(kit, p) for p in pictures]).float().cpu()
    return encoded(kit, s.parts, pictures, embeds, list(s.captions), size)


@torch.no_grad()
def encoded(kit, parts, pictures: list, embeds: torch.Tensor, captions: list[str], size: int) -> dict:
    """The loop's tensors for pictures with their image embeddings and captions (on the CPU, float32)."""
    device, data = kit.execution_device, {"image_embeds": embeds}
    if "decoder" in parts:
        movq = kit.decoder.movq
        pixels = kit.img2img.image_processor.preprocess(pictures, height=size, width=size).to(device, movq.dtype)
        data["latents"] = torch.cat([movq.encode(pixels[i : i + 8]).latents for i in range(0, len(pictures), 8)]).float().cpu()
    if "prior" in parts:
        prior = kit.prior.prior
        text_embeds, hidden, mask = kit.prior._encode_prompt(captions, device, 1, False)
        data["text"] = (text_embeds.float().cpu(), hidden.float().cpu(), mask.cpu())
        data["normalised"] = (embeds - prior.clip_mean.float().cpu()) / prior.clip_std.float().cpu()
    return data


def own_pictures(kit, s: FineTune, size: int) -> dict | None:
    """The model's own pictures of `keep_prompts`, drawn before training, with the embeddings the prior gave them.
    A prior-only run needs only the embeddings: the decoder does not run."""
    from .embeddings import prompt_embeddings
    from .settings import TextToImage
    from .tasks.text_to_image import text_to_image

    if not s.keep_prompts:
        return None
    pictures, embeds = [], []
    for i, prompt in enumerate(s.keep_prompts):
        drawn = TextToImage(prompt=prompt, seed=s.seed + i, height=size, width=size)
        if "decoder" in s.parts:
            result = text_to_image(kit, drawn)
            pictures.append(result.images[0])
            found = result.embeddings
        else:
            found = prompt_embeddings(kit, prompt, drawn.negative_prompt, drawn.prior_steps, drawn.prior_guidance_scale, drawn.prior_seeds())
        embeds.append(found.image_embeds.float().cpu())
    return encoded(kit, s.parts, pictures, torch.cat(embeds), list(s.keep_prompts), size)


def decoder_loss(kit, data: dict, index: torch.Tensor, scheduler, generator: torch.Generator) -> torch.Tensor:
    unet, device = kit.decoder.unet, kit.execution_device
    clean = data["latents"][index]
    noise = torch.randn(clean.shape, generator=generator)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(index),), generator=generator)
    noisy = scheduler.add_noise(clean, noise, t)
    kind = scheduler.config.prediction_type
    target = {"epsilon": noise, "sample": clean}.get(kind)
    if target is None:
        target = scheduler.get_velocity(clean, noise, t)  # v_prediction (nano's)
    condition = data["image_embeds"][index]
    dtype = unet.dtype
    predicted = unet(noisy.to(device, dtype), t.to(device), encoder_hidden_states=None, added_cond_kwargs={"image_embeds": condition.to(device, dtype)}).sample[:, :4]
    return torch.nn.functional.mse_loss(predicted.float(), target.to(device))


def prior_loss(kit, data: dict, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    prior, device = kit.prior.prior, kit.execution_device
    target = data["normalised"][index]
    text_embeds, hidden, mask = (x[index] for x in data["text"])
    alphas = kit.prior.scheduler.alphas_cumprod
    t = torch.randint(0, len(alphas), (len(index),), generator=generator)
    noise = torch.randn(target.shape, generator=generator)
    a = alphas[t].float().unsqueeze(1)
    noisy = a.sqrt() * target + (1 - a).sqrt() * noise
    dtype = prior.dtype
    predicted = prior(
        noisy.to(device, dtype), timestep=t.to(device), proj_embedding=text_embeds.to(device, dtype),
        encoder_hidden_states=hidden.to(device, dtype), attention_mask=mask.to(device),
    ).predicted_image_embedding
    return torch.nn.functional.mse_loss(predicted.float(), target.to(device))


def add_lora(kit, part: str, rank: int, checkpointing: bool, seed: int) -> list[torch.nn.Parameter]:
    """A fresh LoRA (peft) on the part's attention projections, float32, its random half drawn from `seed`; returns its parameters."""
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    module = adapters.modules(kit)[part]
    module.requires_grad_(False)
    # lora_alpha = rank: scale 1, which is also what diffusers assumes when it loads a file that does not say
    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=targets(module, part))
    with torch.random.fork_rng(devices=[]):  # peft draws lora_A from torch's global generator: seeded here, restored after
        torch.manual_seed(seed)
        module.add_adapter(config, adapter_name=TRAINING)
    adapters.activate(module, TRAINING)
    cast_training_params(module, dtype=torch.float32)
    if checkpointing and getattr(module, "_supports_gradient_checkpointing", False):
        module.enable_gradient_checkpointing()
    module.train()
    return [p for p in module.parameters() if p.requires_grad]


def adapter_info(kit, s: FineTune, step: int, words: list[str]) -> dict:
    return {
        "format": adapters.FORMAT,
        "name": s.name or "-".join(words) or "adapter",
        "base": adapters.base_record(kit),
        "parts": list(s.parts),
        "rank": s.rank,
        "steps": step,
        "learning_rate": s.learning_rate,
        "batch_size": s.batch_size,
        "seed": s.seed,
        "size": s.size or kit.trained_size or kit.default_size,
        "pictures": len(s.pictures),
        "captions": list(s.captions),
        "words": words if "prior" in s.parts else [],  # a decoder-only adapter learns no word: it never sees the captions
        "targets": {p: TARGETS[p] for p in s.parts},
    }


def save(kit, s: FineTune, folder: Path, step: int, words: list[str]) -> Path:
    """The adapter being trained, written into `folder` (adapters.py's layout; other files there are kept):
    each part to a temporary name first, adapter.json last, so a folder with adapter.json has all its weights."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    (folder / adapters.INFO_FILE).unlink(missing_ok=True)
    for part in s.parts:
        partial = folder / f".{part}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with quiet_loading():  # its `.to(dtype=None)` warns of float32 modules that no Kandinsky part has
            adapters.modules(kit)[part].save_lora_adapter(str(partial), adapter_name=TRAINING, weight_name=adapters.WEIGHTS_FILE)
        shutil.rmtree(folder / part, ignore_errors=True)
        os.replace(partial, folder / part)
    (folder / adapters.INFO_FILE).write_text(json.dumps(adapter_info(kit, s, step, words), indent=1))
    return folder


def preview(kit, s: FineTune, step: int, words: list[str]) -> PIL.Image.Image:
    """The preview prompts drawn at a fixed seed with the adapter as it is now (through the tasks' own code)."""
    from .grids import image_row
    from .settings import TextToImage
    from .tasks.text_to_image import text_to_image

    for part in s.parts:
        adapters.modules(kit)[part].eval()
    size = s.size or kit.trained_size or kit.default_size
    info = {"parts": list(s.parts), "name": "training", "words": adapter_info(kit, s, step, words)["words"]}
    now = adapters.Adapter(Path(f"step-{step}"), f"training-{step}", info, 1.0, peft=TRAINING)
    kept, kit.adapter = kit.adapter, now
    try:
        with torch.no_grad():
            pictures = [text_to_image(kit, TextToImage(prompt=p, seed=s.preview_seed, height=size, width=size)).images[0] for p in s.preview_prompts]
    finally:
        kit.adapter = kept
        for part in s.parts:
            adapters.modules(kit)[part].train()
    return image_row(pictures, labels=list(s.preview_prompts), title=f"after {step} steps")


def finetune(kit, settings: FineTune, *, save_to: str | os.PathLike | None = None, on_progress=None, stop: StopSignal | None = None, bar: bool = True) -> Training:
    """Train a LoRA adapter on the Kit's model as `settings` say; returns the Training (its `folder` is the adapter).

    The Kit is the base model again afterwards: load the result with kit.load_adapter(run.folder). A Stop
    (`stop.set()`) or an out-of-memory error keeps the adapter as it was at the last checkpoint. `bar=False`: no
    tqdm bar (a panel that shows its own progress)."""
    from .kit import expect_kit

    expect_kit(kit, "fine-tuning")
    if kit.adapter is not None:
        raise KitError(f"the adapter {kit.adapter} is loaded: kit.unload_adapter() first, so the new one learns on the base model")
    check(kit, settings)
    if on_progress is not None and not callable(on_progress):
        raise wrong_type("on_progress", "a function taking a kl.TrainingEvent (or None)", on_progress)
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise wrong_type("stop", "a kl.StopSignal (or None)", stop)
    s = settings
    pictures, size, notes = prepared_pictures(kit, s)
    words = new_words(kit, s.captions)
    from .embeddings import truncation_notes

    notes += truncation_notes(kit, list(dict.fromkeys(s.captions)))
    folder = adapter_folder(save_to, s.name or "-".join(words) or "adapter")
    for note in notes:
        print(note)
    with kit.lock:
        return _train(kit, s, pictures, size, folder, words, notes, on_progress, stop, bar)


def adapter_folder(save_to, name: str) -> Path:
    """Where the adapter goes: `save_to` (its old checkpoints cleared), else a new outputs/adapters/<name>[-n]."""
    import shutil

    if save_to is None:
        base = Path("outputs") / "adapters" / name
        folder = next(f for n in range(1, 10_000) if not (f := base.with_name(name if n == 1 else f"{name}-{n}")).exists())
    else:
        folder = save_to
    from .tasks.request import writable_folder

    folder = writable_folder(folder)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    return folder


def _train(kit, s, pictures, size, folder, words, notes, on_progress, stop, show_bar: bool = True) -> Training:
    from diffusers import DDPMScheduler
    from tqdm.auto import tqdm

    started = time.perf_counter()
    run = Training(None, s, {p + kind: [] for kind in ("", " kept") for p in s.parts if kind == "" or s.keep_prompts}, notes=notes, words=words)
    run.frozen = {p: sum(x.numel() for x in adapters.modules(kit)[p].parameters()) for p in s.parts}
    data, keep = encode(kit, s, pictures, size), own_pictures(kit, s, size)
    scheduler = DDPMScheduler.from_config(kit.decoder.scheduler.config)  # the training noise, whatever sampler draws
    generator = torch.Generator("cpu").manual_seed(s.seed)
    flags = {p: [x.requires_grad for x in adapters.modules(kit)[p].parameters()] for p in s.parts}
    try:
        parameters = {p: add_lora(kit, p, s.rank, s.gradient_checkpointing, s.seed + i) for i, p in enumerate(s.parts)}
        run.trainable = {p: sum(x.numel() for x in ps) for p, ps in parameters.items()}
        optimizer = torch.optim.AdamW([x for ps in parameters.values() for x in ps], lr=s.learning_rate, weight_decay=1e-2)
        every = s.checkpoint_every or s.steps
        bar = tqdm(range(s.steps), desc="fine-tuning", unit="step", **({} if show_bar else {"disable": True}))  # {}: TQDM_DISABLE still counts
        for step in bar:
            if stop is not None and stop.is_set():
                run.interrupted = f"stopped after {step} of {s.steps} steps"
                break
            index = torch.randint(len(pictures), (s.batch_size,), generator=generator)
            losses = {}
            if "decoder" in s.parts:
                losses["decoder"] = decoder_loss(kit, data, index, scheduler, generator)
            if "prior" in s.parts:
                losses["prior"] = prior_loss(kit, data, index, generator)
            if keep is not None:
                index = torch.randint(len(s.keep_prompts), (s.batch_size,), generator=generator)
                if "decoder" in s.parts:
                    losses["decoder kept"] = decoder_loss(kit, keep, index, scheduler, generator)
                if "prior" in s.parts:
                    losses["prior kept"] = prior_loss(kit, keep, index, generator)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], 1.0)
            optimizer.step()
            values = {p: loss.item() for p, loss in losses.items()}
            for p, v in values.items():
                run.losses[p].append(v)
            bar.set_postfix({p: f"{v:.4f}" for p, v in values.items()}, refresh=False)
            event = TrainingEvent(step + 1, s.steps, values)
            if (step + 1) % every == 0 or step + 1 == s.steps:
                checkpoint(kit, s, run, folder, step + 1, event)
            if on_progress is not None:
                on_progress(event)
        bar.close()
        if run.interrupted and run.steps and (not run.checkpoints or run.checkpoints[-1].name != f"step-{run.steps:05d}"):
            checkpoint(kit, s, run, folder, run.steps, TrainingEvent(run.steps, s.steps, {}))
    except torch.cuda.OutOfMemoryError:
        kept = f"; the adapter of step {run.saved_step} is kept in {run.folder}" if run.folder else ""
        run.interrupted = "out of GPU memory"
        raise GPUOutOfMemory(f"the GPU ran out of memory while fine-tuning at {size} x {size}, {s.batch_size} pictures a step{kept}: try batch_size=1, gradient_checkpointing=True or a smaller size") from None
    finally:
        for p in s.parts:
            module = adapters.modules(kit)[p]
            if TRAINING in getattr(module, "peft_config", {}):
                if s.gradient_checkpointing and getattr(module, "_supports_gradient_checkpointing", False):
                    module.disable_gradient_checkpointing()
                adapters.remove(kit, adapters.Adapter(Path(), "", {"parts": [p]}, peft=TRAINING))
            module.eval()
            for x, flag in zip(module.parameters(), flags[p]):
                x.requires_grad_(flag)
        gc.collect()
        run.seconds = time.perf_counter() - started
    return run


def checkpoint(kit, s: FineTune, run: Training, folder: Path, step: int, event: TrainingEvent) -> None:
    """Save the adapter as it is after `step` (the newest checkpoint is also `folder` itself), and preview it."""
    path = save(kit, s, folder / "checkpoints" / f"step-{step:05d}", step, words=run.words)
    run.checkpoints.append(path)
    event.checkpoint = path
    run.folder, run.saved_step = save(kit, s, folder, step, run.words), step
    if s.preview_prompts:
        event.preview = run.previews[step] = preview(kit, s, step, run.words)
