"""Mixing CLIP image embeddings with weights: `lerp` (what diffusers does) and `slerp`.

lerp   sum_i w_i * e_i, exactly `KandinskyV22PriorPipeline.interpolate`. Halfway between two
       embeddings this lands *inside* the sphere they live on: the mix is shorter than either end,
       which the decoder reads as a weaker, greyer condition.
slerp  moves along the great circle between the ends instead, and interpolates the length
       linearly, so every step of a path is as "strong" as its ends. With more than two items the
       items are folded in one at a time, each with its share of the weight so far.

Both scale the result by the sum of the weights, so with weights that sum to 1 (or with
`normalize=True`) the two agree at the ends of a path.
"""

import math

import torch

from .errors import SettingsError, WrongType, expect_list, expect_tensor, is_real, plain_number


def lerp(embeds: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Weighted sum of (N, D) embeddings."""
    return sum(w * e for w, e in zip(weights, embeds, strict=True))


def slerp_pair(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two (N, D) embeddings row by row, lengths interpolated linearly."""
    a32, b32 = a.float(), b.float()
    len_a, len_b = a32.norm(dim=-1, keepdim=True), b32.norm(dim=-1, keepdim=True)
    ua, ub = a32 / len_a.clamp_min(1e-12), b32 / len_b.clamp_min(1e-12)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    angle = torch.acos(cos)
    sin = torch.sin(angle)
    parallel = sin.abs() < 1e-6  # (almost) the same direction: plain lerp is exact enough
    wa = torch.where(parallel, torch.full_like(sin, 1 - t), torch.sin((1 - t) * angle) / sin.where(~parallel, 1.0))
    wb = torch.where(parallel, torch.full_like(sin, t), torch.sin(t * angle) / sin.where(~parallel, 1.0))
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (direction * ((1 - t) * len_a + t * len_b)).to(a.dtype)


def slerp(embeds: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Spherical weighted mix of (N, D) embeddings, scaled by the sum of the weights."""
    total = sum(weights)
    mixed, share = None, 0.0
    for e, w in zip(embeds, weights, strict=True):
        if w == 0:
            continue
        if mixed is None:
            mixed, share = e, w
            continue
        mixed = slerp_pair(mixed, e, w / (share + w))
        share += w
    return mixed * total


def mix(embeds: list[torch.Tensor], weights: list[float], mode: str = "lerp", normalize: bool = False) -> torch.Tensor:
    """Mix embeddings by `mode` ("lerp" or "slerp"); with `normalize`, weights are divided by their sum first."""
    embeds, weights = expect_list(embeds, "embeds"), [plain_number(w) for w in expect_list(weights, "weights")]
    if not embeds:
        raise SettingsError("embeds must hold at least one embedding")
    if len(embeds) != len(weights):
        raise SettingsError(f"embeds and weights must have the same length, got {len(embeds)} and {len(weights)}")
    for i, e in enumerate(embeds):
        expect_tensor(e, f"embeds[{i}]", (2,))
        if e.shape != embeds[0].shape:
            raise SettingsError(f"embeds[{i}] has shape {tuple(e.shape)}, embeds[0] {tuple(embeds[0].shape)}: mix embeddings of one shape")
    for i, w in enumerate(weights):
        if not is_real(w) or not math.isfinite(w):
            raise (SettingsError if is_real(w) else WrongType)(f"weights[{i}] must be a finite number, got {w!r}")
    weights = [float(w) for w in weights]
    if normalize and sum(weights) == 0:
        raise SettingsError("normalize=True needs weights that do not sum to zero")
    if normalize:
        total = sum(weights)
        weights = [w / total for w in weights]
    if mode == "lerp":
        return lerp(embeds, weights)
    if mode == "slerp":
        return slerp(embeds, weights)
    raise SettingsError(f"mode must be 'lerp' or 'slerp', got {mode!r}")
