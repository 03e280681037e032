"""`python -m benchmarks.samplers` (part of `make bench`): how many decoder steps each sampler needs on nano.

Writes the "samplers" section of benchmarks/results.md:
    accuracy   for each sampler and decoder step count, nano's held-out prompts (benchmarks/nano.py),
               PROMPTS prompts × SEEDS seeds, judged by kandinsky_lab/judge.py: the share of (color,
               background, shape, position) judgements that are right, averaged over the pictures.
               The prior's embeddings are the same for every cell (the Kit remembers them).
    steps      the fewest steps at which each sampler comes within TOLERANCE of DDPM at 50 steps
               (the model card's decoder) — what each sampler needs to match it
    time       one picture (25 prior + that many decoder steps) against DDPM-50, side by side in this
               run, alternating, median of REPEATS: what it saves per picture on this CPU
The replica's seconds per picture for each sampler on a GPU are in the real-scale GPU section.
"""

import statistics
import time

import torch

import kandinsky_lab as kl
from benchmarks import sections
from benchmarks.nano import TARGETS, prompts
from kandinsky_lab import judge, samplers, world
from kandinsky_lab.settings import SAMPLERS

PROMPTS, SEEDS = 33, 4  # 132 pictures per cell
STEPS = (2, 3, 5, 10, 25, 50)
REFERENCE = ("ddpm", 50)
TOLERANCE = 0.01  # "as accurate as DDPM-50": within one percentage point of its mean accuracy
REPEATS = 7


def accuracy(kit: kl.Kit, sampler: str, steps: int) -> dict:
    hits: dict[str, list[bool]] = {key: [] for key in TARGETS}
    for i, prompt in enumerate(prompts(PROMPTS)):
        s = kl.TextToImage(prompt=prompt, seed=SEEDS * i, num_images=SEEDS, prior_steps=25, steps=steps, sampler=sampler)
        for image in kl.text_to_image(kit, s).images:
            for key, ok in judge.agrees(judge.describe(image), world.parse(prompt)).items():
                if key in hits:
                    hits[key].append(ok)
    per_key = {key: sum(v) / len(v) for key, v in hits.items()}
    return per_key | {"mean": statistics.mean(per_key.values())}


def steps_needed(grid: dict, sampler: str, reference: float) -> int | None:
    return next((steps for steps in STEPS if grid[sampler, steps]["mean"] >= reference - TOLERANCE), None)


def picture_seconds(kit: kl.Kit, pairs: list[tuple[str, int]]) -> dict:
    """Median seconds of one whole picture for each (sampler, steps), measured alternating, prior not remembered."""
    times = {pair: [] for pair in pairs}
    for r in range(REPEATS + 1):
        for sampler, steps in pairs if r % 2 else pairs[::-1]:
            kit.cache.clear()
            s = kl.TextToImage(prompt="a red circle on a white background", seed=r, prior_steps=25, steps=steps, sampler=sampler)
            start = time.perf_counter()
            kl.text_to_image(kit, s)
            if r:  # the first round warms up
                times[sampler, steps].append(time.perf_counter() - start)
    return {pair: statistics.median(t) for pair, t in times.items()}


def section(grid: dict, needed: dict, seconds: dict, minutes: float) -> list[str]:
    reference = grid[REFERENCE]["mean"]
    ref_s = seconds[REFERENCE]
    lines = [
        "## Samplers on nano",
        "",
        f"`python -m benchmarks.samplers` on this machine's CPU ({minutes:.0f} min): {PROMPTS} held-out prompts × {SEEDS} seeds "
        "per cell, 25 prior steps, judged by kandinsky_lab/judge.py. Mean accuracy = share of right (color, background, "
        "shape, position) judgements; shape in brackets.",
        "",
        "| sampler | " + " | ".join(f"{n} steps" for n in STEPS) + " |",
        "| --- | " + " | ".join("---" for _ in STEPS) + " |",
    ]
    for sampler in SAMPLERS:
        cells = [f"{grid[sampler, n]['mean']:.1%} ({grid[sampler, n]['shape']:.0%})" for n in STEPS]
        lines.append(f"| {samplers.LABELS[sampler]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Steps each sampler needs to come within {TOLERANCE:.0%} of DDPM at 50 steps ({reference:.1%}), and one whole "
        f"picture's time against DDPM-50's {ref_s:.2f} s (25 + 50 steps), side by side, median of {REPEATS}:",
        "",
        "| sampler | decoder steps | one picture | saved per picture |",
        "| --- | --- | --- | --- |",
    ]
    for sampler in SAMPLERS:
        n = needed[sampler]
        if n is None:
            lines.append(f"| {samplers.LABELS[sampler]} | not within {max(STEPS)} | – | – |")
            continue
        s = seconds[sampler, n]
        lines.append(f"| {samplers.LABELS[sampler]} | {n} | {s:.2f} s | {ref_s - s:.2f} s ({(ref_s - s) / ref_s:.0%}) |")
    if all(grid["ddim", n] == grid["euler", n] for n in STEPS):
        lines += ["", "DDIM and Euler score the same in every cell: on the same timesteps, Euler's steps at the UNet's input "
                  "scale are DDIM's steps (the probability-flow ODE, solved the same way)."]
    fewest = min(STEPS)
    best = max(grid[name, fewest]["mean"] for name in SAMPLERS)
    leaders = " and ".join(samplers.LABELS[name] for name in SAMPLERS if grid[name, fewest]["mean"] == best)
    reached = [n for n in needed.values() if n is not None]
    everyone = "every sampler draws" if len(reached) == len(needed) else f"{len(reached)} of {len(needed)} samplers draw"
    lines += ["", f"The judge reads what is drawn (color, background, shape, place), not finish: by {max(reached, default=max(STEPS))} "
              f"steps {everyone} what DDPM-50 draws on nano; at {fewest} steps {leaders} lead ({best:.1%})."]
    lines.append("")
    return lines


def main() -> None:
    torch.set_num_threads(2)
    start = time.perf_counter()
    kit = kl.load("nano", device="cpu")
    grid = {}
    for sampler in SAMPLERS:
        for steps in STEPS:
            grid[sampler, steps] = accuracy(kit, sampler, steps)
            print(sampler, steps, {k: round(v, 3) for k, v in grid[sampler, steps].items()}, flush=True)
    reference = grid[REFERENCE]["mean"]
    needed = {sampler: steps_needed(grid, sampler, reference) for sampler in SAMPLERS}
    pairs = list(dict.fromkeys([REFERENCE, *((s, n) for s, n in needed.items() if n is not None)]))
    seconds = picture_seconds(kit, pairs)
    lines = section(grid, needed, seconds, (time.perf_counter() - start) / 60)
    sections.write("samplers", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
