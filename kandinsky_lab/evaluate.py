"""Scoring sets of pictures: CLIP score and Fréchet distance, as in the model card's FID table.

    clip_score(kit, images, prompts)       100 × max(cos(image, text), 0) per pair, with the loaded
                                           model's own CLIP encoders (its prior's text and image towers)
    features(kit, images, "clip")          one vector per picture from the model's CLIP image encoder
    frechet_distance(a, b)                 ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) between two feature sets

FID proper is the Fréchet distance on Inception-v3 pool features ("inception"): that needs the
`pytorch_fid` package and its weights file already on disk (it is never downloaded here); without
them `features` says so. CLIP features work offline with any model the kit loads, and their
distances are comparable only with each other, not with published FIDs.
"""

import os
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from .embeddings import clip_input
from .errors import SettingsError
from .kit import Kit

FEATURES = ("clip", "inception")
INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # pytorch_fid's file name in the torch hub cache


class FeaturesUnavailable(RuntimeError):
    """The chosen feature extractor cannot run here; the message says what is missing."""


@torch.no_grad()
def image_features(kit: Kit, images: list[PIL.Image.Image], batch: int = 32) -> torch.Tensor:
    """(N, D) CLIP image embeddings, float64 on the CPU."""
    encoder, device = kit.prior.image_encoder, kit.execution_device
    out = []
    for start in range(0, len(images), batch):
        pixels = torch.cat([clip_input(kit, im) for im in images[start : start + batch]])
        out.append(encoder(pixels.to(device=device, dtype=encoder.dtype))["image_embeds"].double().cpu())
    return torch.cat(out)


@torch.no_grad()
def text_features(kit: Kit, texts: list[str]) -> torch.Tensor:
    """(N, D) CLIP text embeddings, tokenised as the prior pipeline does, float64 on the CPU."""
    tokenizer, encoder = kit.prior.tokenizer, kit.prior.text_encoder
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    return encoder(ids.to(kit.execution_device))["text_embeds"].double().cpu()


def clip_score(kit: Kit, images: list[PIL.Image.Image], prompts: list[str]) -> torch.Tensor:
    """Per pair: 100 × the cosine of image and text embeddings, floored at 0 (torchmetrics' definition)."""
    if len(images) != len(prompts):
        raise SettingsError(f"clip_score needs one prompt per image, got {len(images)} images and {len(prompts)} prompts")
    cos = torch.nn.functional.cosine_similarity(image_features(kit, images), text_features(kit, prompts), dim=-1)
    return 100 * cos.clamp(min=0)


def features(kit: Kit | None, images: list[PIL.Image.Image], kind: str = "clip") -> torch.Tensor:
    if kind == "clip":
        if kit is None:
            raise SettingsError("CLIP features need a loaded model (kit)")
        return image_features(kit, images)
    if kind == "inception":
        return _inception_features(images)
    raise SettingsError(f"unknown features {kind!r}: use one of {FEATURES}")


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (N ≥ 2 each)."""
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise SettingsError(f"each set needs at least 2 pictures, got {a.shape[0]} and {b.shape[0]}")
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr((Σa Σb)^½) = Σ √λ of Σa^½ Σb Σa^½, which is symmetric, so eigh is stable.
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    distance = float(((mu_a - mu_b) ** 2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * middle)
    return max(distance, 0.0)  # rounding can dip a hair below zero for identical sets


def load_images(folder: str | os.PathLike) -> list[PIL.Image.Image]:
    """Every PNG/JPEG under `folder` (sorted by path), as RGB."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg") and not p.name.startswith("."))
    if not paths:
        raise SettingsError(f"no .png or .jpg pictures under {folder}")
    return [PIL.Image.open(p).convert("RGB") for p in paths]


def load_images_from(folder: str | os.PathLike, files: list[str]) -> list[PIL.Image.Image]:
    """The named pictures (paths relative to `folder`), as RGB."""
    return [PIL.Image.open(Path(folder) / name).convert("RGB") for name in files]


def table(rows: list[dict]) -> str:
    """Markdown like the model card's: one row per evaluated set."""
    lines = ["| set | pictures | Fréchet distance | features | CLIP score |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        fd = "–" if row.get("frechet_distance") is None else f"{row['frechet_distance']:.2f}"
        score = "–" if row.get("clip_score") is None else f"{row['clip_score']:.2f}"
        lines.append(f"| {row['name']} | {row['pictures']} | {fd} | {row.get('features', '–')} | {score} |")
    return "\n".join(lines)


def _inception_features(images: list[PIL.Image.Image]) -> torch.Tensor:
    try:
        from pytorch_fid.inception import InceptionV3
    except ImportError:
        raise FeaturesUnavailable(
            "Inception features (FID as published) need the pytorch_fid package, which is not installed; "
            "use features='clip' offline, or `pip install pytorch-fid` and put its weights in the torch hub cache"
        ) from None
    weights = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
    if not weights.is_file():
        raise FeaturesUnavailable(
            f"Inception weights are not on this machine (looked for {weights}); they are not downloaded here. "
            "Copy the file there, or use features='clip'"
        )
    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    out = []
    with torch.no_grad():
        for image in images:
            pixels = torch.from_numpy(np.asarray(image.resize((299, 299)), dtype=np.float32) / 255).permute(2, 0, 1)[None]
            out.append(model(pixels)[0].flatten(1).double())
    return torch.cat(out)
