"""Stage 4: the UNet decoder, denoising MoVQ latents conditioned on CLIP image embeddings.

Exactly the 2.2 decoder's objective: predict the noise added to a picture's latents (DDPMScheduler,
epsilon), given the picture's own image embedding through `added_cond_kwargs={"image_embeds": …}`.
One condition in ten is replaced by the zero-image embedding, which is what the pipeline uses as the
negative, so classifier-free guidance works. Min-SNR-5 loss weighting and an EMA of the weights (the
EMA copy is what ships). The UNet's second four output channels (variance) are not trained; the
pipeline discards them because the scheduler's variance is fixed.
"""

import torch

from diffusers.training_utils import EMAModel, compute_snr

from .log import Log
from .schedule import warmup_cosine

CONDITION_DROPOUT = 0.1
MIN_SNR = 5.0


def train(unet, scheduler, latents, embeddings, zero_embedding, steps: int, batch: int, seed: int, log: Log) -> None:
    """Stage 4: every timestep, min-SNR-5 weights, from scratch."""
    weigh = lambda snr: snr.clamp(max=MIN_SNR) / snr  # noqa: E731
    _fit(unet, scheduler, latents, embeddings, zero_embedding, steps, batch, seed, log, "decoder", 1e-3, 0.999, 0, weigh)


def refine_high_noise(unet, scheduler, latents, embeddings, zero_embedding, steps: int, batch: int, seed: int, log: Log) -> None:
    """Stage 6: more weight where the picture is decided, at high noise.

    With noise prediction, an error at timestep t moves the predicted clean latents by that error
    divided by √(ᾱ_t): ×25 at t = 999 here, so a tiny noise loss there can still mean wrong colors.
    The plain loss barely notices (and barely teaches the condition) at those steps. This stage
    draws t from the noisier 70 % and weighs each example by its clean-latent error, 1/SNR, capped
    at 25, starting from the stage-4 weights (EMA again).
    """
    low = len(scheduler.alphas_cumprod) * 3 // 10
    weigh = lambda snr: (1 / snr).clamp(max=25.0)  # noqa: E731
    _fit(unet, scheduler, latents, embeddings, zero_embedding, steps, batch, seed, log, "decoder_high_noise", 2e-4, 0.998, low, weigh)


def _fit(unet, scheduler, latents, embeddings, zero_embedding, steps, batch, seed, log, stage, lr, decay, low_t, weigh) -> None:
    """The noise-prediction loop both UNet stages share: t from [low_t, T), loss weighted by weigh(SNR)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.01)
    schedule = warmup_cosine(optimizer, steps, 0.03)
    ema = EMAModel(unet.parameters(), decay=decay, use_ema_warmup=True)
    alphas = scheduler.alphas_cumprod
    unet.train()
    for step in range(steps):
        index = torch.randint(len(latents), (batch,), generator=generator)
        clean, condition = latents[index], embeddings[index].clone()
        condition[torch.rand(batch, generator=generator) < CONDITION_DROPOUT] = zero_embedding
        t = torch.randint(low_t, len(alphas), (batch,), generator=generator)
        noise = torch.randn(clean.shape, generator=generator)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
        predicted = unet(noisy, t, encoder_hidden_states=None, added_cond_kwargs={"image_embeds": condition}).sample[:, :4]
        weight = weigh(compute_snr(scheduler, t))
        loss = (weight * ((predicted - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        ema.step(unet.parameters())
        log.step(stage, step, steps, loss=loss.item())
    ema.copy_to(unet.parameters())
    unet.eval()


@torch.no_grad()
def encode_all(movq, data, batch: int = 128) -> torch.Tensor:
    """Every training picture's raw (unquantised) MoVQ latents, as image→image encodes them."""
    return torch.cat([movq.encode(data.movq_batch(torch.arange(i, min(i + batch, len(data))))).latents for i in range(0, len(data), batch)])
