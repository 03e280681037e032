"""The three tasks on the tiny model: same pixels as raw diffusers, seeds, sizes, steps and stopping."""

import dataclasses

import numpy as np
import PIL.Image
import pytest
import torch

import kandinsky_lab as kl

from .conftest import FAST


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_text_to_image_matches_raw_diffusers(kit):
    s = kl.TextToImage(prompt="a red circle", negative_prompt="blurry", seed=11, **FAST)
    ours = kl.text_to_image(kit, s)
    prior = kit.prior("a red circle", negative_prompt="blurry", num_inference_steps=2, generator=torch.Generator().manual_seed(11))
    raw = kit.decoder(
        image_embeds=prior.image_embeds,
        negative_image_embeds=prior.negative_image_embeds,
        height=64,
        width=64,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(11),
    ).images[0]
    assert np.array_equal(pixels(ours.images[0]), pixels(raw))
    assert ours.size == (64, 64) and ours.images[0].size == (64, 64)


def test_image_to_image_matches_raw_diffusers(kit):
    init = PIL.Image.new("RGB", (64, 64), "navy")
    s = kl.ImageToImage(prompt="a red circle", image=init, strength=0.5, seed=4, prior_steps=2, steps=6)
    ours = kl.image_to_image(kit, s)
    prior = kit.prior("a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(4))
    raw = kit.img2img(
        image=init,
        image_embeds=prior.image_embeds,
        negative_image_embeds=prior.negative_image_embeds,
        height=64,
        width=64,
        strength=0.5,
        num_inference_steps=6,
        generator=torch.Generator().manual_seed(4),
    ).images[0]
    assert np.array_equal(pixels(ours.images[0]), pixels(raw))


def test_image_to_image_renders_at_the_models_size_in_the_inputs_shape(kit):
    init = PIL.Image.new("RGBA", (101, 66), "navy")
    result = kl.image_to_image(kit, kl.ImageToImage(prompt="x", image=init, **FAST, strength=0.7))
    assert result.size == (52, 80)  # about tiny's 64² pixels at 101:66; tiny's multiple is 4
    assert result.images[0].size == (80, 52)
    assert result.notes == ["put the RGBA image's transparent parts on white", "resized the image from 101x66 to 80x52"]
    assert kl.fit_size(init, kit.size_multiple) == (68, 100)  # the input's own size, for who asks for it


def test_interpolation_lerp_is_diffusers_interpolate(kit):
    a, b = PIL.Image.new("RGB", (80, 80), "red"), PIL.Image.new("RGB", (80, 80), "yellow")
    s = kl.Interpolation(items=(a, b), weights=(0.3, 0.7), **FAST)
    ours = kl.interpolation_embeddings(kit, s)
    theirs = kit.prior.interpolate([a, b], [0.3, 0.7], num_inference_steps=2)
    torch.testing.assert_close(ours.image_embeds, theirs.image_embeds, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.negative_image_embeds, theirs.negative_image_embeds, rtol=0, atol=1e-6)


def test_interpolation_mixes_text_and_images_in_both_modes(kit):
    img = PIL.Image.new("RGB", (80, 80), "blue")
    for mode in ("lerp", "slerp"):
        s = kl.Interpolation(items=("a cat", img, "a dog"), weights=(0.3, 0.3, 0.4), mode=mode, num_images=2, **FAST)
        result = kl.interpolate(kit, s)
        assert len(result.images) == 2 and result.embeddings.image_embeds.shape == (2, 32)


def test_interpolation_end_points_are_the_items(kit):
    a, b = "a red circle", PIL.Image.new("RGB", (80, 80), "yellow")
    text = kl.prompt_embeddings(kit, a, "", 2, 4.0, [0]).image_embeds
    image = kl.image_embedding(kit, b)
    for mode in ("lerp", "slerp"):
        at = lambda w: kl.interpolation_embeddings(kit, kl.Interpolation(items=(a, b), weights=(1 - w, w), mode=mode, **FAST)).image_embeds
        torch.testing.assert_close(at(0.0), text)
        torch.testing.assert_close(at(1.0), image)


def test_slerp_keeps_length_where_lerp_shrinks_it():
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])
    half_lerp = kl.mix([a, b], [0.5, 0.5], "lerp")
    half_slerp = kl.mix([a, b], [0.5, 0.5], "slerp")
    assert half_lerp.norm().item() == pytest.approx(2**-0.5)
    assert half_slerp.norm().item() == pytest.approx(1.0)
    torch.testing.assert_close(half_slerp, torch.tensor([[2**-0.5, 2**-0.5]]))
    # normalisation divides by the sum of the weights
    torch.testing.assert_close(kl.mix([a, b], [1.0, 1.0], "lerp", normalize=True), half_lerp)


def test_interpolation_weights_do_not_change_what_a_prompt_contributes(fresh_kit):
    img = PIL.Image.new("RGB", (80, 80), "blue")
    for w in (0.2, 0.5, 0.8):
        kl.interpolation_embeddings(fresh_kit, kl.Interpolation(items=("a cat", img), weights=(w, 1 - w), **FAST))
    assert fresh_kit.prior_runs == 1  # the prompt's embedding was computed once and reused


def test_prior_and_decoder_have_separate_generators(kit, monkeypatch):
    captured = []
    original = kit.decoder.prepare_latents

    def spy(*args, **kwargs):
        latents = original(*args, **kwargs)
        captured.append(latents.clone())
        return latents

    monkeypatch.setattr(kit.decoder, "prepare_latents", spy)
    base = kl.TextToImage(prompt="a red circle", seed=5, **FAST)
    kl.text_to_image(kit, base)
    kl.text_to_image(kit, dataclasses.replace(base, prior_steps=5))
    kl.text_to_image(kit, dataclasses.replace(base, prior_guidance_scale=7.0))
    kl.text_to_image(kit, dataclasses.replace(base, decoder_seed=6))
    assert torch.equal(captured[0], captured[1]) and torch.equal(captured[0], captured[2])
    assert not torch.equal(captured[0], captured[3])


def test_each_image_has_its_own_seeds(kit):
    result = kl.text_to_image(kit, kl.TextToImage(prompt="a cat", seed=10, decoder_seed=100, num_images=3, **FAST))
    assert result.prior_seeds == [10, 11, 12] and result.decoder_seeds == [100, 101, 102]
    assert len({pixels(im).tobytes() for im in result.images}) == 3


def test_same_settings_same_pixels(kit):
    s = kl.TextToImage(prompt="a cat", num_images=2, **FAST)
    a, b = kl.text_to_image(kit, s), kl.text_to_image(kit, s)
    assert all(np.array_equal(pixels(x), pixels(y)) for x, y in zip(a.images, b.images))


@pytest.mark.parametrize("height,width", [(64, 128), (128, 64), (96, 32)])
def test_every_task_renders_exactly_the_size_asked_for(kit, height, width):
    img = PIL.Image.new("RGB", (50, 70), "white")
    for task, s in (
        (kl.text_to_image, kl.TextToImage(prompt="a", height=height, width=width, **FAST)),
        (kl.image_to_image, kl.ImageToImage(prompt="a", image=img, strength=0.7, height=height, width=width, **FAST)),
        (kl.interpolate, kl.Interpolation(items=("a", img), weights=(1, 1), height=height, width=width, **FAST)),
    ):
        result = task(kit, s)
        assert result.images[0].size == (width, height), task.__name__


@pytest.mark.parametrize(
    "height,width,message",
    [
        (66, 64, "height=66 is not a multiple of 4: use 64 or 68"),
        (64, 2, "width=2 is out of range: use 4 to 2048 pixels"),
        (4096, 64, "height=4096 is out of range"),
    ],
)
def test_sizes_off_the_rule_are_refused_with_the_valid_neighbours(kit, height, width, message):
    with pytest.raises(ValueError, match=message):
        kl.text_to_image(kit, kl.TextToImage(prompt="a", height=height, width=width, **FAST))


def test_size_rule_is_diffusers_text_to_image_rule_for_the_real_model():
    assert kl.sizes.size_multiple([128, 256, 256, 512]) == 64  # Kandinsky 2.2's MoVQ
    with pytest.raises(ValueError, match="height=500 is not a multiple of 64: use 448 or 512"):
        kl.check_size(500, 512, 64)


def test_step_events_cover_both_stages(fresh_kit):
    events = []
    kl.text_to_image(fresh_kit, kl.TextToImage(prompt="a", num_images=2, **FAST), on_step=events.append, batch_size=1)
    stages = [(e.stage, e.batch, e.step, e.total) for e in events]
    assert stages == [
        ("prior", 1, 1, 2), ("prior", 1, 2, 2), ("prior", 2, 1, 2), ("prior", 2, 2, 2),
        ("decoder", 1, 1, 3), ("decoder", 1, 2, 3), ("decoder", 1, 3, 3),
        ("decoder", 2, 1, 3), ("decoder", 2, 2, 3), ("decoder", 2, 3, 3),
    ]  # fmt: skip
    assert events[0].latents.shape == (1, 32) and events[-1].latents.shape == (1, 4, 32, 32)


def test_image_to_image_reports_the_steps_it_really_takes(kit):
    events = []
    s = kl.ImageToImage(prompt="a", image=PIL.Image.new("RGB", (64, 64)), strength=0.5, prior_steps=2, steps=10)
    kl.image_to_image(kit, s, on_step=events.append)
    decoder = [e for e in events if e.stage == "decoder"]
    assert len(decoder) == 5 and decoder[-1].total == 5


def test_stop_during_the_decoder_keeps_finished_images(fresh_kit):
    stop = kl.StopSignal()

    def on_step(e):
        if e.stage == "decoder" and e.batch == 2 and e.step == 2:
            stop.set()

    s = kl.TextToImage(prompt="a", num_images=3, **FAST)
    result = kl.text_to_image(fresh_kit, s, on_step=on_step, stop=stop, batch_size=1)
    assert result.interrupted == "stopped during the decoder at step 2"
    assert len(result.images) == 1
    full = kl.text_to_image(fresh_kit, s, batch_size=1)  # the next run works and starts from scratch
    assert full.interrupted is None and len(full.images) == 3
    assert np.array_equal(pixels(full.images[0]), pixels(result.images[0]))


def test_stop_during_the_prior_ends_at_once(fresh_kit):
    stop = kl.StopSignal()
    events = []

    def on_step(e):
        events.append(e)
        stop.set()

    result = kl.text_to_image(fresh_kit, kl.TextToImage(prompt="a", prior_steps=5, steps=3), on_step=on_step, stop=stop)
    assert result.interrupted == "stopped during the prior at step 1"
    assert result.images == [] and result.embeddings is None and len(events) == 1


def test_decoder_settings_reuse_the_prior(fresh_kit):
    s = kl.TextToImage(prompt="a", **FAST)
    kl.text_to_image(fresh_kit, s)
    kl.text_to_image(fresh_kit, dataclasses.replace(s, steps=5, guidance_scale=7.0, height=32))
    assert fresh_kit.prior_runs == 1
    kl.text_to_image(fresh_kit, dataclasses.replace(s, prior_steps=3))
    assert fresh_kit.prior_runs == 2


@pytest.mark.parametrize(
    "settings,message",
    [
        (kl.TextToImage(prompt=""), "prompt must be a non-empty text"),
        (kl.TextToImage(prompt="a", steps=0), "steps must be a whole number from 1 to 1000"),
        (kl.TextToImage(prompt="a", prior_steps=1), "prior_steps must be a whole number from 2 to 1000"),
        (kl.TextToImage(prompt="a", guidance_scale=float("nan")), "guidance_scale must be a number from 0 to 100"),
        (kl.TextToImage(prompt="a", seed=-1), "seed must be a whole number from 0"),
        (kl.ImageToImage(prompt="a"), "image is missing: choose or upload a start image"),
        (kl.ImageToImage(prompt="a", image=PIL.Image.new("RGB", (8, 8)), strength=1.5), r"strength must be in \(0, 1\]"),
        (kl.Interpolation(items=("a", "b"), weights=(1.0,)), "items and weights must have the same length"),
        (kl.Interpolation(items=("a", "b"), weights=(0, 0)), "weights must not all be zero"),
        (kl.Interpolation(items=("a",), weights=(1,), mode="cubic"), "mode must be one of"),
    ],
)
def test_bad_settings_are_refused_by_name(kit, settings, message):
    with pytest.raises(ValueError, match=message):
        kl.run(kit, settings)


def test_planned_size_tells_what_will_be_rendered(kit):
    assert kl.planned_size(kit, kl.TextToImage(prompt="a")) == (64, 64)
    assert kl.planned_size(kit, kl.TextToImage(prompt="a", height=32, width=128)) == (32, 128)
    photo = PIL.Image.new("RGB", (201, 98))
    assert kl.planned_size(kit, kl.ImageToImage(prompt="a", image=photo)) == (44, 92)  # the model's size, the photo's shape
    with pytest.raises(ValueError, match="width=130 is not a multiple of 4: use 128 or 132"):
        kl.planned_size(kit, kl.TextToImage(prompt="a", width=130))


def test_previews_every_few_decoder_steps(kit):
    seen = []
    show = lambda images, event: seen.append((event.step, [im.size for im in images]))
    s = kl.TextToImage(prompt="a", prior_steps=2, steps=5, num_images=2)
    kl.text_to_image(kit, s, on_step=kl.Previews(show, every=2))
    assert seen == [(2, [(32, 32)] * 2), (4, [(32, 32)] * 2), (5, [(32, 32)] * 2)]
    seen.clear()
    kl.text_to_image(kit, s, on_step=kl.Previews(show, every=5, movq=kit.decoder.movq))
    assert seen == [(5, [(64, 64)] * 2)]


def test_decoded_preview_of_the_last_step_is_the_picture(kit):
    last = []
    s = kl.TextToImage(prompt="a", **FAST)
    result = kl.text_to_image(kit, s, on_step=lambda e: last.append(e.latents) if e.stage == "decoder" else None)
    preview = kl.decoded_preview(kit.decoder.movq, last[-1])[0]
    assert np.abs(pixels(preview) - pixels(result.images[0])).max() <= 1  # rounding vs diffusers' numpy_to_pil
