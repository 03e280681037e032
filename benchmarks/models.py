"""A ~760 MB random-weight Kandinsky 2.2 for benchmarks, saved to a folder like the hub repos.

Same component classes as the real model, scaled down: embedding size 512 instead of 1280. Its
prior side (text encoder, image encoder, prior) holds ~74 % of the weights, as in the real model
(CLIP-ViT-G encoders + prior vs UNet + MoVQ), so memory ratios carry over.
"""

from pathlib import Path

import torch

from kandinsky_lab.kit import Kit
from kandinsky_lab.tiny import build_decoder, build_prior

SIZE = 64  # pixels: the benchmark model's MoVQ downscales by 4, so sizes are multiples of 16


def build_large() -> Kit:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        prior = build_prior(dim=512, text_layers=8, vision_hidden=768, vision_layers=12, prior_layers=8)
        decoder = build_decoder(dim=512, unet_channels=(128, 256, 384), movq_channels=(64, 128, 128), unet_head_dim=32)
    prior.set_progress_bar_config(disable=True)
    decoder.set_progress_bar_config(disable=True)
    return Kit(prior=prior, decoder=decoder, source="bench-large", default_size=SIZE, device=torch.device("cpu"), dtype=torch.float32)


def save_large(folder: str | Path) -> Path:
    """Build and save the model unless `folder` already holds it; returns the folder."""
    folder = Path(folder)
    if not (folder / "decoder" / "model_index.json").exists():
        build_large().save(folder)
    return folder


def weight_bytes(folder: str | Path) -> dict[str, int]:
    """Bytes of safetensors weights on each side."""
    folder = Path(folder)
    return {side: sum(p.stat().st_size for p in (folder / side).rglob("*.safetensors")) for side in ("prior", "decoder")}
