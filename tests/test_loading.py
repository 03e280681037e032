"""Loading: model sources, the from_pretrained path for folders (= hub ids), devices, weight sharing."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import kandinsky_lab as kl
from kandinsky_lab import loading

from .conftest import FAST


def test_tiny_is_built_in_well_under_a_second():
    start = time.perf_counter()
    kit = kl.load("tiny", device="cpu")
    assert time.perf_counter() - start < 1.0
    assert type(kit.prior.prior).__name__ == "PriorTransformer"
    assert type(kit.decoder.unet).__name__ == "UNet2DConditionModel"
    assert type(kit.decoder.movq).__name__ == "VQModel"
    assert kit.prior.tokenizer.model_max_length == kit.prior.prior.config.num_embeddings == 77


def test_tiny_is_the_same_model_in_every_build(kit):
    other = kl.load("tiny", device="cpu")
    for a, b in zip(kit.decoder.unet.parameters(), other.decoder.unet.parameters()):
        assert torch.equal(a, b)


def test_folder_written_by_save_pretrained_loads_through_from_pretrained(kit, tiny_folder):
    assert sorted(p.name for p in tiny_folder.iterdir()) == ["decoder", "kandinsky_lab.json", "prior"]
    weights = sorted(p.relative_to(tiny_folder).as_posix() for p in tiny_folder.rglob("*.safetensors"))
    assert weights == [
        "decoder/movq/diffusion_pytorch_model.safetensors",
        "decoder/unet/diffusion_pytorch_model.safetensors",
        "prior/image_encoder/model.safetensors",
        "prior/prior/diffusion_pytorch_model.safetensors",
        "prior/text_encoder/model.safetensors",
    ]
    loaded = kl.load(tiny_folder, device="cpu")
    assert loaded.default_size == kit.default_size and loaded.source == str(tiny_folder)
    for name, module in {**kit.prior.components, **kit.decoder.components}.items():
        if isinstance(module, torch.nn.Module):
            theirs = getattr(loaded.prior, name, None) or getattr(loaded.decoder, name)
            assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), theirs.state_dict().values()))
    settings = kl.TextToImage(prompt="a red circle", seed=3, **FAST)
    a = np.asarray(kl.text_to_image(kit, settings).images[0], dtype=np.int16)
    b = np.asarray(kl.text_to_image(loaded, settings).images[0], dtype=np.int16)
    # Same weights; modules built by from_pretrained may pick other (equally valid) kernels: <= 1 grey level.
    assert np.abs(a - b).max() <= 1


def test_folder_and_hub_ids_share_one_loading_function(monkeypatch, tiny_folder):
    calls = []
    real = loading._from_pretrained
    monkeypatch.setattr(loading, "_from_pretrained", lambda p, d, dtype, **kw: calls.append((p, d, kw)) or real(p, d, dtype, **kw))
    monkeypatch.setattr(loading, "_hub_ready", lambda *repos, only=None: {"local_files_only": True})
    kl.load(tiny_folder, device="cpu")
    with pytest.raises(kl.SourceError):  # nothing is cached here: the hub path gets as far as from_pretrained
        kl.load("kandinsky-2-2", device="cpu")
    assert [c[:2] for c in calls] == [
        (tiny_folder / "prior", tiny_folder / "decoder"),
        (loading.HUB_PRIOR, loading.HUB_DECODER),
    ]


def test_loading_refuses_pickled_weights(tmp_path, kit):
    folder = kit.save(tmp_path / "m")
    unet = folder / "decoder" / "unet"
    torch.save(kit.decoder.unet.state_dict(), unet / "diffusion_pytorch_model.bin")
    (unet / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(kl.SourceError, match="could not load the model from"):
        kl.load(folder, device="cpu")


def test_unknown_source_names_the_choices():
    with pytest.raises(kl.SourceError, match="unknown model source 'nope'.*'kandinsky-2-2'.*'nano', 'tiny'"):
        kl.load("nope")


def test_folder_without_model_files_says_what_is_missing(tmp_path):
    (tmp_path / "prior").mkdir()
    with pytest.raises(kl.SourceError, match="missing prior/model_index.json, decoder/model_index.json"):
        kl.load(tmp_path)


@pytest.mark.parametrize("env", [{"HF_ENDPOINT": "http://127.0.0.1:9"}, {"HF_HUB_OFFLINE": "1"}])
def test_unreachable_hub_fails_fast_and_names_offline_sources(tmp_path, env):
    code = "import kandinsky_lab as kl\ntry:\n    kl.load('kandinsky-2-2')\nexcept kl.SourceError as e:\n    print(e)"
    base = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_ENDPOINT")}
    full_env = {**base, "HF_HOME": str(tmp_path), **env}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - start
    assert "cannot load 'kandinsky-2-2'" in out.stdout, out.stderr[-2000:]
    assert "Offline sources: 'nano', 'tiny'" in out.stdout
    assert took < 60  # import ~10 s on a 2-core CI machine; the check itself is bounded by HUB_TIMEOUT_S


def test_reachability_check_is_bounded():
    start = time.perf_counter()
    assert loading._reachable("http://127.0.0.1:9", timeout=2) is False
    assert time.perf_counter() - start < 3


def test_device_and_dtype_defaults():
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert kl.devices.default_device() == torch.device("cpu")
        kit = kl.load("tiny")
        assert kit.device == torch.device("cpu") and kit.decoder.unet.dtype == torch.float32
    assert kl.devices.default_dtype(torch.device("cpu")) == torch.float32
    assert kl.devices.default_dtype(torch.device("cuda")) == torch.float16
    assert kl.devices.default_dtype(torch.device("mps")) == torch.float16


def test_dtype_can_be_overridden():
    kit = kl.load("tiny", device="cpu", dtype=torch.bfloat16)
    assert kit.decoder.unet.dtype == kit.prior.prior.dtype == torch.bfloat16
    result = kl.text_to_image(kit, kl.TextToImage(prompt="a cat", **FAST))
    assert result.images[0].size == (64, 64)


def test_offload_presets_are_checked():
    with pytest.raises(ValueError, match="offload must be one of"):
        kl.load("tiny", device="cpu", offload="everything")
    with pytest.raises(ValueError, match="on the CPU use offload=None"):
        kl.load("tiny", device="cpu", offload="model")


def test_all_tasks_share_one_set_of_weights(kit):
    assert kit.img2img.unet is kit.decoder.unet and kit.img2img.movq is kit.decoder.movq
    assert kit.shares_weights()
    pointers = lambda m: {p.data_ptr() for p in m.parameters()}
    assert pointers(kit.img2img.unet) == pointers(kit.decoder.unet)
