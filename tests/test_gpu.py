"""GPU-only tests (`pytest -m gpu`): fp16 on CUDA, the offload presets, peak GPU memory per preset.

Skipped without CUDA. They use the ~760 MB random-weight benchmark model saved to a folder, loaded
through the same `from_pretrained` path as the hub model. Peak memory per preset is printed and
attached to the test report (`record_property`), for benchmarks/results.md.
"""

import pytest
import torch

import kandinsky_lab as kl
from benchmarks.models import SIZE, save_large

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

SETTINGS = kl.TextToImage(prompt="a red circle", prior_steps=5, steps=5, height=SIZE, width=SIZE)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_large(tmp_path_factory.mktemp("gpu") / "bench-large")


def test_cuda_defaults_to_float16(folder):
    kit = kl.load(folder)
    assert kit.device.type == "cuda" and kit.dtype == torch.float16
    assert kit.decoder.unet.dtype == kit.prior.prior.dtype == torch.float16
    assert kit.execution_device.type == "cuda"
    result = kl.text_to_image(kit, SETTINGS)
    assert result.images[0].size == (SIZE, SIZE)


def peak_gpu_bytes(folder, offload):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    kit = kl.load(folder, device="cuda", offload=offload)
    image = kl.text_to_image(kit, SETTINGS).images[0]
    kl.image_to_image(kit, kl.ImageToImage(prompt="a cat", image=image, strength=0.5, **{k: getattr(SETTINGS, k) for k in ("prior_steps", "steps", "height", "width")}))
    peak = torch.cuda.max_memory_allocated()
    del kit
    torch.cuda.empty_cache()
    return peak


def test_offload_presets_trade_speed_for_memory(folder, record_property):
    peaks = {str(preset): peak_gpu_bytes(folder, preset) for preset in kl.OFFLOAD_PRESETS}
    for preset, peak in peaks.items():
        record_property(f"peak_gpu_mb_{preset}", round(peak / 2**20))
        print(f"offload={preset}: peak GPU memory {peak / 2**20:.0f} MB")
    assert peaks["sequential"] < peaks["model"] < peaks["None"]


def test_offloaded_kit_still_shares_weights_and_matches(folder):
    full = kl.load(folder, device="cuda")
    offloaded = kl.load(folder, device="cuda", offload="model")
    assert offloaded.shares_weights()
    a = kl.text_to_image(full, SETTINGS).images[0]
    b = kl.text_to_image(offloaded, SETTINGS).images[0]
    diff = (torch.tensor(list(a.getdata())) - torch.tensor(list(b.getdata()))).abs().max().item()
    assert diff <= 2  # same weights, same seeds; only kernel choice may differ in fp16
