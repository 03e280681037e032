"""`python -m benchmarks.run` (`make bench`): measure the kit against raw diffusers and the model card.

Writes benchmarks/results.md. Every ratio is measured side by side in this one run, on this machine:
    (a) time: the kit's text_to_image vs the same prior + decoder calls made on diffusers directly,
        same model, same settings, same seeds, alternating, median of REPEATS each
    (b) memory: one process running all three tasks through the kit vs one running the model card's
        three snippets (three separate loads), each in a fresh process, on a ~760 MB model folder
    (c) prior calls made by a 3x3 decoder sweep (guidance x steps)
    (d) each notebook's run time, top to bottom in a fresh kernel, on the offline model
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

import kandinsky_lab as kl
from benchmarks import sections
from benchmarks.models import SIZE, save_large, weight_bytes
from benchmarks.notebooks import table, time_notebooks

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results.md"
REPEATS = 7
SETTINGS = kl.TextToImage(prompt="a red circle on a blue background", prior_steps=10, steps=10, height=SIZE, width=SIZE, seed=1)


def raw_prior(kit: kl.Kit, s: kl.TextToImage):
    """The prior as a user of diffusers calls it, with a CPU generator."""
    return kit.prior(
        s.prompt,
        num_inference_steps=s.prior_steps,
        guidance_scale=s.prior_guidance_scale,
        generator=torch.Generator("cpu").manual_seed(s.seed),
    )


def raw_diffusers(kit: kl.Kit, s: kl.TextToImage):
    """What a user of diffusers writes for the same picture: prior, then decoder, each with a CPU generator."""
    prior = raw_prior(kit, s)
    return kit.decoder(
        image_embeds=prior.image_embeds,
        negative_image_embeds=prior.negative_image_embeds,
        height=s.height,
        width=s.width,
        num_inference_steps=s.steps,
        guidance_scale=s.guidance_scale,
        generator=torch.Generator("cpu").manual_seed(s.seed),
    ).images


def through_kit(kit: kl.Kit, s: kl.TextToImage):
    kit.cache.clear()  # the same work: no remembered prior output
    return kl.text_to_image(kit, s).images


def timed(kit: kl.Kit, fn) -> float:
    """Seconds `fn()` takes, waiting for the GPU's queued work when the Kit runs on CUDA."""
    sync = torch.cuda.synchronize if kit.execution_device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def alternating(kit: kl.Kit, kit_fn, raw_fn, repeats: int) -> dict[str, list[float]]:
    """Seconds of `repeats` runs each of two calls, after one warm-up each, in alternating order (kit first, then raw first)."""
    kit_fn(), raw_fn()  # warm-up
    times = {"kit": [], "raw": []}
    for i in range(repeats):
        order = [("kit", kit_fn), ("raw", raw_fn)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            times[name].append(timed(kit, fn))
    return times


def time_ratio(kit: kl.Kit, settings: kl.TextToImage = SETTINGS, repeats: int = REPEATS) -> dict:
    """The kit's text_to_image against the same calls on diffusers: one warm-up each, then alternating, medians."""
    times = alternating(kit, lambda: through_kit(kit, settings), lambda: raw_diffusers(kit, settings), repeats)
    kit_s, raw_s = statistics.median(times["kit"]), statistics.median(times["raw"])
    same = [im.tobytes() for im in through_kit(kit, settings)] == [im.tobytes() for im in raw_diffusers(kit, settings)]
    return {"kit_s": kit_s, "raw_s": raw_s, "ratio": kit_s / raw_s, "same_pixels": same, "kit_all": times["kit"], "raw_all": times["raw"]}


def memory_ratio(folder: Path) -> dict:
    out = {}
    for way in ("kit", "card"):
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", way, str(folder)], cwd=ROOT, capture_output=True, text=True, check=True
        )
        out[way] = json.loads(proc.stdout.strip().splitlines()[-1])["held"]
    return {"kit_mb": out["kit"] / 2**20, "card_mb": out["card"] / 2**20, "ratio": out["kit"] / out["card"]}


def sweep_prior_calls(kit: kl.Kit) -> dict:
    kit.cache.clear()
    s = kl.TextToImage(prompt="a red circle", prior_steps=10, steps=4, height=SIZE, width=SIZE)
    sw = kl.sweep(kit, s, x=("guidance_scale", [1.0, 4.0, 8.0]), y=("steps", [2, 4, 6]))
    return {"prior_calls": sw.prior_runs, "decoder_calls": sw.decoder_calls}


def main() -> None:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_large(Path(tmp) / "bench-large")
        sizes = weight_bytes(folder)
        kit = kl.load(folder, device="cpu")
        a = time_ratio(kit)
        c = sweep_prior_calls(kit)
        del kit
        b = memory_ratio(folder)
    d = time_notebooks()
    total_mb = sum(sizes.values()) / 2**20
    prior_share = sizes["prior"] / sum(sizes.values())
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`python -m benchmarks.run`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"in {time.perf_counter() - started:.0f} s.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU used; torch {torch.__version__}, "
        f"Python {platform.python_version()}.",
        "",
        f"Model: random weights, Kandinsky 2.2 component classes, saved with `save_pretrained` "
        f"({total_mb:.0f} MB of safetensors, prior side {prior_share:.0%} like the real model's ~7 : 3), "
        f"{SIZE}x{SIZE} pixels.",
        "",
        "## Kit vs diffusers and the model card",
        "",
        "| figure | kit | reference | ratio | target |",
        "| --- | --- | --- | --- | --- |",
        f"| (a) text→image time, {SETTINGS.prior_steps} prior + {SETTINGS.steps} decoder steps, median of {REPEATS} "
        f"| {a['kit_s']:.3f} s | raw diffusers {a['raw_s']:.3f} s | **{a['ratio']:.3f}** | ≤ 1.02 |",
        f"| (b) memory held after text→image, image→image and interpolation (peak RSS − RSS after imports) "
        f"| {b['kit_mb']:.0f} MB | model card's three loads {b['card_mb']:.0f} MB | **{b['ratio']:.3f}** | ≤ 0.45 |",
        f"| (c) prior calls in a 3×3 decoder sweep (guidance × steps) "
        f"| {c['prior_calls']} | one per cell: 9 | {c['prior_calls']}/9 | 1 |",
        "",
        f"(a) the kit and raw diffusers made the same pixels: {a['same_pixels']}. "
        f"(c) the sweep made {c['decoder_calls']} decoder calls.",
        "",
        "## Notebooks",
        "",
        "Each notebook top to bottom in a fresh kernel (start-up and imports included) on the offline `nano` "
        "model, CPU only, as `pytest --nbval-lax` runs them:",
        "",
        *table(d),
        "",
        "GPU figures are in their own section below, written by `python -m benchmarks.gpu` on a CUDA machine.",
        "",
    ]
    RESULTS.write_text("\n".join(lines) + ("\n" + sections.existing() + "\n" if sections.existing() else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
