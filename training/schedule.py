"""What the stages share about stepping: the learning-rate schedule (linear warm-up, then cosine decay to
zero) and one optimizer step of a UNet stage (clipped gradients, schedule, EMA)."""

import math

import torch


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
