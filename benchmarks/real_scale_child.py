"""One real-scale measurement in a fresh process, run by benchmarks/real_scale.py.

    python -m benchmarks.real_scale_child JOB '{"option": …}'

The parent starts this with HF_HUB_CACHE pointing at a hub cache that holds a model under the
official ids (the replica, or nano in tests) and HF_HUB_OFFLINE=1, so `kl.load("kandinsky-2-2")`
takes the path of a returning user whose model is cached. The last line printed is JSON.

Jobs:
    load     load time, peak RAM (RSS) and one small text→image, image→image and interpolation (CPU)
    table    per offload preset and size: seconds and peak GPU memory per picture; kit vs raw diffusers
    t4       under a per-process memory cap: which preset runs which size, refusals before the prior,
             memory.py's prediction against the measured peak
    levers   channels-last and torch.compile of the UNet against the plain UNet
    samplers seconds per picture for each sampler at a few decoder step counts
"""

import gc
import json
import resource
import statistics
import sys
import time

import psutil
import torch

import kandinsky_lab as kl
from benchmarks.run import alternating, raw_prior, time_ratio, timed
from kandinsky_lab import memory
from kandinsky_lab.embeddings import prompt_embeddings

PROMPT = "a red cat, 4k photo"


def load(options: dict) -> dict:
    """Load through the hub path, then one picture per task at a small size: every module runs."""
    dtype = getattr(torch, options.get("dtype", "bfloat16"))
    start = time.perf_counter()
    kit = kl.load("kandinsky-2-2", device=options.get("device", "cpu"), dtype=dtype)
    load_s = time.perf_counter() - start
    rss_after_load = psutil.Process().memory_info().rss  # held now (ru_maxrss below is the peak)
    side, steps = options.get("side", 64), options.get("steps", 2)
    common = dict(prior_steps=max(2, steps), steps=steps, height=side, width=side)
    made = []
    tasks = {"text_to_image": timed(kit, lambda: made.append(kl.text_to_image(kit, kl.TextToImage(prompt=PROMPT, **common))))}
    image = made[0].images[0]
    i2i = kl.ImageToImage(prompt="a fantasy landscape", image=image, strength=0.5, **common)
    tasks["image_to_image"] = timed(kit, lambda: kl.image_to_image(kit, i2i))
    mix = kl.Interpolation(items=("a cat", image), weights=(0.5, 0.5), **common)
    tasks["interpolation"] = timed(kit, lambda: kl.interpolate(kit, mix))
    return {
        "source": kit.source,
        "dtype": str(kit.dtype).removeprefix("torch."),
        "params": kit.parameter_count(),
        "load_s": load_s,
        "rss_after_load": rss_after_load,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "tasks_s": tasks,
        "size": list(image.size),
    }


def picture(kit, side_h: int, side_w: int, prior_steps: int, steps: int) -> dict:
    """Seconds and peak GPU memory of one text→image picture (the prior runs anew: nothing remembered)."""
    kit.cache.clear()
    settings = kl.TextToImage(prompt=PROMPT, prior_steps=prior_steps, steps=steps, height=side_h, width=side_w)
    cuda = kit.execution_device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(kit, lambda: kl.text_to_image(kit, settings))
    return {"s": seconds, "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}


def table(options: dict) -> dict:
    sizes = [tuple(s) for s in options["sizes"]]  # (height, width)
    prior_steps, steps = options.get("prior_steps", 25), options.get("steps", 50)
    rows, ratio = [], None
    for preset in options.get("presets", kl.OFFLOAD_PRESETS):
        kit = kl.load("kandinsky-2-2", device=options.get("device"), offload=preset)
        picture(kit, *sizes[0], 2, 2)  # warm-up: kernels chosen, memory probed
        for h, w in sizes:
            rows.append({"preset": preset, "height": h, "width": w, **picture(kit, h, w, prior_steps, steps)})
        if preset is None:
            ratio = kit_vs_raw(kit, *options["ratio_size"], prior_steps, steps, options.get("repeats", 3))
        del kit
        gc.collect()  # accelerate's offload hooks hold cycles: free this preset's weights before the next
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {"rows": rows, "kit_vs_raw": ratio, "prior_steps": prior_steps, "steps": steps}


def kit_vs_raw(kit, height: int, width: int, prior_steps: int, steps: int, repeats: int) -> dict:
    """benchmarks/run.py's side-by-side comparison with diffusers, at this size and these steps; and the
    prior's share of it, timed the same way (alternating, medians): where a gap comes from."""
    s = kl.TextToImage(prompt=PROMPT, prior_steps=prior_steps, steps=steps, height=height, width=width)
    whole = time_ratio(kit, s, repeats)

    def kit_prior():
        kit.cache.clear()  # the same work: no remembered prior output
        prompt_embeddings(kit, s.prompt, s.negative_prompt, s.prior_steps, s.prior_guidance_scale, s.prior_seeds())

    times = alternating(kit, kit_prior, lambda: raw_prior(kit, s), repeats)
    prior = {"prior_kit_s": statistics.median(times["kit"]), "prior_raw_s": statistics.median(times["raw"])}
    return {"height": height, "width": width, "repeats": repeats} | whole | prior


def t4(options: dict) -> dict:
    """Under a cap of `cap_gib` (a 16 GB T4 leaves ~15 GiB to a process): what runs, what is refused, prediction vs peak."""
    cuda = torch.cuda.is_available()
    if cuda:
        total = torch.cuda.mem_get_info()[1]
        torch.cuda.set_per_process_memory_fraction(min(1.0, options["cap_gib"] * 2**30 / total))
    rows = []
    for preset in options.get("presets", kl.OFFLOAD_PRESETS):
        try:
            kit = kl.load("kandinsky-2-2", device=options.get("device"), offload=preset)
        except torch.cuda.OutOfMemoryError:
            rows.append({"preset": preset, "outcome": "weights do not fit"})
            continue
        lines = memory.room(kit)
        for side in options["sides"]:
            row = {"preset": preset, "side": side}
            before = kit.prior_runs
            kit.cache.clear()
            settings = kl.TextToImage(prompt=PROMPT, prior_steps=options.get("prior_steps", 25), steps=options.get("steps", 10), height=side, width=side)
            if lines is not None:
                row["predicted_gib"] = memory.needed_bytes(lines[0], side, side, 1) / 2**30
            try:
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    allocated = torch.cuda.memory_allocated()
                start = time.perf_counter()
                kl.text_to_image(kit, settings)
                row |= {"outcome": "ran", "s": time.perf_counter() - start}
                if cuda:
                    row["measured_gib"] = (torch.cuda.max_memory_allocated() - allocated) / 2**30
                    row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            except ValueError as refused:
                row |= {"outcome": "refused", "before_prior": kit.prior_runs == before, "message": str(refused)}
            except kl.GPUOutOfMemory as error:
                row |= {"outcome": "out of memory", "message": str(error)}
            rows.append(row)
        if options.get("batch_side"):  # a notebook's 4-picture row: how many at once the kit decodes under the cap
            side = options["batch_side"]
            s = kl.TextToImage(prompt=PROMPT, prior_steps=options.get("prior_steps", 25), steps=options.get("steps", 10), height=side, width=side, num_images=4)
            start = time.perf_counter()
            try:
                made = kl.text_to_image(kit, s)
                rows.append({"preset": preset, "batch_side": side, "outcome": "ran", "batch_size": made.batch_size, "s": time.perf_counter() - start})
            except (ValueError, kl.GPUOutOfMemory) as error:
                rows.append({"preset": preset, "batch_side": side, "outcome": type(error).__name__, "message": str(error)})
        del kit
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return {"cap_gib": options["cap_gib"], "rows": rows}


def levers(options: dict) -> dict:
    """Seconds per picture at one size with the plain UNet, channels-last, and torch.compile (compile time apart)."""
    h, w = options["size"]
    prior_steps, steps = options.get("prior_steps", 25), options.get("steps", 50)
    kit = kl.load("kandinsky-2-2", device=options.get("device"))
    out = {"height": h, "width": w}
    picture(kit, h, w, 2, 2)
    out["plain_s"] = picture(kit, h, w, prior_steps, steps)["s"]
    kit.decoder.unet.to(memory_format=torch.channels_last)
    picture(kit, h, w, 2, 2)
    out["channels_last_s"] = picture(kit, h, w, prior_steps, steps)["s"]
    kit.decoder.unet.to(memory_format=torch.contiguous_format)
    if options.get("compile", True):
        kit.decoder.unet.compile(mode=options.get("compile_mode", "default"))
        out["compile_first_s"] = picture(kit, h, w, 2, 2)["s"]  # compilation happens in the first calls
        out["compiled_s"] = picture(kit, h, w, prior_steps, steps)["s"]
    return out


def samplers(options: dict) -> dict:
    """Seconds per picture (prior + decoder) for each sampler and decoder step count, at one size, no offload."""
    h, w = options["size"]
    kit = kl.load("kandinsky-2-2", device=options.get("device"))
    picture(kit, h, w, 2, 2)
    rows = []
    for sampler in kl.settings.SAMPLERS:
        for steps in options["steps"]:
            kit.cache.clear()
            s = kl.TextToImage(prompt=PROMPT, prior_steps=options.get("prior_steps", 25), steps=steps, height=h, width=w, sampler=sampler)
            rows.append({"sampler": sampler, "steps": steps, "s": timed(kit, lambda: kl.text_to_image(kit, s))})
    return {"height": h, "width": w, "rows": rows}


JOBS = {"load": load, "table": table, "t4": t4, "levers": levers, "samplers": samplers}

if __name__ == "__main__":
    job, options = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(JOBS[job](options)))
