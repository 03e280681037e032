"""`python -m benchmarks.real_scale` (part of `make bench`): the real model's path, at real scale, without its weights.

A replica (benchmarks/replica.py: the official configs, seeded random weights, 9.8 GB in float16) is
filed under the official repository ids in a fresh hub cache, and every measurement loads it with
`kl.load("kandinsky-2-2")` in a fresh process with the hub out of reach (real_scale_child.py): the
path of a returning user whose model is cached.

    CPU (any machine; --part cpu)
        parameter counts per component against the published sizes; build time; load time and peak
        RAM in bfloat16 (this CPU's fast 16-bit type; float32 would need ~20 GB), for both weight
        layouts (image encoder as safetensors, and as the pickled .bin the hub may hold); one small
        text→image, image→image and interpolation, so every module provably runs.
    GPU (CUDA; --part gpu; about 10 minutes on an H100, each job under 10 minutes)
        float16: every offload preset × 512², 768², 1024², 1024×576 at 25 + 50 steps, peak memory and
        seconds; the kit against raw diffusers at 768²; a T4 simulation (15 GiB per-process cap): which
        presets run 768² and 1024², refusals before the prior, memory.py's prediction against the
        measured peak; channels-last and torch.compile; every notebook through nbval under the cap.

Writes the "real_scale" (CPU) and "real_scale_gpu" sections of benchmarks/results.md. Without CUDA the
GPU section is left as it is. `--exercise` runs the GPU jobs on the CPU with nano filed under the
official ids (small sizes, few steps): every line of the GPU script runs, no figure is written.

On a GPU lent for ~15 minutes (10 a command), run the jobs in parts on the same warm machine; the
replica is built once (about a minute on an H100) and the section collects every part (root/gpu.json).
Each part is its own process, so one that fails or runs out of time loses only its own figures:

    python -m benchmarks.real_scale --part gpu --root /tmp/rs --keep --jobs table --presets none,model
    python -m benchmarks.real_scale --part gpu --root /tmp/rs --keep --jobs t4
    python -m benchmarks.real_scale --part gpu --root /tmp/rs --keep --jobs notebooks --workers 4
    python -m benchmarks.real_scale --part gpu --root /tmp/rs --keep --jobs samplers
    python -m benchmarks.real_scale --part gpu --root /tmp/rs --keep --jobs table --presets sequential --sizes 768x768
    python -m benchmarks.real_scale --part gpu --root /tmp/rs --keep --jobs levers

On the H100 of a first loan these took 1:50 (with the build), 1:30, 1:50, 1:10, 1:25 and 2:30; on the H200 of a
second, `--jobs t4` with the build (now 15.2 GB: the inpainting and ControlNet UNets and the depth estimator too)
3:20, `--jobs notebooks --workers 8` (nine notebooks) 2:10 and `--jobs table --presets none --sizes 768x768`
1:40. Earlier loans' figures are kept in benchmarks/real_scale_gpu.json, where a new loan's run starts from:
copy its root/gpu.json back there after the loan (each part names the GPU it ran on). The lent
machine's Python had torch, transformers, huggingface_hub and accelerate but not diffusers, nbclient,
nbval, ipykernel or ipywidgets: carry those as wheels for its Python (3.12) and put them first on
PYTHONPATH, with the repository root (the notebooks' kernels import kandinsky_lab from there).
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import torch

from benchmarks import hub_cache, replica, sections
from kandinsky_lab import samplers
from kandinsky_lab.loading import HUB_DECODER, HUB_PRIOR, NANO_FOLDER

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
SIZES = [(512, 512), (768, 768), (1024, 1024), (576, 1024)]  # (height, width)
T4_CAP_GIB = 15.0  # what a 16 GB T4 leaves a process
SAVED = ROOT / "benchmarks" / "real_scale_gpu.json"  # the section's figures from every loan so far (each part names its GPU)
NOTEBOOK_STEPS = 10  # decoder steps for the notebook run on the GPU (pictures are noise); the prior keeps its 25, so
# emb2emb strength sweeps run the prior steps a learner's run does (notebook 08's 0.05 × 10 would be none)


def child(job: str, options: dict, cache: Path, timeout: int = 600) -> dict:
    """Run one job of real_scale_child.py with `cache` as the hub cache and the hub out of reach."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "KANDINSKY_LAB"))}
    env |= {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    command = [sys.executable, "-m", "benchmarks.real_scale_child", job, json.dumps(options)]
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{job} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_part(root: Path) -> dict:
    counts = {name: replica.count(cls, config) for _, name, config, cls, _ in replica.MODELS}
    layouts = {}
    for layout in ("safetensors", "bin"):
        cache = root / f"cpu-{layout}"
        start = time.perf_counter()
        built = replica.build_in_cache(cache, image_encoder_format=layout)
        built["total_s"] = time.perf_counter() - start
        layouts[layout] = {"built": built, "loaded": child("load", {"dtype": "bfloat16", "side": 64, "steps": 2}, cache, timeout=1800)}
        shutil.rmtree(cache)
    return {"counts": counts, "layouts": layouts}


def notebooks_under_cap(cache: Path, cap_gib: float, steps: int, names: list[str] | None = None, workers: int = 1, timeout: int = 900) -> list[dict]:
    """Each notebook through `pytest --nbval-lax` on the cached model, in a kernel capped at `cap_gib` of GPU memory.

    The copies run without their `# NBVAL_CHECK_OUTPUT` references (those hold nano's shapes and sizes) and
    with `steps` decoder steps in place of the GPU's 50 (pictures are noise here; what counts is that every
    cell runs within the cap); the prior keeps its 25. `workers` notebooks run at a time, each in its own capped
    process (an H100's 80 GB holds four T4s' worth); their times then include sharing the GPU.
    """
    work = Path(tempfile.mkdtemp(prefix="real-scale-notebooks-"))
    shutil.copytree(ROOT / "notebooks", work / "notebooks", ignore=shutil.ignore_patterns("outputs", ".ipynb_checkpoints"))
    startup = work / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-cap.py").write_text(
        "import torch\n"
        "if torch.cuda.is_available():\n"
        f"    torch.cuda.set_per_process_memory_fraction(min(1.0, {cap_gib} * 2**30 / torch.cuda.mem_get_info()[1]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "KANDINSKY_LAB"))}
    env |= {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    env |= {"KANDINSKY_LAB_SOURCE": "kandinsky-2-2", "IPYTHONDIR": str(work / "ipython")}
    paths = [p for p in sorted((work / "notebooks").glob("*.ipynb")) if not names or p.stem in names]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.source = cell.source.replace("# NBVAL_CHECK_OUTPUT\n", "")
            cell.source = re.sub(r"prior_steps=25, steps=50\)", f"prior_steps=25, steps={steps})", cell.source)
        nbformat.write(nb, path)

    def run(path: Path) -> dict:
        start = time.perf_counter()
        command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q", str(path)]
        out = subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True, timeout=timeout)
        return {"notebook": path.name, "s": time.perf_counter() - start, "passed": out.returncode == 0, "tail": out.stdout[-1500:]}

    with ThreadPoolExecutor(max_workers=workers) as pool:  # threads only wait on the pytest processes
        results = list(pool.map(run, paths))
    shutil.rmtree(work)
    return results


def gpu_part(
    root: Path, jobs: list[str], device: str = "cuda", exercise: bool = False, keep: bool = False,
    presets: list | None = None, sizes: list | None = None, workers: int = 1,
) -> dict:
    """Run the GPU `jobs` on the replica (built into root/gpu, or reused from there with `keep`).

    `presets` and `sizes` limit the table to some offload presets and sizes (a later run adds the other
    rows: the slow sequential preset can then be run size by size); `workers` notebooks run at a time.
    """
    cache = root / "gpu"
    if exercise:  # nano (its inpainting and ControlNet UNets, its depth estimator) under the official ids: every GPU job's code runs on the CPU
        hub_cache.store_kit_folder(NANO_FOLDER, cache)
        built, every_size, every_preset, steps = {}, [(64, 64), (32, 64)], [None], dict(prior_steps=2, steps=2)
    else:
        if (hub_cache.repo_folder(cache, HUB_DECODER) / "refs" / "main").exists():
            built = {"reused": str(cache)}  # built by an earlier run with --keep
        else:
            start = time.perf_counter()
            built = replica.build_in_cache(cache, device=device, extras=True)  # notebooks 07 and 08 load the extras
            built["total_s"] = time.perf_counter() - start
        every_size, every_preset, steps = SIZES, [None, "model", "sequential"], dict(prior_steps=25, steps=50)
    ratio_size = every_size[min(1, len(every_size) - 1)]  # 768² at real scale
    out = {"built": built, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "torch": torch.__version__}
    if "table" in jobs:
        out["table"] = child("table", {"device": device, "presets": presets or every_preset, "sizes": sizes or every_size, "ratio_size": ratio_size, "repeats": 7, **steps}, cache)
    if "t4" in jobs:
        sides = [64] if exercise else [768, 1024, 1536]  # 1536²: too large for a T4 without offload
        out["t4"] = child("t4", {"device": device, "presets": every_preset, "cap_gib": T4_CAP_GIB, "sides": sides, "batch_side": sides[0], "prior_steps": steps["prior_steps"], "steps": 2 if exercise else 10}, cache)
    if "levers" in jobs:
        out["levers"] = child("levers", {"device": device, "size": ratio_size, "compile": not exercise, **steps}, cache)
    if "samplers" in jobs:
        out["samplers"] = child("samplers", {"device": device, "size": ratio_size, "steps": [2] if exercise else [10, 20, 50], "prior_steps": steps["prior_steps"]}, cache)
    if "notebooks" in jobs:
        names = ["00_setup_and_tour"] if exercise else None  # nano renders the real model's 768² here: minutes a notebook on a CPU
        steps_run = 2 if exercise else NOTEBOOK_STEPS
        out["notebooks"] = {"workers": workers, "prior_steps": 25, "steps": steps_run, "rows": notebooks_under_cap(cache, T4_CAP_GIB, steps_run, names, workers)}
    if not keep:
        shutil.rmtree(cache)
    return named(out)


def named(figures: dict) -> dict:
    """Each part of a run's figures — and each table row and the kit-vs-raw ratio — with the GPU and torch it ran on,
    unless it names them already: one section gathers parts of several runs, on several loans."""
    for job in ("table", "t4", "levers", "samplers", "notebooks"):
        if isinstance(figures.get(job), dict):
            figures[job].setdefault("device", figures.get("device"))
            figures[job].setdefault("torch", figures.get("torch"))
    table = figures.get("table")
    if table:
        for row in table["rows"]:
            row.setdefault("device", table["device"])
        if table["kit_vs_raw"]:
            table["kit_vs_raw"].setdefault("device", table["device"])
            table["kit_vs_raw"].setdefault("torch", table["torch"])
    return figures


def merged(earlier: dict, found: dict) -> dict:
    """An earlier run's figures (root/gpu.json) with this run's added; table rows add up by preset, size and GPU."""
    if "reused" in found["built"] and "built" in earlier:
        found["built"] = earlier["built"]  # the build time of the run that made the replica
    earlier, found = named(earlier), named(found)  # figures from before parts named their GPU get their run's
    if "table" in found and "table" in earlier:
        key = lambda r: (r["preset"], r["height"], r["width"])  # noqa: E731
        ran = {(*key(r), r["device"]) for r in found["table"]["rows"]}  # a row is replaced on the same GPU, kept beside another's
        rows = [r for r in earlier["table"]["rows"] if (*key(r), r["device"]) not in ran] + found["table"]["rows"]
        order = [(p, h, w) for p in (None, "model", "sequential") for h, w in SIZES]
        found["table"]["rows"] = sorted(rows, key=lambda r: order.index(key(r)) if key(r) in order else len(order))  # stable: earlier loans first
        found["table"]["kit_vs_raw"] = found["table"]["kit_vs_raw"] or earlier["table"]["kit_vs_raw"]
    return earlier | found


def failure(tail: str) -> str:
    """The error a failed nbval run ended with (its last `SomethingError: …` line), without terminal colours."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", tail)
    errors = [line.strip() for line in plain.splitlines() if re.match(r"\s*\w+(Error|Exception): ", line)]
    return (errors[-1][:200] if errors else "see gpu.json").replace("|", "/")


def gib(value) -> str:
    return "–" if value is None else f"{value:.2f} GiB"


def cpu_section(found: dict, seconds: float) -> list[str]:
    counts = found["counts"]
    lines = [
        "## Real scale (CPU)",
        "",
        f"`python -m benchmarks.real_scale --part cpu` on {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"in {seconds / 60:.1f} min. A replica of Kandinsky 2.2 (benchmarks/replica.py): the official repositories' configs "
        "with seeded random weights in float16, filed under `kandinsky-community/kandinsky-2-2-prior` and `…-decoder` in a "
        "fresh hub cache, then loaded by `kl.load(\"kandinsky-2-2\")` in a fresh process with the hub out of reach.",
        "",
        "Parameters against the sizes the official weight files imply (hub file size ÷ bytes per parameter; "
        "the hub shows three significant figures):",
        "",
        "| component | parameters | published (from the hub's file size) | difference |",
        "| --- | --- | --- | --- |",
        *[
            f"| {name} | {n / 1e6:.1f} M | {replica.PUBLISHED[name] / 1e6:.1f} M | {100 * (n - replica.PUBLISHED[name]) / replica.PUBLISHED[name]:+.3f} % |"
            for name, n in counts.items()
        ],
        f"| **all** | **{sum(counts.values()) / 1e9:.3f} B** | {sum(replica.PUBLISHED.values()) / 1e9:.3f} B | |",
        "",
        "| image encoder stored as | build + file into the cache | weights on disk | `kl.load` (float16 files → bfloat16) | RAM after load | peak RAM | text→image | image→image | interpolation |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for layout, got in found["layouts"].items():
        loaded, built = got["loaded"], got["built"]
        tasks = loaded["tasks_s"]
        lines.append(
            f"| `{'model.safetensors' if layout == 'safetensors' else 'pytorch_model.bin'}` | {built['total_s']:.0f} s "
            f"| {sum(built['bytes'].values()) / 1e9:.2f} GB | {loaded['load_s']:.1f} s | {loaded['rss_after_load'] / GIB:.1f} GiB "
            f"| {loaded['peak_rss'] / GIB:.1f} GiB | {tasks['text_to_image']:.1f} s | {tasks['image_to_image']:.1f} s | {tasks['interpolation']:.1f} s |"
        )
    loaded = found["layouts"]["safetensors"]["loaded"]
    lines += [
        "",
        f"Each task: one {loaded['size'][0]}×{loaded['size'][1]} picture, 2 prior + 2 decoder steps, in {loaded['dtype']} "
        "(the CPU's 16-bit type: float16 arithmetic is far slower on CPUs). Parameter counts as loaded: "
        + ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in loaded["params"].items())
        + ".",
        "",
    ]
    return lines


def ran_on(part: dict) -> str:
    """Where a part ran, e.g. "NVIDIA H200, torch 2.11.0+cu130" (parts of one section may come from different loans)."""
    return f"{part.get('device') or 'an unrecorded GPU'}, torch {part.get('torch') or '?'}"


def gpu_section(found: dict) -> list[str]:
    lines = [
        "## Real scale (GPU)",
        "",
        "`python -m benchmarks.real_scale --part gpu`, float16. The parts below ran on lent GPUs, in separate commands and "
        "sometimes on different loans: each names its GPU (compare seconds only within one part).",
        "",
    ]
    if "table" in found:
        t = found["table"]
        mixed = len({r["device"] for r in t["rows"]}) > 1
        lines += [
            f"Seconds and peak GPU memory per picture, {t['prior_steps']} prior + {t['steps']} decoder steps (the model card's)"
            + ("" if mixed else f", on {ran_on(t)}") + ":",
            "",
            "| offload preset | size (w × h) | seconds | peak GPU memory |" + (" GPU |" if mixed else ""),
            "| --- | --- | --- | --- |" + (" --- |" if mixed else ""),
            *[
                f"| {r['preset']} | {r['width']} × {r['height']} | {r['s']:.1f} | {gib(r['peak_gib'])} |" + (f" {r['device']} |" if mixed else "")
                for r in t["rows"]
            ],
            "",
        ]
        if t["kit_vs_raw"]:
            r = t["kit_vs_raw"]
            spread = (
                f" (each run: kit {', '.join(f'{v:.2f}' for v in r['kit_all'])}; raw {', '.join(f'{v:.2f}' for v in r['raw_all'])} s)" if "kit_all" in r else ""
            )
            prior = (
                f" The prior alone, timed the same way: kit {r['prior_kit_s']:.3f} s, raw {r['prior_raw_s']:.3f} s." if "prior_kit_s" in r else ""
            )
            lines += [
                f"Kit vs raw diffusers at {r['width']}×{r['height']} on {ran_on(r)} (median of {r['repeats']}, alternating): "
                f"{r['kit_s']:.2f} s vs {r['raw_s']:.2f} s, ratio **{r['ratio']:.3f}** (target ≤ 1.02){spread}.{prior}",
                "",
            ]
    if "t4" in found:
        t = found["t4"]
        lines += [
            f"T4 simulation on {ran_on(t)}: the process capped at {t['cap_gib']:g} GiB (`torch.cuda.set_per_process_memory_fraction`; on a real T4 "
            "the CUDA context's ~0.3–0.5 GiB, outside PyTorch's allocator, comes on top), 10 decoder steps:",
            "",
            "| offload preset | size | outcome | memory.py predicted | measured extra peak | error |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in t["rows"]:
            if "batch_side" in r:
                continue  # below the table
            if "side" not in r:
                lines.append(f"| {r['preset']} | – | {r['outcome']} | | | |")
                continue
            outcome = r["outcome"] + (" before the prior" if r.get("before_prior") else "")
            pred, meas = r.get("predicted_gib"), r.get("measured_gib")
            error = f"{100 * (pred - meas) / meas:+.2f} %" if pred is not None and meas else "–"
            lines.append(f"| {r['preset']} | {r['side']}² | {outcome} | {gib(pred)} | {gib(meas)} | {error} |")
        lines.append("")
        batches = [r for r in t["rows"] if "batch_side" in r]
        if batches:
            lines += [
                f"Four pictures at {batches[0]['batch_side']}² with the batch size left to the kit (a notebook's row of four): "
                + "; ".join(
                    f"{r['preset']}: " + (f"batches of {r['batch_size']}, {r['s']:.1f} s" if r["outcome"] == "ran" else f"{r['outcome']}")
                    for r in batches
                )
                + ".",
                "",
            ]
    if "levers" in found:
        lv = found["levers"]
        lines += [
            f"Speed levers at {lv['width']}×{lv['height']} on {ran_on(lv)}, no offload: plain UNet (PyTorch SDPA) {lv['plain_s']:.2f} s, channels-last "
            f"{lv['channels_last_s']:.2f} s" + (f", torch.compile {lv['compiled_s']:.2f} s (compiling: {lv['compile_first_s']:.0f} s)" if "compiled_s" in lv else "") + ".",
            "",
        ]
    if "samplers" in found:
        sm = found["samplers"]
        step_counts = list(dict.fromkeys(r["steps"] for r in sm["rows"]))
        seconds = {(r["sampler"], r["steps"]): r["s"] for r in sm["rows"]}
        lines += [
            f"Seconds per picture by sampler at {sm['width']}×{sm['height']} on {ran_on(sm)} (25 prior steps, no offload); steps each needs: \"Samplers on nano\":",
            "",
            "| sampler | " + " | ".join(f"{n} steps" for n in step_counts) + " |",
            "| --- | " + " | ".join("---" for _ in step_counts) + " |",
            *[f"| {samplers.LABELS[name]} | " + " | ".join(f"{seconds[name, n]:.2f} s" for n in step_counts) + " |" for name in samplers.CLASSES],
            "",
        ]
    if "notebooks" in found:
        nb = found["notebooks"]
        lines += [
            f"Every notebook through `pytest --nbval-lax` on the replica on {ran_on(found['notebooks'])}, each kernel capped at {T4_CAP_GIB:g} GiB ({nb.get('prior_steps', 10)} prior + {nb.get('steps', 10)} decoder steps; the "
            "references of `# NBVAL_CHECK_OUTPUT` cells hold nano's sizes and are not compared)"
            + (f", {found['notebooks']['workers']} notebooks at a time on the one GPU (times include that sharing)" if found["notebooks"]["workers"] > 1 else "")
            + ":",
            "",
            "| notebook | seconds | passed |",
            "| --- | --- | --- |",
            *[f"| `{n['notebook']}` | {n['s']:.0f} | {'yes' if n['passed'] else 'no: ' + failure(n['tail'])} |" for n in found["notebooks"]["rows"]],
            "",
        ]
        if nb.get("note"):  # what was found and changed after the run (replaced when the job runs again)
            lines += [nb["note"], ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("cpu", "gpu", "all"), default="all")
    parser.add_argument("--jobs", default="table,t4,samplers,levers,notebooks", help="GPU jobs to run, comma-separated (each under 10 min on an H100)")
    parser.add_argument("--root", default=None, help="where the hub caches are written (default: a temporary folder)")
    parser.add_argument("--exercise", action="store_true", help="run the GPU jobs on the CPU with nano; write nothing")
    parser.add_argument("--keep", action="store_true", help="keep the GPU replica in --root for a later run's jobs")
    parser.add_argument("--presets", default=None, help="offload presets for the table, comma-separated (none,model,sequential; default all)")
    parser.add_argument("--sizes", default=None, help="sizes for the table, comma-separated HxW (height first: 768x768,576x1024; default all)")
    parser.add_argument("--workers", type=int, default=1, help="notebooks run at a time, each in its own capped process")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1)) if not torch.cuda.is_available() else None
    root = Path(args.root or tempfile.mkdtemp(prefix="real-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    jobs = args.jobs.split(",")
    presets = [None if p == "none" else p for p in args.presets.split(",")] if args.presets else None
    sizes = [tuple(int(n) for n in s.split("x")) for s in args.sizes.split(",")] if args.sizes else None
    if args.exercise:
        found = gpu_part(root, jobs, device="cpu", exercise=True, presets=presets, sizes=sizes, workers=args.workers)
        print(json.dumps(found, indent=1, default=str))
        print("\n".join(gpu_section(found)))
        return
    if args.part in ("cpu", "all"):
        start = time.perf_counter()
        found = cpu_part(root)
        lines = cpu_section(found, time.perf_counter() - start)
        sections.write("real_scale", lines)
        print("\n".join(lines))
    if args.part in ("gpu", "all"):
        if not torch.cuda.is_available():
            print("no CUDA device: the GPU part was not run, its section of benchmarks/results.md is left as it is")
            return
        found = gpu_part(root, jobs, keep=args.keep, presets=presets, sizes=sizes, workers=args.workers)
        saved = root / "gpu.json"  # jobs run in separate commands add up to one section, starting from earlier loans' figures
        earlier = saved if saved.exists() else SAVED
        found = merged(json.loads(earlier.read_text()) if earlier.exists() else {}, found)
        saved.write_text(json.dumps(found, indent=1, default=str))  # copy it to benchmarks/real_scale_gpu.json after the loan
        lines = gpu_section(found)
        sections.write("real_scale_gpu", lines)
        print("\n".join(lines))


if __name__ == "__main__":
    main()
