"""`python -m benchmarks.inpaint`: nano's inpainting, judged on scenes it never saw.

Writes the "inpaint" section of benchmarks/results.md. SCENES scenes are drawn from the (shape,
color, background) combinations held out of training (training/data.py HELD_OUT) and rendered exactly
(world.render); scene i uses seed i, with the kit's inpainting defaults otherwise and 25 + 25 steps:

    color       the object's box, grown 3 px, repainted with a prompt naming a new color (neither the
                old one nor the background's): does the judge (judge.py) see the new color?
    shape       the same mask, a prompt naming a new shape in the old color: the new shape?
    background  everything but the object (the object grown 2 px is kept), a new background color
    outside     mean absolute difference of the pixels outside the mask, in % of 255, in the color
                task's pictures (they come back through MoVQ: `keep_outside=False`), beside MoVQ's own
                round trip of the same pictures (encode + decode, nothing repainted)
    flipped     the color task with the mask inverted, as pre-0.19 code would pass it: how often the
                object still shows its old color (the part meant to change was kept)
"""

import random
import time
from dataclasses import replace

import numpy as np
import torch

import kandinsky_lab as kl
from benchmarks import sections
from kandinsky_lab import judge, world
from training.data import HELD_OUT

SCENES = 110
STEPS = dict(prior_steps=25, steps=25)
BOX_MARGIN = 3
TARGETS = {"color": 0.90, "shape": 0.75, "outside": 3.0}


def held_out_scenes(count: int = SCENES, seed: int = 11) -> list[world.Scene]:
    rng, combos = random.Random(seed), sorted(HELD_OUT)
    return [world.sample(rng, shape=s, color=c, background=b) for s, c, b in (combos[i % len(combos)] for i in range(count))]


def box_mask(scene: world.Scene):
    cx, cy, side = scene.box
    half = side / 2 + BOX_MARGIN
    return kl.masks.rectangle((world.SIDE, world.SIDE), (round(cx - half), round(cy - half), round(cx + half), round(cy + half)))


def outside_difference(before, after, mask) -> float:
    """Mean |after − before| over the pixels the mask keeps, in % of 255."""
    keep = ~kl.masks.read(mask)
    return float(np.abs(np.asarray(after, float) - np.asarray(before, float))[keep].mean() / 255 * 100)


@torch.no_grad()
def round_trip(kit: kl.Kit, picture):
    movq = kit.decoder.movq
    pixels = torch.from_numpy(np.asarray(picture, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    out = movq.decode(movq.encode(pixels).latents, force_not_quantize=True).sample[0]
    return ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def measure(kit: kl.Kit, scenes: list[world.Scene]) -> dict:
    rng = random.Random(5)
    hits = {"color": [], "shape": [], "background": [], "flipped_kept_old": []}
    outside, movq_alone = [], []
    for seed, scene in enumerate(scenes):
        picture, mask = world.render(scene), box_mask(scene)
        run = lambda prompt, m: kl.inpaint(kit, kl.Inpaint(prompt=prompt, image=picture, mask=m, seed=seed, **STEPS)).images[0]  # noqa: E731
        color = rng.choice([c for c in world.COLORS if c not in (scene.color, scene.background)])
        shape = rng.choice([s for s in world.SHAPES if s != scene.shape])
        background = rng.choice([c for c in world.COLORS if c not in (scene.color, scene.background)])
        recolored = run(world.canonical(replace(scene, color=color)), mask)
        hits["color"].append(judge.describe(recolored)["color"] == color)
        outside.append(outside_difference(picture, recolored, mask))
        movq_alone.append(outside_difference(picture, round_trip(kit, picture), mask))
        hits["shape"].append(judge.describe(run(world.canonical(replace(scene, shape=shape)), mask))["shape"] == shape)
        kept = kl.masks.shapes_background(picture, 2)
        hits["background"].append(judge.describe(run(world.canonical(replace(scene, background=background)), kept))["background"] == background)
        flipped = run(world.canonical(replace(scene, color=color)), kl.masks.invert(mask))
        hits["flipped_kept_old"].append(judge.describe(flipped)["color"] == scene.color)
    return {key: sum(v) / len(v) for key, v in hits.items()} | {
        "outside": float(np.mean(outside)),
        "outside_max": float(np.max(outside)),
        "movq_alone": float(np.mean(movq_alone)),
    }


def section(found: dict, scenes: int, seconds: float) -> list[str]:
    met = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    return [
        "## Inpainting on nano",
        "",
        f"`python -m benchmarks.inpaint`: nano's inpainting UNet (training/inpaint.py) on {scenes} scenes from the "
        "(shape, color, background) combinations held out of training, rendered exactly; one picture per task and scene, "
        f"25 prior + 25 decoder steps, judged by kandinsky_lab/judge.py. Mask: the object's box grown {BOX_MARGIN} px "
        f"(white = repaint). {seconds / 60:.1f} min on this machine's 2-core CPU.",
        "",
        "| figure | measured | target | met |",
        "| --- | --- | --- | --- |",
        f"| new color asked, the object shows it | **{found['color']:.1%}** | ≥ 90% | {met(found['color'] >= TARGETS['color'])} |",
        f"| new shape asked, the object has it | **{found['shape']:.1%}** | ≥ 75% | {met(found['shape'] >= TARGETS['shape'])} |",
        f"| outside the mask: mean absolute change (% of 255), max over scenes {found['outside_max']:.2f} % | **{found['outside']:.2f} %** "
        f"| ≤ 3 % | {met(found['outside'] <= TARGETS['outside'])} |",
        f"| the same pixels through MoVQ alone (encode + decode) | {found['movq_alone']:.2f} % | – | – |",
        f"| background mask (object kept), new background color asked, shown | {found['background']:.1%} | – | – |",
        f"| the color task with the mask inverted (pre-0.19 convention): the object keeps its old color | {found['flipped_kept_old']:.1%} | – | – |",
    ]


def main() -> None:
    torch.manual_seed(0)
    kit = kl.load("nano")
    scenes = held_out_scenes()
    started = time.monotonic()
    found = measure(kit, scenes)
    lines = section(found, len(scenes), time.monotonic() - started)
    sections.write("inpaint", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
