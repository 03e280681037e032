"""Depth maps for ControlNet hints, through transformers' depth-estimation pipeline.

    depth = kl.depth_map(kit, picture)     # an L picture the picture's size: bright = near

The estimator is loaded on first use and kept on the Kit, through the same call for every source:
`transformers.pipeline("depth-estimation", model=…)`.

    source            estimator
    "kandinsky-2-2"   Intel/dpt-large (DPT, as the diffusers guide's ControlNet example uses)
    "nano", a folder  <folder>/depth (nano's: a tiny GLPN trained on the shapes world, training/depth.py)
    "tiny"            none: pass a hint picture yourself

A hint can also be drawn or uploaded: any picture, read as grey levels (white = near).
"""

from pathlib import Path

import PIL.Image

from .errors import SourceError, wrong_type
from .images import to_rgb

REAL_ESTIMATOR = "Intel/dpt-large"
FOLDER = "depth"


def estimator_source(kit) -> str:
    from .loading import HUB_SOURCES, NANO, NANO_FOLDER

    if kit.source in HUB_SOURCES:
        return REAL_ESTIMATOR
    if kit.source == "tiny":
        raise SourceError("the tiny model has no depth estimator: pass a hint picture (ControlNet(hint=…)) instead")
    folder = (NANO_FOLDER if kit.source == NANO else Path(kit.source)) / FOLDER
    if not (folder / "config.json").is_file():
        raise SourceError(f"{kit.source} has no depth estimator: looked for {folder} (nano's is made by training/depth.py); pass a hint picture instead")
    return str(folder)


def estimator(kit):
    """The Kit's depth-estimation pipeline, loaded on the first call."""
    with kit.lock:
        if kit.depth_estimator is None:
            from transformers import pipeline

            from .quiet import quiet_loading

            source = estimator_source(kit)
            device = kit.execution_device
            with quiet_loading():
                kit.depth_estimator = pipeline("depth-estimation", model=source, device=device)  # float32: small beside the UNet
        return kit.depth_estimator


def depth_map(kit, picture: PIL.Image.Image) -> PIL.Image.Image:
    """The picture's depth as an L picture of the same size, bright = near (the estimator's depth, read by `grey`),
    made where the kit's model is (this kernel, or the room's server)."""
    from .backend import expect_backend

    expect_backend(kit)
    if not isinstance(picture, PIL.Image.Image):
        raise wrong_type("picture", "a PIL image", picture)
    to_rgb(picture, "picture")
    return kit.depth_map(picture)


def estimate(kit, picture: PIL.Image.Image) -> PIL.Image.Image:
    """depth_map for the model in this kernel (Kit.depth_map)."""
    rgb, _ = to_rgb(picture, "picture")
    seen = rgb
    if kit.trained_size is not None and rgb.size != (kit.trained_size, kit.trained_size):  # nano's estimator saw 64 × 64 only
        seen = rgb.resize((kit.trained_size, kit.trained_size), PIL.Image.Resampling.BICUBIC)
    with kit.lock:
        found = estimator(kit)(seen)["predicted_depth"]
    return grey(found, seen.size).resize(rgb.size, PIL.Image.Resampling.BILINEAR)


def grey(predicted_depth, size: tuple[int, int]) -> PIL.Image.Image:
    """A depth-estimation pipeline's "predicted_depth" as an L picture of `size` (width, height), scaled from its
    minimum (0) to its maximum (255): the "depth" picture transformers 5 returns. transformers 4 hands back the
    model's raw output instead (nano's: twice the picture's side) and scales its "depth" by the maximum only, which
    brightens the background and widens the near part; reading "predicted_depth" the same way gives the same
    hint on every supported version."""
    import numpy as np
    import torch

    depth = predicted_depth.detach().float().reshape(1, 1, *predicted_depth.shape[-2:])  # one picture's map
    if depth.shape[-2:] != (size[1], size[0]):
        depth = torch.nn.functional.interpolate(depth, size=(size[1], size[0]), mode="bicubic", align_corners=False)
    depth = depth[0, 0].cpu().numpy()
    low, high = depth.min(), depth.max()
    scaled = (depth - low) / (high - low) if high > low else np.zeros_like(depth)
    return PIL.Image.fromarray((scaled * 255).astype(np.uint8))
