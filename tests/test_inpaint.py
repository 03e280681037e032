"""Inpainting: masks, the extra UNet loaded on first use, kl.inpaint on tiny and on nano, metadata, training parity."""

import dataclasses
import json

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_inpainting import prepare_mask

import kandinsky_lab as kl
from kandinsky_lab import judge, masks, world
from training import inpaint as training_inpaint

FAST = dict(prior_steps=2, steps=3)
STEPS = dict(prior_steps=25, steps=25)
BOX = masks.rectangle((64, 64), (16, 16, 48, 48))


@pytest.fixture(scope="module")
def nano():
    return kl.load("nano", device="cpu")


def scene_picture(**fixed):
    import random

    scene = world.sample(random.Random(3), position="center", size="large", **fixed)
    return scene, world.render(scene)


# --- masks -------------------------------------------------------------------------------------------


def test_every_accepted_form_reads_as_the_same_mask():
    painted = masks.read(BOX)
    rgba = PIL.Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rgba.putalpha(BOX)
    forms = [BOX, BOX.convert("1"), rgba, painted, painted.astype(np.float32), painted.astype(np.float64) * 0.9, painted.tolist()]
    for form in forms:
        assert np.array_equal(masks.read(form, (64, 64)), painted), type(form)
    assert painted.sum() == 32 * 32 and painted[16, 16] and not painted[15, 16] and not painted[48, 48]


def test_helpers_draw_what_they_say():
    size = (80, 60)  # (width, height): not square, so a swapped axis shows
    assert masks.read(masks.rectangle(size, (10, 5, 30, 25))).sum() == 400
    assert masks.read(masks.rectangle(size, (0, 0, 80, 60))).shape == (60, 80)
    circle = masks.read(masks.ellipse(size, (0, 0, 40, 40)))
    assert abs(circle.sum() - np.pi * 400) < 60 and circle[20, 20] and not circle[0, 0]
    assert masks.read(masks.invert(masks.rectangle(size, (10, 5, 30, 25)))).sum() == 80 * 60 - 400
    grown = masks.read(masks.grow(masks.rectangle(size, (10, 10, 20, 20)), 2))
    assert grown.sum() == 14 * 14
    assert masks.read(masks.shrink(masks.rectangle(size, (10, 10, 20, 20)), 2)).sum() == 6 * 6
    soft = np.asarray(masks.feather(masks.rectangle(size, (20, 20, 40, 40)), 6))
    assert soft[30, 30] == 255 and soft[0, 0] == 0 and 0 < soft[30, 19] < 255  # a soft edge
    line = masks.read(masks.strokes(size, [[(5, 30), (75, 30)]], 6))
    assert line[30, 5:75].all() and not line[10].any()
    cutout = PIL.Image.new("RGBA", size, (255, 0, 0, 255))
    cutout.paste((0, 0, 0, 0), (0, 0, 10, 10))
    assert masks.read(masks.transparent(cutout)).sum() == 100


def test_the_shapes_worlds_object_and_background_are_found_from_the_pixels():
    scene, picture = scene_picture(shape="square", color="red", background="blue")
    exact = masks.read(world.object_mask(scene))
    assert np.array_equal(masks.read(masks.shapes_object(picture, grow_by=0)), exact)
    background = masks.read(masks.shapes_background(picture))
    assert not (background & exact).any() and background[0, 0]


def test_latent_cells_keep_every_stroke_however_thin():
    thin = np.zeros((64, 64), dtype=bool)
    thin[30, 5:60] = True  # one pixel high, not on a cell's first row: diffusers' nearest sampling would lose it
    keep = F.interpolate(torch.from_numpy(1 - thin.astype(np.float32))[None, None], (16, 16), mode="nearest")
    assert keep.min() == 1  # lost without the kit's widening
    cells = masks.latent_cells(thin, 4)
    assert cells[28:32, 4:60].all() and cells.sum() == 4 * 56 and not cells[27].any()


# --- the training stage matches what the pipeline feeds the UNet ----------------------------------------


def test_training_keep_mask_is_the_pipelines_prepare_mask():
    generator = torch.Generator().manual_seed(0)
    for density in (0.02, 0.1, 0.3, 0.6):
        repaint = (torch.rand(3, 1, 64, 64, generator=generator) < density).float()
        ours = training_inpaint.keep_mask(repaint, (16, 16))
        theirs = prepare_mask(F.interpolate(1 - repaint, (16, 16), mode="nearest"))
        assert torch.equal(ours, theirs)


def test_widened_unet_starts_as_the_plain_decoder(nano):
    wide = training_inpaint.widen(nano.decoder.unet)
    latents, embeds = torch.randn(2, 4, 16, 16), torch.randn(2, 128)
    extra = torch.randn(2, 5, 16, 16)
    with torch.no_grad():
        plain = nano.decoder.unet(latents, 500, encoder_hidden_states=None, added_cond_kwargs={"image_embeds": embeds}).sample
        widened = wide(torch.cat([latents, extra], 1), 500, encoder_hidden_states=None, added_cond_kwargs={"image_embeds": embeds}).sample
    assert wide.config.in_channels == 9 and torch.equal(plain, widened)
    assert "_name_or_path" not in wide.config


# --- the extra UNet ----------------------------------------------------------------------------------


def test_the_inpainting_unet_loads_on_first_use_only_and_shares_the_rest(fresh_kit):
    kit = fresh_kit
    assert kit.extras == {}
    before = kit.parameter_count()
    kl.inpaint(kit, kl.Inpaint(prompt="a", image=PIL.Image.new("RGB", (64, 64), "red"), mask=BOX, **FAST))
    pipe = kit.extras["inpaint"]
    assert pipe.unet.config.in_channels == 9 and pipe.movq is kit.decoder.movq and pipe.scheduler is kit.decoder.scheduler
    assert kit.shares_weights()
    counts = kit.parameter_count()
    assert {k: v for k, v in counts.items() if k != "inpaint_unet"} == before and counts["inpaint_unet"] > 0
    kl.inpaint(kit, kl.Inpaint(prompt="b", image=PIL.Image.new("RGB", (64, 64), "red"), mask=BOX, **FAST))
    assert kit.extras["inpaint"] is pipe  # loaded once


def test_a_folder_without_an_inpainting_unet_says_where_it_looked(fresh_kit, tmp_path):
    kit = kl.load(fresh_kit.save(tmp_path / "plain"))  # nothing but prior/ and decoder/
    with pytest.raises(kl.SourceError, match="has no inpaint UNet: looked for .*decoder-inpaint/unet"):
        kl.inpaint(kit, kl.Inpaint(prompt="a", image=PIL.Image.new("RGB", (64, 64)), mask=BOX, **FAST))


def test_a_saved_kit_keeps_its_inpainting_unet(fresh_kit, tmp_path):
    settings = kl.Inpaint(prompt="a", image=PIL.Image.new("RGB", (64, 64), "red"), mask=BOX, **FAST)
    first = kl.inpaint(fresh_kit, settings).images[0]
    fresh_kit.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "decoder-inpaint" / "unet" / "config.json").is_file()
    again = kl.inpaint(kl.load(tmp_path / "saved"), settings).images[0]
    # as text→image from a saved tiny Kit: the same weights, pixels within one level of rounding
    assert np.abs(np.asarray(first, int) - np.asarray(again, int)).max() <= 1


def test_another_sampler_reaches_the_inpainting_pipeline(fresh_kit):
    settings = kl.Inpaint(prompt="a", image=PIL.Image.new("RGB", (64, 64), "red"), mask=BOX, **FAST)
    ddpm = kl.inpaint(fresh_kit, settings).images[0]
    dpm = kl.inpaint(fresh_kit, dataclasses.replace(settings, sampler="dpm++")).images[0]
    assert not np.array_equal(np.asarray(ddpm), np.asarray(dpm))
    assert type(fresh_kit.extras["inpaint"].scheduler).__name__ == "DDPMScheduler"  # put back after the run


# --- kl.inpaint --------------------------------------------------------------------------------------


def test_seeds_batches_steps_and_stop_work_as_in_the_other_tasks(kit):
    settings = kl.Inpaint(prompt="a", image=PIL.Image.new("RGB", (64, 64), "red"), mask=BOX, num_images=3, seed=5, **FAST)
    events = []
    whole = kl.inpaint(kit, settings, on_step=events.append)
    assert len(whole.images) == 3 and whole.prior_seeds == [5, 6, 7]
    assert [e.stage for e in events].count("decoder") == FAST["steps"]  # one batch of three
    one = kl.inpaint(kit, dataclasses.replace(settings, num_images=1, seed=6))
    assert np.array_equal(np.asarray(one.images[0]), np.asarray(kl.inpaint(kit, dataclasses.replace(settings, num_images=1, seed=6)).images[0]))
    stop = kl.StopSignal()
    stopped = kl.inpaint(kit, settings, batch_size=1, on_step=lambda e: stop.set() if e.stage == "decoder" else None, stop=stop)
    assert stopped.interrupted and len(stopped.images) <= 1


def test_keep_outside_pastes_the_original_back_exactly(kit):
    picture = kl.sample(kl.sample_names()[0]).resize((64, 64))
    result = kl.inpaint(kit, kl.Inpaint(prompt="a", image=picture, mask=BOX, keep_outside=True, **FAST))
    outside = ~masks.read(BOX)
    assert np.array_equal(np.asarray(result.images[0])[outside], np.asarray(picture)[outside])
    soft = kl.inpaint(kit, kl.Inpaint(prompt="a", image=picture, mask=BOX, keep_outside=True, feather=6.0, **FAST)).images[0]
    far = ~masks.read(masks.grow(BOX, 8))
    assert np.array_equal(np.asarray(soft)[far], np.asarray(picture)[far])


def test_a_picture_of_another_size_is_resized_with_its_mask(kit):
    picture = PIL.Image.new("RGB", (128, 96), "blue")
    mask = masks.rectangle(picture.size, (0, 0, 64, 96))  # the left half
    result = kl.inpaint(kit, kl.Inpaint(prompt="a", image=picture, mask=mask, keep_outside=True, height=64, width=64, **FAST))
    assert result.size == (64, 64) and any("resized" in note for note in result.notes)
    assert np.array_equal(np.asarray(result.images[0])[:, 40:], np.asarray(picture.resize((64, 64)))[:, 40:])


def test_the_picture_and_its_mask_are_saved_and_regenerate_exactly(kit, tmp_path):
    picture = kl.sample(kl.sample_names()[0])
    result = kl.inpaint(kit, kl.Inpaint(prompt="a green square", image=picture, mask=BOX.resize(picture.size), **FAST), save_to=tmp_path)
    path = result.paths[0]
    assert kl.metadata.mask_path(path).is_file()
    assert json.loads(PIL.Image.open(path).text["kandinsky_lab"])["task"] == "inpaint"
    settings, _, _ = kl.load_settings(path, images=[picture])
    assert isinstance(settings, kl.Inpaint) and np.array_equal(masks.read(settings.mask), masks.read(BOX.resize(picture.size)))
    again = kl.regenerate(kit, path, images=[picture])
    assert np.array_equal(np.asarray(again), np.asarray(result.images[0]))
    with pytest.raises(kl.SettingsError, match="input image that was not passed"):
        kl.load_settings(path)  # the picture itself is recorded by its digest, not stored


def test_run_dispatches_inpaint_settings(kit):
    result = kl.run(kit, kl.Inpaint(prompt="a", image=PIL.Image.new("RGB", (64, 64), "red"), mask=BOX, **FAST))
    assert len(result.images) == 1


@pytest.mark.slow
def test_nano_repaints_the_object_in_the_asked_color_and_keeps_the_rest(nano):
    """Three held-out-style scenes: the box repainted in a new color; outside changes only by MoVQ's round trip."""
    hits = []
    for seed, (shape, old, new, background) in enumerate([("square", "red", "green", "blue"), ("circle", "yellow", "purple", "white"), ("star", "white", "red", "black")]):
        scene, picture = scene_picture(shape=shape, color=old, background=background)
        cx, cy, side = scene.box
        mask = masks.rectangle(picture.size, (cx - side / 2 - 3, cy - side / 2 - 3, cx + side / 2 + 3, cy + side / 2 + 3))
        prompt = world.canonical(dataclasses.replace(scene, color=new))
        result = kl.inpaint(nano, kl.Inpaint(prompt=prompt, image=picture, mask=mask, seed=seed, **STEPS)).images[0]
        hits.append(judge.describe(result)["color"] == new)
        outside = ~masks.read(mask)
        change = np.abs(np.asarray(result, float) - np.asarray(picture, float))[outside].mean() / 255
        assert change < 0.03, (prompt, change)
    assert sum(hits) >= 2, hits
