"""Stage 4: the UNet decoder, denoising MoVQ latents conditioned on CLIP image embeddings.

The 2.2 decoder's setup — DDPMScheduler (linear betas), the picture's own image embedding through
`added_cond_kwargs={"image_embeds": …}` — with one change: the UNet predicts v = √ᾱ·ε − √(1−ᾱ)·x₀
(`prediction_type="v_prediction"`), not the noise. The pipelines step through `scheduler.step`, so
they need nothing else. Why: with noise prediction the schedule's noisiest steps (ᾱ ≈ 0.002) are
where the picture's colors and layout are decided, yet predicting the noise there is trivial (the
input *is* almost all noise), and any error reaches the clean-latent estimate ×25. Nano v1 learned
exactly that: at t = 999 its clean-latent estimate was as wrong with the right embedding as with a
shuffled one, and generated colors were near chance. With v the target at high noise is −x₀
itself, which only the embedding can tell.

One condition in ten is replaced by the zero-image embedding, which is what the pipeline uses as the
negative, so classifier-free guidance works. Min-SNR-5 loss weighting (for v: min(SNR, 5)/(SNR + 1))
and an EMA of the weights (the EMA copy is what ships). The UNet's second four output channels
(variance) are not trained; the pipeline discards them because the scheduler's variance is fixed.
Runs on whatever device the UNet is on; batches are drawn on the CPU with a seeded generator.
"""

import torch

from diffusers.training_utils import EMAModel

from .log import Log
from .schedule import unet_update, v_training_pair, warmup_cosine

CONDITION_DROPOUT = 0.1


def train(unet, scheduler, latents, embeddings, zero_embedding, steps: int, batch: int, seed: int, log: Log) -> None:
    if scheduler.config.prediction_type != "v_prediction":
        raise ValueError(f"the decoder is trained for v_prediction; the scheduler says {scheduler.config.prediction_type!r}")
    device = unet.device
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = warmup_cosine(optimizer, steps, 0.03)
    ema = EMAModel(unet.parameters(), decay=0.999, use_ema_warmup=True)
    unet.train()
    for step in range(steps):
        index = torch.randint(len(latents), (batch,), generator=generator)
        clean, condition = latents[index], embeddings[index].clone()
        condition[torch.rand(batch, generator=generator) < CONDITION_DROPOUT] = zero_embedding
        t, noisy, target, weight = v_training_pair(scheduler, clean, generator)
        noisy, target, weight, condition = (x.to(device) for x in (noisy, target, weight, condition))
        predicted = unet(noisy, t.to(device), encoder_hidden_states=None, added_cond_kwargs={"image_embeds": condition}).sample[:, :4]
        loss = (weight * ((predicted - target) ** 2).mean(dim=(1, 2, 3))).mean()
        unet_update(loss, unet, optimizer, schedule, ema)
        log.step("decoder", step, steps, loss=loss.item())
    ema.copy_to(unet.parameters())
    unet.eval()


@torch.no_grad()
def encode_all(movq, data, batch: int = 128) -> torch.Tensor:
    """Every training picture's raw (unquantised) MoVQ latents, as image→image encodes them."""
    device = movq.device
    return torch.cat([movq.encode(data.movq_batch(torch.arange(i, min(i + batch, len(data)))).to(device)).latents.cpu() for i in range(0, len(data), batch)])
