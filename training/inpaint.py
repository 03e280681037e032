"""Stage 6: the inpainting decoder — nano's UNet with `conv_in` widened to 9 channels, fine-tuned on masked pictures.

`KandinskyV22InpaintPipeline` gives its UNet nine input channels, as the real
kandinsky-2-2-decoder-inpaint UNet (`in_channels` 9) takes them:

    0-3  the noisy latents
    4-7  the picture's MoVQ latents, zeroed where it repaints ("masked image")
    8    the keep mask at latent size: 1 = keep. The pipeline inverts the user's mask (white = repaint),
         samples it to latent size (nearest), then widens the repaint part by one latent pixel
         (its `prepare_mask`; `keep_mask` below does the same with a convolution)

`widen` copies the trained decoder and gives `conv_in` five more input channels that start at zero, so
training begins from the plain decoder, which ignores them. Training is the decoder's (v-prediction,
min-SNR-5, EMA, one condition in ten dropped to the zero-image embedding) on masks of every kind a
user paints: the object's box, the object itself or the background (grown a little), rectangles,
ellipses, brush strokes and, rarely, everything. The loss counts the kept part a quarter: the pipeline
overwrites it with the picture's own latents at every step, so there it only has to agree at the seam.
"""

import random

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.training_utils import EMAModel

from kandinsky_lab import masks, world

from .log import Log
from .schedule import unet_update, v_training_pair, warmup_cosine

IN_CHANNELS = 9
CONDITION_DROPOUT = 0.1
KEPT_WEIGHT = 0.25
# prepare_mask marks a repainted latent pixel's neighbours at these offsets as repainted too (not the
# two anti-diagonal ones): a symmetric set, so one cross-correlation applies it
_GROW = torch.ones(1, 1, 3, 3)
_GROW[0, 0, 0, 2] = _GROW[0, 0, 2, 0] = 0
MASK_KINDS = {"box": 0.25, "object": 0.15, "background": 0.15, "rectangle": 0.12, "ellipse": 0.12, "strokes": 0.16, "all": 0.05}


def widen(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """A copy of `unet` taking IN_CHANNELS inputs, the new ones with zero weights (so it computes the same)."""
    config = {key: value for key, value in unet.config.items() if key != "_name_or_path"}  # not where it was loaded from
    wide = UNet2DConditionModel.from_config({**config, "in_channels": IN_CHANNELS})
    state = unet.state_dict()
    weight = state["conv_in.weight"]
    extra = torch.zeros(weight.shape[0], IN_CHANNELS - weight.shape[1], *weight.shape[2:], dtype=weight.dtype)
    state["conv_in.weight"] = torch.cat([weight, extra], dim=1)
    wide.load_state_dict(state)
    return wide.to(unet.device)


def keep_mask(repaint: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) pixel masks (1 = repaint) → (B, 1, h, w) keep masks, as the pipeline makes them."""
    keep = F.interpolate(1 - repaint, latent_size, mode="nearest")
    grown = F.conv2d(1 - keep, _GROW.to(keep), padding=1) > 0
    return 1 - grown.to(keep.dtype)


def random_mask(scene: world.Scene, rng: random.Random) -> np.ndarray:
    """A (64, 64) boolean repaint mask of one of MASK_KINDS."""
    kind = rng.choices(list(MASK_KINDS), weights=list(MASK_KINDS.values()))[0]
    size = (world.SIDE, world.SIDE)
    if kind == "box":
        cx, cy, side = scene.box
        half = side / 2 + rng.randint(0, 5)
        mask = masks.rectangle(size, (cx - half, cy - half, cx + half, cy + half))
    elif kind == "object":
        mask = masks.grow(world.object_mask(scene), rng.randint(1, 4))
    elif kind == "background":
        mask = masks.invert(masks.grow(world.object_mask(scene), rng.randint(0, 3)))
    elif kind in ("rectangle", "ellipse"):
        w, h = rng.randint(12, 48), rng.randint(12, 48)
        left, top = rng.randint(0, world.SIDE - w), rng.randint(0, world.SIDE - h)
        mask = (masks.rectangle if kind == "rectangle" else masks.ellipse)(size, (left, top, left + w, top + h))
    elif kind == "strokes":
        lines = [[(rng.uniform(0, 64), rng.uniform(0, 64)) for _ in range(rng.randint(2, 4))] for _ in range(rng.randint(1, 3))]
        mask = masks.strokes(size, lines, rng.uniform(6, 16))
    else:
        return np.ones(size, dtype=bool)
    return masks.read(mask)


def train(unet, scheduler, scenes, latents, embeddings, zero_embedding, steps: int, batch: int, seed: int, log: Log) -> None:
    """Fine-tune a widened UNet (see `widen`) in place; its EMA weights are what it ends with."""
    if unet.config.in_channels != IN_CHANNELS:
        raise ValueError(f"the inpainting UNet takes {IN_CHANNELS} input channels, this one {unet.config.in_channels}: widen it first")
    device = unet.device
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=3e-4, weight_decay=0.01)
    schedule = warmup_cosine(optimizer, steps, 0.03)
    ema = EMAModel(unet.parameters(), decay=0.999, use_ema_warmup=True)
    unet.train()
    for step in range(steps):
        index = torch.randint(len(latents), (batch,), generator=generator)
        clean, condition = latents[index], embeddings[index].clone()
        condition[torch.rand(batch, generator=generator) < CONDITION_DROPOUT] = zero_embedding
        repaint = torch.from_numpy(np.stack([random_mask(scenes[i], rng) for i in index.tolist()])[:, None].astype(np.float32))
        keep = keep_mask(repaint, clean.shape[-2:])
        t, noisy, target, weight = v_training_pair(scheduler, clean, generator)
        inputs = torch.cat([noisy, clean * keep, keep], dim=1)
        inputs, target, weight, condition, keep = (x.to(device) for x in (inputs, target, weight, condition, keep))
        predicted = unet(inputs, t.to(device), encoder_hidden_states=None, added_cond_kwargs={"image_embeds": condition}).sample[:, :4]
        where = (1 - keep) + KEPT_WEIGHT * keep
        per_picture = (where * (predicted - target) ** 2).sum(dim=(1, 2, 3)) / (where.sum(dim=(1, 2, 3)) * clean.shape[1])
        loss = (weight * per_picture).mean()
        unet_update(loss, unet, optimizer, schedule, ema)
        log.step("inpaint", step, steps, loss=loss.item())
    ema.copy_to(unet.parameters())
    unet.eval()
