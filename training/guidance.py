"""Choose the decoder guidance a trained model's ControlNet draws best with, and record it in its kandinsky_lab.json.

    python -m training.guidance kandinsky_lab/models/nano           # ~18 min on 2 CPU cores (train.py runs it too)

Classifier-free guidance multiplies what the image embedding adds to the unguided prediction. At the least
noisy steps the two disagree only along the hint's outline, so a high guidance sharpens the outline into a
dark rim, an unsharp mask, that the judge does not count as object: small objects lose their layout. A low
guidance keeps the outline but may weaken the prompt's colors (1 is no guidance at all, and half the decoder's
work). So each candidate is scored on both, on `cases` scenes of the *training* combinations of (shape, color,
background), never the held-out ones that benchmarks/controlnet.py reports, each with a depth hint estimated from
another scene of the same shape; the candidate with the highest min(layout, colors) is kept (a tie goes to the
higher guidance, nearer diffusers' default). The Kit then gives it to `ControlNet(guidance_scale=None)`, the
default (Kit.guidance_scale).
"""

import argparse
import json
import random
from pathlib import Path

import numpy as np

import kandinsky_lab as kl
from kandinsky_lab import judge, world
from kandinsky_lab.kit import INFO_FILE

from .data import HELD_OUT

CANDIDATES = (1.0, 1.5, 2.0, 3.0, 4.0)  # 1: none; 4: diffusers' default and the real model's
CASES = 330
IOU = 0.8  # as benchmarks/controlnet.py
STEPS = dict(prior_steps=25, steps=25)
WRITES = ("guidance_scale", "guidance_choice")  # the fields of kandinsky_lab.json this file owns


def cases(count: int, seed: int = 101) -> list[tuple[world.Scene, world.Scene]]:
    """(what the prompt asks, the scene the hint comes from), from combinations the model was trained on."""
    rng, found = random.Random(seed), []
    while len(found) < count:
        scene = world.sample(rng)
        if (scene.shape, scene.color, scene.background) in HELD_OUT:
            continue
        asked = world.Scene(scene.shape, scene.color, scene.background, size=rng.choice(list(world.SIZES)), position="center")
        found.append((asked, world.sample(rng, shape=scene.shape)))
    return found


def score(kit: kl.Kit, guidance: float, scenes: list, hints: list) -> tuple[float, float]:
    """(layout, colors): the share of cases whose object overlaps the hint's with IoU >= IOU, and whose
    object and background colors are the prompt's (judge.py's reading)."""
    layout, colors = [], []
    for i, ((asked, source), hint) in enumerate(zip(scenes, hints, strict=True)):
        settings = kl.ControlNet(prompt=world.canonical(asked), hint=hint, seed=10_000 + i, guidance_scale=guidance, **STEPS)
        made = kl.controlnet(kit, settings).images[0]
        layout.append(judge.iou(judge.picture_object(made), np.asarray(world.object_mask(source)) > 127) >= IOU)
        colors.append(judge.shows_colors(made, asked))
    return float(np.mean(layout)), float(np.mean(colors))


def choose(folder: Path, count: int = CASES) -> dict:
    """Score every candidate on `count` cases, write the best into folder's kandinsky_lab.json; its new fields."""
    if count < 1:
        raise ValueError(f"count must be 1 or more, got {count}")
    kit = kl.load(str(folder), device="cpu")  # the same choice on any machine
    scenes = cases(count)
    hints = [kl.depth_map(kit, world.render(source)) for _, source in scenes]
    scores = {}
    for guidance in CANDIDATES:
        scores[guidance] = score(kit, guidance, scenes, hints)
        print(f"ControlNet at decoder guidance {guidance:g}: layout {scores[guidance][0]:.1%}, colors {scores[guidance][1]:.1%}", flush=True)
    best = max(CANDIDATES, key=lambda g: (min(scores[g]), g))
    fields = {
        "guidance_scale": {"controlnet": best},
        "guidance_choice": {"controlnet": {"cases": count, "layout_and_colors": {f"{g:g}": [round(v, 4) for v in scores[g]] for g in CANDIDATES}}},
    }
    info_file = folder / INFO_FILE
    info_file.write_text(json.dumps(json.loads(info_file.read_text()) | fields, indent=1) + "\n")
    print(f"chose {best:g}: written to {info_file}", flush=True)
    return fields


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a model folder saved by training.train (with controlnet-depth/)")
    parser.add_argument("--cases", type=int, default=CASES)
    arguments = parser.parse_args()
    choose(arguments.folder, arguments.cases)
