"""GPU-only tests (`pytest -m gpu`): fp16 on CUDA, the offload presets, peak GPU memory per preset,
the memory prediction (memory.py) against measured peaks, a real CUDA out-of-memory, and the shipped
nano model in fp16 on CUDA (the default on a GPU without the hub).

Skipped without CUDA. Apart from nano they use the ~760 MB random-weight benchmark model saved to a
folder, loaded through the same `from_pretrained` path as the hub model. Peak memory per preset is printed and
attached to the test report (`record_property`), for benchmarks/results.md.
"""

import re

import pytest
import torch

import kandinsky_lab as kl
from benchmarks.models import SIZE, save_large
from kandinsky_lab import judge, memory

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


def extra_peak_bytes(run) -> int:
    """Memory a call needs beyond what was allocated before it."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


@pytest.mark.parametrize("offload", [None, "model"])
def test_memory_prediction_matches_measured_peaks(folder, offload, record_property):
    kit = kl.load(folder, device="cuda", offload=offload)
    lines, usable, where = memory.room(kit)
    for side in (256, 512):
        settings = kl.TextToImage(prompt="a red circle", prior_steps=2, steps=2, height=side, width=side)
        measured = extra_peak_bytes(lambda: kl.text_to_image(kit, settings))
        predicted = memory.needed_bytes(lines, side, side, 1)
        record_property(f"{offload}_{side}_measured_mb", round(measured / 2**20))
        record_property(f"{offload}_{side}_predicted_mb", round(predicted / 2**20))
        print(f"\noffload={offload} {side}x{side}: predicted {predicted / 2**20:.0f} MB, measured {measured / 2**20:.0f} MB")
        assert 0.8 * measured <= predicted <= 1.35 * measured


@pytest.fixture
def hog():
    """Fill the GPU until about `leave` bytes stay free; released afterwards."""
    held = []

    def take(leave: int):
        free, _ = torch.cuda.mem_get_info()
        held.append(torch.empty(max(0, free - leave), dtype=torch.uint8, device="cuda"))
        return held[-1].numel()

    yield take
    held.clear()
    torch.cuda.empty_cache()


def test_size_too_large_for_free_memory_is_refused_and_the_size_it_names_runs(folder, hog):
    kit = kl.load(folder, device="cuda")
    memory.room(kit)  # probe while the GPU is empty
    hog(1 * 2**30)
    with pytest.raises(ValueError, match=r"height=2048, width=2048 .* GiB free: use height and width up to") as caught:
        kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", prior_steps=2, steps=2, height=2048, width=2048))
    side = int(re.search(r"up to (\d+)", str(caught.value)).group(1))
    assert SIZE <= side < 2048 and kit.prior_runs == 0
    result = kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", prior_steps=2, steps=2, height=side, width=side))
    assert result.images[0].size == (side, side)


def test_real_out_of_memory_is_caught_memory_released_and_the_next_run_works(folder, hog, monkeypatch):
    kit = kl.load(folder, device="cuda")
    kl.text_to_image(kit, SETTINGS)
    baseline = torch.cuda.memory_allocated()
    monkeypatch.setattr(memory, "check_fits", lambda *args: None)  # let the run start, to meet the real error
    hogged = hog(512 * 2**20)
    with pytest.raises(kl.GPUOutOfMemory, match="ran out of memory during the decoder at 2048 x 2048.*Memory was released"):
        kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", prior_steps=2, steps=2, height=2048, width=2048))
    assert abs(torch.cuda.memory_allocated() - baseline - hogged) < 64 * 2**20  # nothing of the failed run is held
    assert torch.cuda.mem_get_info()[0] >= 400 * 2**20  # and its cached blocks went back to the GPU
    assert kl.text_to_image(kit, SETTINGS).images[0].size == (SIZE, SIZE)


def test_nano_in_float16_on_cuda_draws_what_is_asked():
    """A GPU without the hub gets nano, in fp16 like any model on CUDA: it must still draw the prompt."""
    kit = kl.load("nano")
    assert kit.source == "nano" and kit.device.type == "cuda" and kit.dtype == torch.float16
    for seed in range(4):
        settings = kl.TextToImage(prompt="a red circle on a white background", seed=seed, prior_steps=25, steps=25)
        found = judge.describe(kl.text_to_image(kit, settings).images[0])
        assert (found["color"], found["background"], found["shape"]) == ("red", "white", "circle"), (seed, found)
