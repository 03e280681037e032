"""Learning-rate schedule shared by the stages: linear warm-up, then cosine decay to zero."""

import math

import torch


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup_fraction: float = 0.05):
    warmup = max(1, int(steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
