"""PNG metadata: what is written, reading it back, bit-identical regeneration, never overwriting."""

import json

import numpy as np
import PIL.Image
import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

import kandinsky_lab as kl
from kandinsky_lab import metadata

from .conftest import FAST


def test_png_carries_a1111_parameters_and_json(kit, tmp_path):
    s = kl.TextToImage(prompt="a red circle", negative_prompt="blurry", seed=7, num_images=2, **FAST)
    result = kl.text_to_image(kit, s)
    path = kl.save_image(result, 1, tmp_path)
    with PIL.Image.open(path) as im:
        text = im.text
    assert text["parameters"].splitlines() == [
        "a red circle",
        "Negative prompt: blurry",
        "Steps: 3, Sampler: DDPM, CFG scale: 4.0, Seed: 8, Size: 64x64, Model: tiny, "
        "Prior steps: 2, Prior CFG scale: 4.0, Prior seed: 8",
    ]
    record = json.loads(text["kandinsky_lab"])
    assert record["task"] == "text_to_image" and record["index"] == 1 and record["batch_size"] == 2
    assert record["prior_seed"] == 8 and record["decoder_seed"] == 8 and record["model"] == "tiny"
    assert record["settings"]["height"] == 64 and record["settings"]["prior_steps"] == 2
    assert set(record["versions"]) == {"kandinsky-lab", "diffusers", "transformers", "torch"}


@pytest.mark.parametrize("task", ["text_to_image", "image_to_image", "interpolation"])
def test_saved_png_regenerates_bit_identically(kit, tmp_path, task):
    img = PIL.Image.new("RGB", (72, 60), "orange")
    s = {
        "text_to_image": kl.TextToImage(prompt="a cat", seed=3, decoder_seed=9, num_images=3, **FAST),
        "image_to_image": kl.ImageToImage(prompt="a cat", image=img, strength=0.6, num_images=2, **FAST),
        "interpolation": kl.Interpolation(items=("a cat", img), weights=(0.4, 0.6), mode="slerp", **FAST),
    }[task]
    result = kl.run(kit, s)
    index = len(result.images) - 1
    path = kl.save_image(result, index, tmp_path)
    again = kl.regenerate(kit, path, images=[img])
    assert np.array_equal(np.asarray(again), np.asarray(result.images[index]))
    loaded, i, batch = kl.load_settings(path, images=[img])
    assert loaded == result.settings and i == index and batch == result.batch_size


def test_missing_input_image_is_named(kit, tmp_path):
    img = PIL.Image.new("RGB", (64, 64), "orange")
    result = kl.image_to_image(kit, kl.ImageToImage(prompt="a", image=img, strength=0.5, **FAST))
    path = kl.save_image(result, 0, tmp_path)
    with pytest.raises(ValueError, match="made from a 64x64 input image that was not passed"):
        kl.load_settings(path)


def test_saving_never_overwrites_and_stays_in_the_folder(kit, tmp_path):
    result = kl.text_to_image(kit, kl.TextToImage(prompt="../../etc/passwd\\..\\x", **FAST))
    out = tmp_path / "out"
    paths = [kl.save_image(result, 0, out) for _ in range(3)]
    assert len(set(paths)) == 3 and all(p.parent == out for p in paths)
    assert [p.name for p in paths] == ["00001-etc-passwd-x.png", "00002-etc-passwd-x.png", "00003-etc-passwd-x.png"]
    (out / "00004-etc-passwd-x.png").write_bytes(b"someone else's file")  # a name taken behind our back
    p = kl.save_image(result, 0, out)
    assert (out / "00004-etc-passwd-x.png").read_bytes() == b"someone else's file" and p.name.startswith("00005-")
    assert not list(out.glob(".partial-*"))


def test_png_without_metadata_is_refused(tmp_path):
    PIL.Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="has no kandinsky_lab metadata"):
        kl.load_settings(tmp_path / "plain.png")


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
sampling = dict(
    prior_guidance_scale=st.floats(0, 20, allow_nan=False),
    prior_steps=st.integers(2, 100),
    guidance_scale=st.floats(0, 20, allow_nan=False),
    steps=st.integers(1, 200),
    height=st.sampled_from([64, 512, 768, None]),
    width=st.sampled_from([64, 512, 1024, None]),
    num_images=st.integers(1, 8),
    seed=st.integers(0, 2**62),
    decoder_seed=st.one_of(st.none(), st.integers(0, 2**62)),
)


@hyp_settings(max_examples=60, deadline=None)
@given(st.builds(kl.TextToImage, prompt=texts, negative_prompt=texts, **sampling))
def test_text_settings_survive_the_json_round_trip(s):
    data = json.loads(json.dumps(metadata.settings_to_dict(s)))
    assert metadata.settings_from_dict("text_to_image", data) == s


@hyp_settings(max_examples=30, deadline=None)
@given(
    st.lists(st.one_of(texts, st.just("IMAGE")), min_size=1, max_size=4),
    st.sampled_from(["lerp", "slerp"]),
    st.booleans(),
)
def test_interpolation_settings_survive_the_json_round_trip(items, mode, normalize):
    img = PIL.Image.new("RGB", (5, 3), "red")
    items = tuple(img if i == "IMAGE" else i for i in items)
    s = kl.Interpolation(items=items, weights=tuple(float(i) for i in range(len(items))), mode=mode, normalize_weights=normalize)
    data = json.loads(json.dumps(metadata.settings_to_dict(s)))
    assert metadata.settings_from_dict("interpolation", data, images=[img]) == s
