"""Inside the pipeline: the decoder's denoising loop written out, and views of what flows through it.

`denoising_steps` is `KandinskyV22Pipeline.__call__` unrolled (same scheduler, same guidance maths,
same generator use, so the final picture is the pipeline's), keeping at every step the noisy
latents *and* the scheduler's prediction of the clean latents — what the model "sees" at that step.

    steps = denoising_steps(kit, result.embeddings.rows(0, 1), height=64, width=64, steps=20, seed=0)
    denoising_strip(kit, steps, every=4)        # grid: noisy latents / predicted picture per step

Also: cosine similarity of prompt embeddings, and MoVQ latent channels as pictures.
"""

from dataclasses import dataclass

import PIL.Image
import torch
import torch.nn.functional as F

from .embeddings import Embeddings
from .errors import SettingsError, expect_list, expect_tensor, expect_whole, is_real, plain_number, wrong_type
from .grids import image_grid
from .images import to_rgb
from .kit import Kit, expect_kit
from .sizes import MAX_SIDE, check_size
from .steps import decoded_preview, latents_preview


@dataclass
class DenoisingStep:
    step: int  # 1-based
    timestep: int
    latents: torch.Tensor  # (1, C, h, w) after this step
    predicted: torch.Tensor  # (1, C, h, w) the scheduler's estimate of the clean latents


@torch.no_grad()
def denoising_steps(
    kit: Kit, embeddings: Embeddings, height: int, width: int, steps: int = 25, guidance_scale: float = 4.0, seed: int = 0
) -> list[DenoisingStep]:
    """Run the decoder by hand for one image (the first row of `embeddings`), recording every step."""
    expect_kit(kit)
    if not isinstance(embeddings, Embeddings):
        raise wrong_type("embeddings", "the Embeddings of kl.prompt_embeddings (or a Result's .embeddings)", embeddings)
    check_size(expect_whole(height, "height", 1, MAX_SIDE), expect_whole(width, "width", 1, MAX_SIDE), kit.size_multiple)
    steps, seed = expect_whole(steps, "steps", 1, 1000), expect_whole(seed, "seed", 0, 2**63 - 1)
    unet, scheduler, movq = kit.decoder.unet, kit.decoder.scheduler, kit.decoder.movq
    device, dtype = kit.execution_device, unet.dtype
    generator = torch.Generator("cpu").manual_seed(seed)
    factor = 2 ** (len(movq.config.block_out_channels) - 1)
    shape = (1, unet.config.in_channels, height // factor, width // factor)  # (B, C, h, w)
    latents = torch.randn(shape, generator=generator, dtype=dtype).to(device) * scheduler.init_noise_sigma
    image_embeds = embeddings.image_embeds[:1].to(device, dtype)
    negative = embeddings.negative_image_embeds[:1].to(device, dtype)
    guided = guidance_scale > 1
    condition = torch.cat([negative, image_embeds]) if guided else image_embeds
    scheduler.set_timesteps(steps, device=device)
    record = []
    for i, t in enumerate(scheduler.timesteps):
        model_input = torch.cat([latents] * 2) if guided else latents
        out = unet(model_input, t, encoder_hidden_states=None, added_cond_kwargs={"image_embeds": condition}).sample
        if guided:
            noise, variance = out.split(latents.shape[1], dim=1)
            uncond, cond = noise.chunk(2)
            out = torch.cat([uncond + guidance_scale * (cond - uncond), variance.chunk(2)[1]], dim=1)
        if scheduler.config.variance_type not in ("learned", "learned_range"):
            out = out.split(latents.shape[1], dim=1)[0]
        stepped = scheduler.step(out, t, latents, generator=generator)
        latents = stepped.prev_sample
        record.append(DenoisingStep(i + 1, int(t), latents, stepped.pred_original_sample))
    return record


def denoising_strip(kit: Kit, record: list[DenoisingStep], every: int = 5, title: str = "denoising, step by step") -> PIL.Image.Image:
    """A two-row grid: the noisy latents (top) and the predicted clean picture (bottom) every few steps."""
    expect_kit(kit)
    record, every = expect_record(record), expect_whole(every, "every", 1, 10_000)
    chosen = every_few(record, every)
    noisy = [latents_preview(s.latents)[0] for s in chosen]
    clean = [decoded_preview(kit.decoder.movq, s.predicted)[0] for s in chosen]
    return image_grid(
        [noisy, clean],
        row_labels=["latents", "predicted"],
        col_labels=[f"step {s.step}" for s in chosen],
        title=str(title),
    )


def guidance_grid(
    kit: Kit, embeddings: Embeddings, height: int, width: int, steps: int = 25, scales=(1.0, 4.0, 10.0), every: int = 5, seed: int = 0
) -> PIL.Image.Image:
    """One row per guidance scale: the predicted clean picture every few steps, the same noise in every row."""
    scales = [plain_number(g) for g in expect_list(scales, "scales")]
    if not scales or not all(is_real(g) and 0 <= g <= 100 for g in scales):
        raise SettingsError(f"scales must be numbers from 0 to 100, got {scales!r}")
    every = expect_whole(every, "every", 1, 10_000)
    rows = []
    for g in scales:
        record = denoising_steps(kit, embeddings, height, width, steps=steps, guidance_scale=g, seed=seed)
        chosen = every_few(record, every)
        rows.append([decoded_preview(kit.decoder.movq, s.predicted)[0] for s in chosen])
    return image_grid(
        rows,
        row_labels=[f"guidance {g:g}" + (" (off)" if g <= 1 else "") for g in scales],
        col_labels=[f"step {s.step}" for s in chosen],
        title="the predicted picture at each guidance",
    )


def final_picture(kit: Kit, record: list[DenoisingStep]) -> PIL.Image.Image:
    """The last recorded step's latents through MoVQ: the picture the decoder made."""
    expect_kit(kit)
    return decoded_preview(kit.decoder.movq, expect_record(record)[-1].latents)[0]


def every_few(record: list[DenoisingStep], every: int) -> list[DenoisingStep]:
    """The steps a strip shows: the first, every `every`-th, and the last."""
    return [s for s in record if s.step % every == 0 or s.step in (1, len(record))]


def expect_record(record) -> list[DenoisingStep]:
    """What `denoising_steps` returned: a non-empty list of DenoisingStep."""
    record = expect_list(record, "record")
    if not record or not all(isinstance(s, DenoisingStep) for s in record):
        raise SettingsError("record must be the non-empty list that kl.denoising_steps returns")
    return record


def similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every pair of (N, D) embeddings: an (N, N) matrix on the CPU (for plots and prints)."""
    expect_tensor(embeddings, "embeddings", (2,))
    unit = F.normalize(embeddings.float(), dim=-1)
    return (unit @ unit.T).cpu()


@torch.no_grad()
def latent_channels(kit: Kit, image: PIL.Image.Image) -> PIL.Image.Image:
    """Encode a picture with MoVQ and show it, then each latent channel as a grey picture, in one row
    (the channels are enlarged to the picture's size: the title says how small they really are)."""
    expect_kit(kit)
    pixels = kit.img2img.image_processor.preprocess(to_rgb(image, "image")[0])  # (1, 3, H, W) in [-1, 1]
    latents = kit.decoder.movq.encode(pixels.to(kit.execution_device, kit.decoder.movq.dtype)).latents[0].float().cpu()
    cells = []
    for channel in latents:  # (h, w)
        scaled = (channel - channel.min()) / (channel.max() - channel.min()).clamp_min(1e-8)
        cells.append(PIL.Image.fromarray((scaled * 255).round().byte().numpy(), mode="L").convert("RGB"))
    rgb = to_rgb(image, "image")[0]
    channels, h, w = latents.shape
    return image_grid(
        [[rgb, *cells]],
        col_labels=[f"picture {rgb.width} × {rgb.height}", *[f"channel {c}" for c in range(channels)]],
        title=f"MoVQ: a {rgb.width} × {rgb.height} picture → {channels} channels of {w} × {h}, each shown enlarged",
    )
