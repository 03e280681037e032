"""What the stages share about stepping: the learning-rate schedule (linear warm-up, then cosine decay to
zero), a UNet stage's training inputs (noised latents, v target, min-SNR weight) and one optimizer step of a
UNet stage (clipped gradients, schedule, EMA)."""

import math

import torch
from diffusers.training_utils import compute_snr

MIN_SNR = 5.0


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup_fraction: float = 0.05):
    warmup = max(1, int(steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def unet_update(loss: torch.Tensor, unet: torch.nn.Module, optimizer, schedule, ema) -> None:
    """Backpropagate `loss`, clip the UNet's gradients to norm 1, step the optimizer, the schedule and the EMA."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    ema.step(unet.parameters())


def v_training_pair(scheduler, clean: torch.Tensor, generator: torch.Generator):
    """(timesteps, noised latents, v target, loss weight) for a batch of clean latents: timesteps drawn first, then
    the noise, from `generator`; the weight is min-SNR-5 for v-prediction, min(SNR, 5) / (SNR + 1)."""
    t = torch.randint(0, scheduler.config.num_train_timesteps, (clean.shape[0],), generator=generator)
    noise = torch.randn(clean.shape, generator=generator)
    snr = compute_snr(scheduler, t)
    return t, scheduler.add_noise(clean, noise, t), scheduler.get_velocity(clean, noise, t), snr.clamp(max=MIN_SNR) / (snr + 1)
