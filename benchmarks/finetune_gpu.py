"""`python -m benchmarks.finetune_gpu`: kl.finetune on the real-scale model, on a lent GPU: seconds per step and peak memory.

The replica (benchmarks/replica.py: the official configs, seeded random weights) filed under the official
ids in a hub cache (scripts/gpu_loan.sh finetune builds it), loaded with kl.load("kandinsky-2-2") in float16.
For each combination of size (512², 768²), rank (4, 16), part (decoder, prior) and gradient checkpointing
(off, on; the PriorTransformer cannot checkpoint, and works on embeddings whatever the size: once): a run of STEPS steps on PICTURES random pictures, batch 1, the first WARM_UP steps not timed;
the peak is torch.cuda.max_memory_allocated over the run. Then the same under a T4's 15 GiB
(torch.cuda.set_per_process_memory_fraction, as the real-scale T4 simulation does): which fit.

    --exercise   on a CPU with nano under the official ids (64², 2 steps): every line runs, nothing is written

Prints a markdown table and writes it (with the raw rows as JSON) to --out.
"""

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

import kandinsky_lab as kl

STEPS, WARM_UP, PICTURES = 6, 2, 4
T4_GIB = 15.0


def pictures(size: int, count: int = PICTURES, seed: int = 0) -> list:
    import PIL.Image

    g = torch.Generator().manual_seed(seed)
    return [PIL.Image.fromarray((torch.rand(size, size, 3, generator=g) * 255).byte().numpy()) for _ in range(count)]


def measure(kit, size: int, rank: int, part: str, checkpointing: bool, steps: int, folder: Path) -> dict:
    times = []
    settings = kl.FineTune(pictures=pictures(size), captions=("a photo of a sks cat",) * PICTURES, parts=(part,), rank=rank,
                           steps=steps, batch_size=1, size=size, gradient_checkpointing=checkpointing, learning_rate=1e-4)  # fmt: skip
    if kit.device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    row = {"size": size, "rank": rank, "part": part, "checkpointing": checkpointing}
    try:
        run = kl.finetune(kit, settings, save_to=folder, on_progress=lambda event: times.append(time.perf_counter()))
    except kl.GPUOutOfMemory:
        return row | {"fits": False}
    timed = times[WARM_UP:] if len(times) > WARM_UP + 1 else times
    per_step = (timed[-1] - timed[0]) / max(1, len(timed) - 1)
    peak = torch.cuda.max_memory_allocated() / 2**30 if kit.device.type == "cuda" else None
    return row | {"fits": True, "seconds_per_step": per_step, "peak_gib": peak, "trainable": sum(run.trainable.values())}


def table(rows: list[dict], title: str) -> list[str]:
    lines = [f"### {title}", "", "| size | rank | part | gradient checkpointing | s / step | peak GiB | LoRA parameters |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if not r["fits"]:
            lines.append(f"| {r['size']}² | {r['rank']} | {r['part']} | {'on' if r['checkpointing'] else 'off'} | out of memory | – | – |")
            continue
        peak = "–" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        lines.append(f"| {r['size']}² | {r['rank']} | {r['part']} | {'on' if r['checkpointing'] else 'off'} | {r['seconds_per_step']:.2f} | {peak} | {r['trainable']:,} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", action="store_true", help="nano under the official ids on this CPU, tiny sizes")
    parser.add_argument("--out", default="outputs/benchmarks/finetune_gpu")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kit = kl.load("kandinsky-2-2", device="cpu") if args.exercise else kl.load("kandinsky-2-2")
    sizes, steps = ((64,), 2) if args.exercise else ((512, 768), STEPS)
    # the PriorTransformer cannot checkpoint (and its memory does not depend on the picture size): one size for it
    grid = [c for c in itertools.product(sizes, (4, 16), ("decoder", "prior"), (False, True)) if c[2] == "decoder" or (not c[3] and c[0] == sizes[0])]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (exercise)"
    rows = [measure(kit, *combo, steps, out / "adapter") for combo in grid]
    lines = [f"`python -m benchmarks.finetune_gpu` on {device}, {kit.dtype}: batch 1, {steps} steps ({WARM_UP} not timed)", ""]
    lines += table(rows, "Full GPU")
    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(min(1.0, T4_GIB * 2**30 / torch.cuda.get_device_properties(0).total_memory))
        capped = [measure(kit, *combo, steps, out / "adapter") for combo in grid]
        lines += table(capped, f"Under a T4's {T4_GIB:g} GiB (set_per_process_memory_fraction)")
        rows += [r | {"t4_cap": True} for r in capped]
    text = "\n".join(lines)
    print(text)
    if not args.exercise:
        (out / "finetune_gpu.md").write_text(text)
        (out / "finetune_gpu.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
