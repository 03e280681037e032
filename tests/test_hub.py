"""The real model's loading path, offline: nano's weights filed under the official repository ids in a
real huggingface_hub cache, loaded by `kl.load("kandinsky-2-2")` in a fresh process with the hub out of
reach (a returning Colab user's path), in both weight layouts; and what a download would fetch."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import kandinsky_lab as kl
from benchmarks import hub_cache
from kandinsky_lab import depth, extras, hub, loading

ROOT = Path(__file__).resolve().parents[1]
LOAD_AND_DRAW = """
import json, numpy as np, PIL.Image, kandinsky_lab as kl
kit = kl.load("kandinsky-2-2", device="cpu")
common = dict(prior_steps=5, steps=5, height=64, width=64, seed=1)
t2i = kl.text_to_image(kit, kl.TextToImage(prompt="a red circle on a white background", **common))
i2i = kl.image_to_image(kit, kl.ImageToImage(prompt="a blue square", image=t2i.images[0], strength=0.5, **common))
mix = kl.interpolate(kit, kl.Interpolation(items=("a red circle", t2i.images[0]), weights=(0.5, 0.5), **common))
box = kl.masks.rectangle((64, 64), (16, 16, 48, 48))
fill = kl.inpaint(kit, kl.Inpaint(prompt="a green square on a white background", image=t2i.images[0], mask=box, **common))
depth = kl.depth_map(kit, t2i.images[0])  # Intel/dpt-large's id, from the cache
held = kl.controlnet(kit, kl.ControlNet(prompt="a green square on a white background", hint=depth, **common))
print("RESULT", json.dumps({"source": kit.source, "size": kit.default_size, "dtype": str(kit.dtype),
      "pixels": [np.asarray(r.images[0]).tolist() for r in (t2i, i2i, mix, fill, held)]}))
"""


def nano_in_cache(cache: Path, image_encoder_format: str) -> None:
    """nano's prior/ and decoder/ under the official ids; optionally its image encoder as a pickled .bin, as the hub may have it."""
    work = cache.parent / f"nano-{image_encoder_format}"
    shutil.copytree(loading.NANO_FOLDER, work)
    if image_encoder_format == "bin":
        encoder = work / "prior" / "image_encoder"
        torch.save(load_file(encoder / "model.safetensors"), encoder / "pytorch_model.bin")
        (encoder / "model.safetensors").unlink()
    hub_cache.store_kit_folder(work, cache)  # the inpainting and ControlNet repositories as whole pipelines; nano's DPT as Intel/dpt-large


def run_offline(cache: Path) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "KANDINSKY_LAB"))}
    env |= {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-c", LOAD_AND_DRAW], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), out.stdout


@pytest.fixture(scope="module")
def nano_pixels():
    kit = kl.load("nano", device="cpu")
    common = dict(prior_steps=5, steps=5, height=64, width=64, seed=1)
    t2i = kl.text_to_image(kit, kl.TextToImage(prompt="a red circle on a white background", **common))
    box = kl.masks.rectangle((64, 64), (16, 16, 48, 48))
    fill = kl.inpaint(kit, kl.Inpaint(prompt="a green square on a white background", image=t2i.images[0], mask=box, **common))
    hint = kl.depth_map(kit, t2i.images[0])
    # the hub path reads no kandinsky_lab.json: its ControlNet runs at diffusers' guidance 4, not nano's own
    held = kl.controlnet(kit, kl.ControlNet(prompt="a green square on a white background", hint=hint, guidance_scale=4.0, **common))
    return t2i.images[0], fill.images[0], held.images[0]


def test_cache_layout_is_huggingface_hubs(tmp_path):
    nano_in_cache(tmp_path / "hub", "safetensors")
    root = hub_cache.repo_folder(tmp_path / "hub", loading.HUB_PRIOR)
    commit = (root / "refs" / "main").read_text()
    link = root / "snapshots" / commit / "image_encoder" / "model.safetensors"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link)) and link.resolve().parent == root / "blobs"
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    found = try_to_load_from_cache(loading.HUB_PRIOR, "prior/config.json", cache_dir=tmp_path / "hub")
    assert found == str(root / "snapshots" / commit / "prior" / "config.json")
    repos = {r.repo_id: r for r in scan_cache_dir(tmp_path / "hub").repos}
    assert set(repos) == {loading.HUB_PRIOR, loading.HUB_DECODER, extras.TASKS["inpaint"][1], extras.TASKS["controlnet"][1], depth.REAL_ESTIMATOR}
    assert not list(scan_cache_dir(tmp_path / "hub").warnings)


@pytest.mark.parametrize("image_encoder_format", ["safetensors", "bin"])
def test_real_model_path_loads_offline_from_the_cache_in_both_layouts(tmp_path, image_encoder_format, nano_pixels):
    nano_in_cache(tmp_path / "hub", image_encoder_format)
    found, stdout = run_offline(tmp_path / "hub")
    assert found["source"] == "kandinsky-2-2" and found["size"] == loading.HUB_SIZE and found["dtype"] == "torch.float32"
    # the same weights as nano, through the hub path: the same picture (modules loaded another way may
    # pick other, equally valid kernels: <= 1 grey level, as in test_loading)
    for drawn, made in zip((found["pixels"][0], found["pixels"][3], found["pixels"][4]), nano_pixels):  # t2i, inpainting, ControlNet
        assert np.abs(np.asarray(drawn, dtype=np.int16) - np.asarray(made, dtype=np.int16)).max() <= 1
    assert len(found["pixels"]) == 5  # image→image and interpolation ran too
    note = "image_encoder has no safetensors weights; its pytorch_model.bin is loaded with torch's weights_only=True loader"
    assert (note in stdout) == (image_encoder_format == "bin")


def test_user_folders_stay_safetensors_only(tmp_path, kit):
    folder = kit.save(tmp_path / "m")
    encoder = folder / "prior" / "image_encoder"
    torch.save(load_file(encoder / "model.safetensors"), encoder / "pytorch_model.bin")
    (encoder / "model.safetensors").unlink()
    with pytest.raises(kl.SourceError, match="could not load the model from"):
        kl.load(folder, device="cpu")


def listing(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_plan_takes_one_weight_file_per_component_and_every_config():
    prior = loading.NANO_FOLDER / "prior"
    sizes = listing(prior)
    index = json.loads((prior / "model_index.json").read_text())
    extras = {
        "README.md": 5_000,
        "prior/diffusion_pytorch_model.bin": 4_000_000,  # a second format beside safetensors
        "prior/diffusion_pytorch_model.fp16.safetensors": 2_000_000,  # a variant
        "text_encoder/flax_model.msgpack": 3_000_000,
        "image_encoder/pytorch_model.bin": 9_000_000,
    }
    chosen = hub.plan(loading.HUB_PRIOR, sizes | extras, index)
    assert sorted(chosen.files) == sorted(sizes)  # exactly nano's own files: no README, .bin, fp16 or Flax copy
    assert chosen.bytes == sum(sizes.values()) and chosen.total_bytes == chosen.bytes + sum(extras.values())
    assert chosen.pickled == [] and chosen.pickled_note() is None
    assert "the rest is not used" in chosen.summary() and f"{len(sizes)} files" in chosen.summary()


def test_plan_for_a_task_unet_takes_only_its_unet_folder():
    sizes = {"model_index.json": 1, "unet/config.json": 2, "unet/diffusion_pytorch_model.safetensors": 2_000, "unet/diffusion_pytorch_model.fp16.safetensors": 1_000,
             "movq/config.json": 3, "movq/diffusion_pytorch_model.safetensors": 300, "scheduler/scheduler_config.json": 4}  # fmt: skip
    index = {"_class_name": "KandinskyV22InpaintPipeline", "unet": ["diffusers", "UNet2DConditionModel"], "movq": ["diffusers", "VQModel"], "scheduler": ["diffusers", "DDPMScheduler"]}
    found = hub.plan("kandinsky-community/kandinsky-2-2-decoder-inpaint", sizes, index, only=("unet",))
    assert found.files == ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]
    assert found.bytes == 2_003 and found.total_bytes == 3_310  # the MoVQ the kit has already is not fetched


def test_plan_falls_back_to_pickled_weights_only_where_no_safetensors_exist():
    prior = loading.NANO_FOLDER / "prior"
    sizes = {k: v for k, v in listing(prior).items() if k != "image_encoder/model.safetensors"}
    sizes |= {"image_encoder/pytorch_model.bin": 123, "image_encoder/pytorch_model.fp16.bin": 60}
    chosen = hub.plan(loading.HUB_PRIOR, sizes, json.loads((prior / "model_index.json").read_text()))
    assert "image_encoder/pytorch_model.bin" in chosen.files and "image_encoder/pytorch_model.fp16.bin" not in chosen.files
    assert chosen.pickled == ["image_encoder"]
    assert "weights_only=True" in chosen.pickled_note()


def test_plan_keeps_sharded_weights_whole_and_names_missing_ones():
    sizes = {
        "model_index.json": 1,
        "unet/config.json": 1,
        "unet/diffusion_pytorch_model.safetensors.index.json": 1,
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors": 10,
        "unet/diffusion_pytorch_model-00002-of-00002.safetensors": 10,
        "unet/diffusion_pytorch_model.bin.index.json": 1,
        "scheduler/scheduler_config.json": 1,
    }
    index = {"_class_name": "KandinskyV22Pipeline", "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDPMScheduler"]}
    chosen = hub.plan("someone/model", sizes, index)
    assert "unet/diffusion_pytorch_model.bin.index.json" not in chosen.files and chosen.bytes == 24
    with pytest.raises(FileNotFoundError, match="someone/model has no weights for movq"):
        hub.plan("someone/model", sizes | {"movq/config.json": 1}, index | {"movq": ["diffusers", "VQModel"]})


def test_an_interrupted_download_is_not_taken_for_a_cached_model(tmp_path, monkeypatch):
    nano_in_cache(tmp_path / "hub", "safetensors")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub.cached_plan(loading.HUB_DECODER) is not None
    snapshot = hub_cache.repo_folder(tmp_path / "hub", loading.HUB_DECODER) / "snapshots"
    next(snapshot.rglob("unet/diffusion_pytorch_model.safetensors")).unlink()
    assert hub.cached_plan(loading.HUB_DECODER) is None  # so load() fetches what is missing, or says it cannot
    assert hub.cached_plan(loading.HUB_PRIOR) is not None
    shutil.rmtree(next(p for p in hub_cache.repo_folder(tmp_path / "hub", loading.HUB_PRIOR).rglob("tokenizer") if p.is_dir()))
    assert hub.cached_plan(loading.HUB_PRIOR) is None  # a whole folder missing: not a complete cache either


def test_download_says_how_much_before_fetching_only_the_planned_files(monkeypatch):
    import huggingface_hub

    events = []
    planned = hub.Plan(loading.HUB_PRIOR, ["model_index.json", "prior/config.json"], 9_760_000_000, ["image_encoder"], 20_000_000_000)
    monkeypatch.setattr(hub, "remote_plan", lambda repo, only=None: planned)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo, allow_patterns: events.append(("fetch", repo, allow_patterns)))
    hub.download(loading.HUB_PRIOR, log=lambda line: events.append(("said", line)))
    assert events == [
        ("said", "Downloading kandinsky-community/kandinsky-2-2-prior: 2 files, 9.76 GB (the repository holds 20.0 GB; the rest is not used)"),
        ("fetch", loading.HUB_PRIOR, ["model_index.json", "prior/config.json"]),
    ]


def test_real_scale_gpu_jobs_run_on_the_cpu_with_nano_under_the_official_ids(tmp_path):
    """benchmarks/real_scale.py's GPU jobs, exercised where there is no GPU: every line but the CUDA figures runs."""
    from benchmarks import real_scale

    found = real_scale.gpu_part(tmp_path, ["table", "t4", "levers", "samplers"], device="cpu", exercise=True)
    assert [(r["preset"], r["height"], r["width"]) for r in found["table"]["rows"]] == [(None, 64, 64), (None, 32, 64)]
    assert found["table"]["kit_vs_raw"]["ratio"] > 0
    assert [(r["outcome"], r.get("side"), r.get("batch_size")) for r in found["t4"]["rows"]] == [("ran", 64, None), ("ran", None, 4)]
    assert found["levers"]["plain_s"] > 0 and found["levers"]["channels_last_s"] > 0
    text = "\n".join(real_scale.gpu_section(found))
    assert "| None | 64 × 64 |" in text and "Kit vs raw diffusers at 64×32" in text and "| None | 64² | ran |" in text
    assert [r["sampler"] for r in found["samplers"]["rows"]] == list(kl.settings.SAMPLERS) and "| DPM++ 2M | " in text
    assert "Four pictures at 64² with the batch size left to the kit (a notebook's row of four): None: batches of 4" in text


def test_real_scale_gpu_parts_run_in_separate_commands_add_up_to_one_section():
    """A lent GPU gives 10 minutes a command: the table's presets and sizes, run apart, merge into root/gpu.json."""
    from benchmarks import real_scale

    row = lambda preset, h, w: {"preset": preset, "height": h, "width": w, "s": 1.0, "peak_gib": 1.0}  # noqa: E731
    ratio = {"height": 768, "width": 768, "repeats": 7, "kit_s": 2.0, "raw_s": 2.0, "ratio": 1.0}
    first = {"built": {"total_s": 60.0}, "device": "GPU A", "torch": "2", "table": {"rows": [row("model", 512, 512), row(None, 768, 768)], "prior_steps": 25, "steps": 50, "kit_vs_raw": ratio}}
    later = {"built": {"reused": "/tmp/rs/gpu"}, "device": "GPU B", "torch": "2", "table": {"rows": [row("sequential", 768, 768), row(None, 768, 768)], "prior_steps": 25, "steps": 50, "kit_vs_raw": None}}
    merged = real_scale.merged(first, later)
    assert merged["built"] == {"total_s": 60.0} and merged["table"]["kit_vs_raw"]["ratio"] == 1.0
    assert [(r["preset"], r["height"], r["device"]) for r in merged["table"]["rows"]] == [(None, 768, "GPU A"), (None, 768, "GPU B"), ("model", 512, "GPU A"), ("sequential", 768, "GPU B")]
    text = "\n".join(real_scale.gpu_section(merged))  # each part says where it ran
    assert "| sequential | 768 × 768 | 1.0 | 1.00 GiB | GPU B |" in text and "Kit vs raw diffusers at 768×768 on GPU A, torch 2 " in text


def test_a_failed_notebook_is_reported_with_its_error():
    from benchmarks import real_scale

    tail = "\x1b[31mValueError\x1b[39m: height=768 | too big\n=== short test summary info ===\nFAILED 00.ipynb::Cell 5\n"
    assert real_scale.failure(tail) == "ValueError: height=768 / too big"
    assert real_scale.failure("1 failed") == "see gpu.json"
