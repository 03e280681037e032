"""`python -m benchmarks.nano`: how good and how fast the shipped nano model is.

Writes the "nano" section of benchmarks/results.md (sections.py; the rest of the file is left as it is):
    accuracy   one picture per prompt for PROMPTS prompts built only from the (shape, color, background)
               combinations held out of training (training/data.py HELD_OUT), judged by
               kandinsky_lab/judge.py (pixel statistics and outline matching, no model involved)
    mixing     interpolations between two prompts with different object colors: the fraction of
               in-between steps whose object color lies between the two ends' colors
    speed      one 64×64 picture with 25 prior + 25 decoder steps (median of 7, warm process), and the
               first picture from a fresh Python process (import + load + generate; median of 3 processes)
    diagnosis  where an attribute gets lost, stage by stage: can a linear probe read it from the image
               embeddings of rendered pictures (what the prior learns to predict), from the prior's
               embeddings for the accuracy prompts (what the UNet is given), does the decoder draw it
               when handed a true picture's embedding instead of the prior's, and how the whole model
               does on prompts from combinations it was trained on
All with the kit's defaults otherwise (guidance 4 for prior and decoder), seeds 0, 1, 2, …
"""

import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import kandinsky_lab as kl
from kandinsky_lab import embeddings, evaluate, judge, world
from benchmarks import sections
from training.data import HELD_OUT, TRAINING

ROOT = Path(__file__).resolve().parents[1]
STEPS = dict(prior_steps=25, steps=25)
PROMPTS = 132
TARGETS = {"color": 0.90, "background": 0.90, "shape": 0.75, "position": 0.80}
MIX_PAIRS = [("red", "yellow"), ("blue", "white"), ("green", "purple"), ("black", "orange"), ("red", "blue"), ("yellow", "green")]
MIX_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
PROBE_PICTURES = 2000
FRESH_PROCESSES = 3  # first-picture time: median of this many fresh processes (one varied 8.2–10.1 s here)
BETWEEN_TOLERANCE = 40.0  # RGB units a color may stray outside the two ends' box


def prompts(count: int = PROMPTS, seed: int = 7, combos=HELD_OUT) -> list[str]:
    """Prompts from `combos` (by default the held-out ones): half in the canonical form, half naming a place."""
    rng, combos, out = random.Random(seed), sorted(combos), []
    if len(combos) > count:
        combos = rng.sample(combos, count)
    for i in range(count):
        shape, color, background = combos[i % len(combos)]
        scene = world.Scene(shape, color, background, size=rng.choice(list(world.SIZES)), position="center")
        if i % 2:
            scene = world.Scene(shape, color, background, size=scene.size, position=rng.choice(["left", "right", "top", "bottom"]))
        out.append(world.canonical(scene))
    return out


def accuracy(kit: kl.Kit, combos=HELD_OUT) -> dict:
    hits: dict[str, list[bool]] = {key: [] for key in (*TARGETS, "size")}
    for seed, prompt in enumerate(prompts(combos=combos)):
        image = kl.text_to_image(kit, kl.TextToImage(prompt=prompt, seed=seed, **STEPS)).images[0]
        for key, ok in judge.agrees(judge.describe(image), world.parse(prompt)).items():
            hits[key].append(ok)
    return {key: sum(v) / len(v) for key, v in hits.items()}


def object_rgb(image) -> np.ndarray | None:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    mask = judge.object_mask(pixels, np.median(border, axis=0))
    return np.median(pixels[mask], axis=0) if mask.sum() >= judge.MIN_OBJECT_PIXELS else None


def mixing(kit: kl.Kit) -> dict:
    between, total = 0, 0
    for seed, (a, b) in enumerate(MIX_PAIRS):
        background = "white" if "white" not in (a, b) else "black"
        ends = [f"a large {color} circle on a {background} background" for color in (a, b)]
        colors = []
        for t in MIX_STEPS:
            s = kl.Interpolation(items=tuple(ends), weights=(1 - t, t), seed=seed, **STEPS)
            colors.append(object_rgb(kl.interpolate(kit, s).images[0]))
        low, high = colors[0], colors[-1]
        for c in colors[1:-1]:
            total += 1
            if c is not None and low is not None and high is not None:
                between += bool(np.all(c >= np.minimum(low, high) - BETWEEN_TOLERANCE) and np.all(c <= np.maximum(low, high) + BETWEEN_TOLERANCE))
    return {"between": between / total, "steps": total}


def picture_seconds(kit: kl.Kit) -> float:
    """One 64×64 picture, 25 + 25 steps, in a warm process: median of 7 (on any device: the PIL
    picture comes back on the CPU, so an accelerator has finished)."""
    kl.text_to_image(kit, kl.TextToImage(prompt="a red circle on a white background", seed=100, **STEPS))  # warm-up
    times = []
    for seed in range(7):  # new seeds: no remembered prior output
        start = time.perf_counter()
        kl.text_to_image(kit, kl.TextToImage(prompt="a red circle on a white background", seed=1000 + seed, **STEPS))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(kit: kl.Kit) -> dict:
    image_s = picture_seconds(kit)
    code = (
        "import kandinsky_lab as kl; kit = kl.load('nano', device='cpu'); "
        "kl.text_to_image(kit, kl.TextToImage(prompt='a red circle on a white background', prior_steps=25, steps=25))"
    )
    firsts = []
    for _ in range(FRESH_PROCESSES):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        firsts.append(time.perf_counter() - start)
    return {"image_s": image_s, "first_image_s": statistics.median(firsts), "first_range": (min(firsts), max(firsts))}


PROBED = ("color", "background", "shape", "position", "size")


def probes(kit: kl.Kit, pictures: int = PROBE_PICTURES) -> dict:
    """A linear classifier per attribute, trained on 3/4 of `pictures` rendered pictures' image
    embeddings: {attribute: (classifier, its class names, accuracy on the other 1/4)}."""
    rng = random.Random(11)
    scenes = [world.sample(rng) for _ in range(pictures)]
    x = torch.nn.functional.normalize(evaluate.image_features(kit, [world.render(scene) for scene in scenes], batch=256).float(), dim=1)
    split, found = pictures * 3 // 4, {}
    for key in PROBED:
        names = sorted({getattr(scene, key) for scene in scenes})
        y = torch.tensor([names.index(getattr(scene, key)) for scene in scenes])
        probe = torch.nn.Linear(x.shape[1], len(names))
        torch.nn.init.zeros_(probe.weight)
        torch.nn.init.zeros_(probe.bias)
        optimizer = torch.optim.Adam(probe.parameters(), lr=0.05)
        for _ in range(500):
            loss = torch.nn.functional.cross_entropy(probe(x[:split]), y[:split])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        found[key] = (probe, names, (probe(x[split:]).argmax(1) == y[split:]).float().mean().item())
    return found


@torch.no_grad()
def prior_read(kit: kl.Kit, found: dict) -> dict:
    """The accuracy benchmark's prompts and seeds through the prior alone (the kit's defaults), its
    embeddings read by the probes: what the prior hands the UNet, before any picture is drawn."""
    s = kl.TextToImage(prompt="")
    hits = {key: [] for key in PROBED}
    for seed, prompt in enumerate(prompts()):
        e = embeddings.prompt_embeddings(kit, prompt, s.negative_prompt, STEPS["prior_steps"], s.prior_guidance_scale, [seed]).image_embeds
        e = torch.nn.functional.normalize(e.float().cpu(), dim=1)
        asked = world.parse(prompt)
        for key, (probe, names, _) in found.items():
            hits[key].append(names[probe(e).argmax(1).item()] == asked[key])
    return {key: sum(v) / len(v) for key, v in hits.items()}


def decoder_from_true_embeddings(kit: kl.Kit) -> dict:
    """The accuracy benchmark's prompts, decoded from a rendered picture's embedding (no prior)."""
    rng, hits = random.Random(3), {key: [] for key in TARGETS}
    negative = kit.prior.get_zero_embed()
    for seed, prompt in enumerate(prompts()):
        scene = world.scene_for(prompt, rng)
        embedding = embeddings.image_embedding(kit, world.render(scene))
        image = kit.decoder(
            image_embeds=embedding,
            negative_image_embeds=negative,
            height=64,
            width=64,
            num_inference_steps=STEPS["steps"],
            guidance_scale=4.0,
            generator=torch.Generator().manual_seed(seed),
        ).images[0]
        for key, ok in judge.agrees(judge.describe(image), world.parse(prompt)).items():
            if key in hits:
                hits[key].append(ok)
    return {key: sum(v) / len(v) for key, v in hits.items()}


def section(acc: dict, mix: dict, fast: dict, probe: dict, prior: dict, true: dict, seen: dict) -> list[str]:
    mark = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    rows = [
        f"| {key} accuracy | **{acc[key]:.1%}** | ≥ {target:.0%} | {mark(acc[key] >= target)} |" for key, target in TARGETS.items()
    ]
    return [
        "## Nano model",
        "",
        f"The shipped `nano` model (kandinsky_lab/models/nano, model card there), on this machine's CPU on "
        f"{time.strftime('%Y-%m-%d', time.gmtime())} (the machines here have differed by up to 3× in speed from day to day). "
        f"{PROMPTS} prompts built from the {len(HELD_OUT)} (shape, color, background) combinations held out of "
        f"training, one picture each, {STEPS['prior_steps']} prior + {STEPS['steps']} decoder steps, judged by "
        "kandinsky_lab/judge.py (pixel statistics, no model). Position counts the center for prompts that name no place.",
        "",
        "| figure | measured | target | met |",
        "| --- | --- | --- | --- |",
        *rows,
        f"| size accuracy (not a target) | {acc['size']:.1%} | – | – |",
        f"| interpolation: in-between steps whose object color lies between the ends ({mix['steps']} steps) "
        f"| **{mix['between']:.1%}** | – | – |",
        f"| one 64×64 picture, 25 + 25 steps (median of 7) | **{fast['image_s']:.2f} s** | ≤ 1 s | {mark(fast['image_s'] <= 1)} |",
        f"| first picture from a fresh process (import + load + generate; median of {FRESH_PROCESSES} processes, "
        f"{fast['first_range'][0]:.1f}–{fast['first_range'][1]:.1f} s) | **{fast['first_image_s']:.1f} s** | ≤ 10 s "
        f"| {mark(fast['first_image_s'] <= 10)} |",
        "",
        "Diagnosis, stage by stage: a linear probe's held-out accuracy on the image embeddings of "
        f"{PROBE_PICTURES} rendered pictures (what the prior learns to predict and the UNet is given; chance: "
        "color and background 12.5 %, shape 25 %, position 20 %, size 50 %); the prior's embeddings for the "
        "prompts above (same seeds and guidance), read by the same probes; the same prompts decoded from a rendered "
        "picture's embedding instead of the prior's (the UNet and MoVQ alone); and the whole model on "
        f"{PROMPTS} prompts from combinations it was trained on (what it memorised, beside what it generalises).",
        "",
        "| stage | color | background | shape | position | size |",
        "| --- | --- | --- | --- | --- | --- |",
        "| image embedding, linear probe | " + " | ".join(f"{probe[key]:.1%}" for key in PROBED) + " |",
        "| the prior's embedding for the prompts above, read by those probes | " + " | ".join(f"{prior[key]:.1%}" for key in PROBED) + " |",
        "| decoder from true embeddings | " + " | ".join(f"{true[key]:.1%}" for key in TARGETS) + " | – |",
        "| whole model, prompts from trained combinations | " + " | ".join(f"{seen[key]:.1%}" for key in (*TARGETS, "size")) + " |",
        "",
    ]


def main() -> None:
    torch.set_num_threads(2)
    kit = kl.load("nano", device="cpu")
    found = probes(kit)
    read = {key: share for key, (_, _, share) in found.items()}
    diagnosis = read, prior_read(kit, found), decoder_from_true_embeddings(kit), accuracy(kit, combos=TRAINING)
    lines = section(accuracy(kit), mixing(kit), speed(kit), *diagnosis)
    sections.write("nano", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
