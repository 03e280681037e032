"""The decoder's sampler setting: every sampler in every task, on nano; the Euler adapter's maths;
the loaded scheduler left in place; PNG metadata; the panels."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import EulerDiscreteScheduler

import kandinsky_lab as kl
from kandinsky_lab import judge, samplers
from kandinsky_lab.settings import SAMPLERS
from kandinsky_lab.widgets import TextToImagePanel

from .conftest import FAST

PROMPT = "a red circle on a white background"


@pytest.fixture(scope="module")
def nano():
    return kl.load("nano", device="cpu")


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_draws_the_prompt_in_every_task(nano, sampler):
    common = dict(sampler=sampler, steps=15, prior_steps=10)
    t2i = kl.text_to_image(nano, kl.TextToImage(prompt=PROMPT, num_images=2, **common))
    start = PIL.Image.new("RGB", (64, 64), "blue")
    i2i = kl.image_to_image(nano, kl.ImageToImage(prompt=PROMPT, image=start, strength=0.9, height=64, width=64, **common))
    mix = kl.interpolate(nano, kl.Interpolation(items=(PROMPT, "a red circle on a black background"), weights=(1.0, 0.0), **common))
    for image in [*t2i.images, *i2i.images, *mix.images]:
        found = judge.describe(image)
        assert (found["color"], found["background"], found["shape"]) == ("red", "white", "circle"), (sampler, found)
    assert type(nano.decoder.scheduler).__name__ == "DDPMScheduler"  # the loaded one is back
    assert nano.img2img.scheduler is nano.decoder.scheduler


def test_ddpm_is_the_loaded_scheduler_itself(kit):
    assert samplers.build("ddpm", kit.decoder.scheduler) is kit.decoder.scheduler
    other = samplers.build("dpm++", kit.decoder.scheduler)
    assert type(other).__name__ == "DPMSolverMultistepScheduler"
    for key in ("beta_start", "beta_end", "beta_schedule", "prediction_type", "num_train_timesteps"):
        assert other.config[key] == kit.decoder.scheduler.config[key]  # built from the model's config


def test_samplers_give_different_pictures_and_each_is_reproducible(kit):
    pictures = {}
    for sampler in SAMPLERS:
        s = kl.TextToImage(prompt="a cat", sampler=sampler, seed=2, **FAST)
        a, b = (np.asarray(kl.text_to_image(kit, s).images[0]) for _ in range(2))
        assert np.array_equal(a, b), sampler
        pictures[sampler] = a
    assert len({p.tobytes() for p in pictures.values()}) == len(SAMPLERS)


def test_loaded_scheduler_is_restored_after_a_stop_or_an_error(kit):
    loaded = kit.decoder.scheduler
    stop = kl.StopSignal()

    def stop_at_step_2(event):
        if event.stage == "decoder" and event.step == 2:
            stop.set()

    result = kl.text_to_image(kit, kl.TextToImage(prompt="a cat", sampler="unipc", **FAST), on_step=stop_at_step_2, stop=stop)
    assert result.interrupted and kit.decoder.scheduler is loaded and kit.img2img.scheduler is loaded

    def fail(event):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        kl.text_to_image(kit, kl.TextToImage(prompt="a cat", sampler="euler", **FAST), on_step=fail)
    assert kit.decoder.scheduler is loaded and kit.img2img.scheduler is loaded


def _fake_model(x, t):
    """A deterministic stand-in for the UNet: any fixed function of (input, timestep) will do."""
    return 0.3 * x + 0.01 * float(t) / 1000


def test_euler_adapter_takes_the_same_steps_as_diffusers_euler_with_scaled_input(kit):
    config = kit.decoder.scheduler.config
    ref, ours = EulerDiscreteScheduler.from_config(config), samplers.VPEulerScheduler.from_config(config)
    ref.set_timesteps(12)
    ours.set_timesteps(12)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    # Both start from unit-variance noise at the UNet's scale (diffusers' init_noise_sigma assumes the
    # schedule's largest sigma, which "leading" spacing does not start from: 0.07 % off)
    x_ref, x_ours = noise * (ref.sigmas[0] ** 2 + 1) ** 0.5, noise * ours.init_noise_sigma
    for i, t in enumerate(ref.timesteps):
        # what a pipeline that calls scale_model_input does, and what the 2.2 pipeline does with the adapter
        scaled = ref.scale_model_input(x_ref, t)
        assert torch.allclose(scaled, x_ours, atol=1e-5), i  # the UNet sees the same input
        x_ref = ref.step(_fake_model(scaled, t), t, x_ref).prev_sample
        x_ours = ours.step(_fake_model(x_ours, t), t, x_ours)[0]
    assert torch.allclose(x_ref, x_ours, atol=1e-5)  # last sigma is 0: both at the clean scale
    # image→image's start: Euler's noisy latents, at the scale the UNet reads
    ref.set_timesteps(12)
    ours.set_timesteps(12)
    t = ref.timesteps[4:5]
    clean = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ref.scale_model_input(ref.add_noise(clean, noise, t), t), ours.add_noise(clean, noise, t), atol=1e-5)


def test_unknown_sampler_is_refused_with_the_choices(kit):
    with pytest.raises(ValueError, match=r"sampler must be one of 'ddpm', 'ddim', 'dpm\+\+', 'unipc', 'euler', got 'k_euler'"):
        kl.text_to_image(kit, kl.TextToImage(prompt="a cat", sampler="k_euler", **FAST))
    assert kl.text_to_image(kit, kl.TextToImage(prompt="a cat", **FAST)).images  # the kit still works


@pytest.mark.parametrize("task", ["text_to_image", "image_to_image", "interpolation"])
def test_sampler_round_trips_through_png_metadata(kit, tmp_path, task):
    img = PIL.Image.new("RGB", (64, 64), "orange")
    s = {
        "text_to_image": kl.TextToImage(prompt="a cat", sampler="dpm++", **FAST),
        "image_to_image": kl.ImageToImage(prompt="a cat", image=img, strength=0.7, sampler="euler", **FAST),
        "interpolation": kl.Interpolation(items=("a cat", img), weights=(0.5, 0.5), sampler="unipc", **FAST),
    }[task]
    result = kl.run(kit, s)
    path = kl.save_image(result, 0, tmp_path)
    with PIL.Image.open(path) as im:
        text = im.text
    label = samplers.LABELS[s.sampler]
    assert f"Sampler: {label}," in text["parameters"]
    assert json.loads(text["kandinsky_lab"])["settings"]["sampler"] == s.sampler
    loaded, _, _ = kl.load_settings(path, images=[img])
    assert loaded.sampler == s.sampler and loaded == result.settings
    assert np.array_equal(np.asarray(kl.regenerate(kit, path, images=[img])), np.asarray(result.images[0]))


def test_pngs_saved_before_samplers_existed_load_as_ddpm(kit, tmp_path):
    result = kl.text_to_image(kit, kl.TextToImage(prompt="a cat", **FAST))
    path = kl.save_image(result, 0, tmp_path)
    with PIL.Image.open(path) as im:
        record = json.loads(im.text["kandinsky_lab"])
    del record["settings"]["sampler"]
    older = kl.metadata.settings_from_dict(record["task"], record["settings"])
    assert older.sampler == "ddpm"


def test_panel_sampler_menu_feeds_the_settings_and_restores(kit, monkeypatch):
    panel = TextToImagePanel(kit)
    seen = []
    monkeypatch.setattr(TextToImagePanel, "task", staticmethod(lambda k, s, **kw: seen.append(s) or kl.text_to_image(k, s, **kw)))
    assert panel.sampling.sampler.value == "ddpm"
    assert [label for label, _ in panel.sampling.sampler.options] == ["DDPM", "DDIM", "DPM++ 2M", "UniPC", "Euler"]
    panel.prompt.value = "a red circle"
    panel.sampling.prior_steps.value, panel.sampling.steps.value = 2, 3
    panel.sampling.sampler.value = "dpm++"
    panel.run.generate_button.click()
    assert panel.run.wait(60), panel.run.status.value
    assert seen[0].sampler == "dpm++" and panel.run.last_result.settings.sampler == "dpm++"
    panel.sampling.set_values(kl.TextToImage(prompt="x", sampler="euler"))
    assert panel.sampling.sampler.value == "euler"


def test_a_sweep_over_samplers_labels_its_columns(kit):
    sw = kl.sweep(kit, kl.TextToImage(prompt="a cat", **FAST), x=("sampler", ["ddpm", "dpm++"]), y=("steps", [2, 4]))
    assert sw.prior_runs <= 1 and [[c.result.settings.sampler for c in row] for row in sw.cells] == [["ddpm", "dpm++"]] * 2
    assert [kl.sweeps.label("sampler", v) for v in ("ddpm", "dpm++")] == ["DDPM", "DPM++ 2M"]  # short enough to read
