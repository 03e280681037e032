"""Fine-tuning with LoRA (kandinsky_lab/fine_tuning.py) and adapters (kandinsky_lab/adapters.py), on nano.

Training here is a few steps (seconds): enough to show the loss going down on a fixed batch and an
adapter that changes the pictures; `python -m benchmarks.finetune` trains for real.
"""

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import kandinsky_lab as kl
from kandinsky_lab import adapters, fine_tuning
from tests.lora import QUICK, hearts, train

PROMPT = "a red heart on a white background"


@pytest.fixture(scope="module")
def kit():
    return kl.load("nano", device="cpu")


@pytest.fixture(scope="module")
def adapter(kit, tmp_path_factory):
    """A small decoder + prior adapter, trained once for the module."""
    return train(kit, tmp_path_factory.mktemp("adapter") / "heart")


@pytest.fixture
def clean(kit):
    """The kit with no adapter before and after the test."""
    kit.unload_adapter()
    yield kit
    kit.unload_adapter()


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def draw(kit, **settings) -> np.ndarray:
    return pixels(kl.text_to_image(kit, kl.TextToImage(prompt=PROMPT, **QUICK, **settings)).images[0])


def fixed_batch_losses(kit, settings) -> dict[str, float]:
    """Each part's loss on the same pictures, noise and timesteps (a fixed generator)."""
    pictures, size, _ = fine_tuning.prepared_pictures(kit, settings)
    data = fine_tuning.encode(kit, settings, pictures, size)
    index = torch.arange(len(pictures))
    with torch.no_grad():
        decoder = fine_tuning.decoder_loss(kit, data, index, __import__("diffusers").DDPMScheduler.from_config(kit.decoder.scheduler.config), torch.Generator().manual_seed(7))
        prior = fine_tuning.prior_loss(kit, data, index, torch.Generator().manual_seed(7))
    return {"decoder": decoder.item(), "prior": prior.item()}


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(clean, tmp_path):
    pictures, captions = hearts()
    settings = kl.FineTune(pictures=pictures, captions=captions, steps=40, learning_rate=3e-3, batch_size=6)
    before = fixed_batch_losses(clean, settings)
    run = kl.finetune(clean, settings, save_to=tmp_path / "a")
    clean.load_adapter(run.folder)
    with adapters.active(clean, clean.adapter, 1.0):
        after = fixed_batch_losses(clean, settings)
    assert after["decoder"] < before["decoder"] and after["prior"] < 0.8 * before["prior"], (before, after)
    assert run.steps == 40 and run.trainable["decoder"] < 0.01 * run.frozen["decoder"]
    assert run.words == ["heart"]


def test_training_leaves_the_base_model_as_it_was(clean, tmp_path):
    before = draw(clean)
    weights = {n: p.clone() for n, p in clean.decoder.unet.named_parameters()}
    train(clean, tmp_path / "a", steps=3)
    assert not hasattr(clean.decoder.unet, "peft_config") and clean.adapter is None
    assert all(torch.equal(p, weights[n]) for n, p in clean.decoder.unet.named_parameters())
    assert np.array_equal(draw(clean), before)


def test_the_same_settings_train_the_same_adapter(clean, adapter, tmp_path):
    again = train(clean, tmp_path / "again")
    assert adapters.read(again.folder).digest == adapters.read(adapter.folder).digest


def test_scale_zero_is_the_base_model_and_unload_restores_it(clean, adapter):
    base = draw(clean)
    clean.load_adapter(adapter.folder)
    assert not np.array_equal(draw(clean), base)
    assert np.array_equal(draw(clean, adapter_scale=0.0), base)
    half = draw(clean, adapter_scale=0.5)
    assert not np.array_equal(half, base) and not np.array_equal(half, draw(clean))
    clean.unload_adapter()
    assert not hasattr(clean.decoder.unet, "peft_config") and not hasattr(clean.prior.prior, "peft_config")
    assert np.array_equal(draw(clean), base)


def test_a_prior_output_remembered_before_the_adapter_is_not_reused_with_it(clean, adapter):
    base = kl.text_to_image(clean, kl.TextToImage(prompt=PROMPT, **QUICK)).embeddings.image_embeds
    clean.load_adapter(adapter.folder)
    adapted = kl.text_to_image(clean, kl.TextToImage(prompt=PROMPT, **QUICK)).embeddings.image_embeds
    assert not torch.equal(base, adapted)


ROUND_TRIP = """
import sys, numpy as np, kandinsky_lab as kl
kit = kl.load("nano", device="cpu")
kit.load_adapter(sys.argv[1])
image = kl.text_to_image(kit, kl.TextToImage(prompt=sys.argv[2], prior_steps=3, steps=4)).images[0]
np.save(sys.argv[3], np.asarray(image))
"""


def test_an_adapter_round_trips_through_a_fresh_process(clean, adapter, tmp_path):
    clean.load_adapter(adapter.folder)
    here = draw(clean)
    subprocess.run([sys.executable, "-c", ROUND_TRIP, str(adapter.folder), PROMPT, str(tmp_path / "there.npy")], check=True, capture_output=True)
    assert np.array_equal(np.load(tmp_path / "there.npy"), here)


DIFFUSERS_ONLY = """
import sys, torch
from diffusers import UNet2DConditionModel
unet = UNet2DConditionModel.from_pretrained(sys.argv[1])
unet.load_lora_adapter(sys.argv[2], weight_name="pytorch_lora_weights.safetensors", prefix=None)
assert not any(name.startswith("kandinsky_lab") for name in sys.modules), "the kit was imported"
g = torch.Generator().manual_seed(0)
x, emb = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, unet.config.encoder_hid_dim, generator=g)
with torch.no_grad():
    out = unet(x, torch.tensor([500]), encoder_hidden_states=None, added_cond_kwargs={"image_embeds": emb}).sample
torch.save(out, sys.argv[3])
"""


def test_the_decoder_file_loads_with_diffusers_alone(clean, adapter, tmp_path):
    unet_folder = Path(kl.__file__).parent / "models" / "nano" / "decoder" / "unet"
    subprocess.run([sys.executable, "-c", DIFFUSERS_ONLY, str(unet_folder), str(adapter.folder / "decoder"), str(tmp_path / "out.pt")], check=True, capture_output=True)
    clean.load_adapter(adapter.folder)
    g = torch.Generator().manual_seed(0)
    unet = clean.decoder.unet
    x, emb = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, unet.config.encoder_hid_dim, generator=g)
    with torch.no_grad():
        here = unet(x, torch.tensor([500]), encoder_hidden_states=None, added_cond_kwargs={"image_embeds": emb}).sample
    assert torch.allclose(torch.load(tmp_path / "out.pt"), here, atol=1e-5)


def test_the_adapter_json_says_what_it_is(adapter):
    info = json.loads((adapter.folder / "adapter.json").read_text())
    assert info["base"]["source"] == "nano" and info["parts"] == ["decoder", "prior"] and info["rank"] == 4
    assert info["steps"] == 12 and info["words"] == ["heart"] and len(info["captions"]) == 6
    assert all((adapter.folder / p / adapters.WEIGHTS_FILE).stat().st_size < 2 * 2**20 for p in info["parts"])


def test_a_decoder_only_adapter_teaches_no_word(clean, tmp_path, capsys):
    run = train(clean, tmp_path / "decoder", parts=("decoder",), steps=3)
    assert json.loads((run.folder / "adapter.json").read_text())["words"] == []
    clean.load_adapter(run.folder)
    clean.said.clear()
    draw(clean)
    assert "never saw the word 'heart'" in capsys.readouterr().out


def test_the_metadata_names_the_adapter_and_regenerate_checks_it(clean, adapter, tmp_path):
    clean.load_adapter(adapter.folder)
    result = kl.text_to_image(clean, kl.TextToImage(prompt=PROMPT, **QUICK))
    path = kl.save_image(result, 0, tmp_path)
    record = kl.read_record(path)
    assert record["adapter"]["digest"] == clean.adapter.digest and record["adapter"]["scale"] == 1.0
    assert "Lora: heart" in PIL.Image.open(path).text["parameters"]
    assert np.array_equal(pixels(kl.regenerate(clean, path)), pixels(result.images[0]))
    plain = kl.save_image(kl.text_to_image(clean, kl.TextToImage(prompt=PROMPT, adapter_scale=0, **QUICK)), 0, tmp_path)
    assert kl.read_record(plain)["adapter"] is None
    clean.unload_adapter()
    base = draw(clean)
    with pytest.raises(kl.KitError, match=f"drawn with the LoRA adapter 'heart' \\({result.adapter['digest']}\\): load it first"):
        kl.regenerate(clean, path)
    other = train(clean, tmp_path / "other", steps=2, seed=5)
    clean.load_adapter(other.folder)
    with pytest.raises(kl.KitError, match="and the loaded one is heart"):
        kl.regenerate(clean, path)
    assert np.array_equal(pixels(kl.regenerate(clean, plain)), base)  # made without one: drawn at scale 0


def test_a_sweep_over_the_adapter_scale_goes_from_the_base_model_to_the_adapter(clean, adapter):
    base = draw(clean)
    clean.load_adapter(adapter.folder)
    sweep = kl.sweep(clean, kl.TextToImage(prompt=PROMPT, **QUICK), x=("adapter_scale", [0.0, 0.5, 1.0]))
    cells = [pixels(c.image) for c in sweep.cells[0]]
    assert np.array_equal(cells[0], base) and np.array_equal(cells[2], draw(clean))
    assert not np.array_equal(cells[1], cells[0]) and not np.array_equal(cells[1], cells[2])


def test_bad_training_input_is_refused_by_name(clean, tmp_path):
    pictures, captions = hearts(3)
    good = dict(pictures=pictures, captions=captions, steps=2)
    cases = [
        (dict(good, pictures=(), captions=()), "pictures is empty"),
        (dict(good, captions=captions[:2]), "3 pictures but 2 captions"),
        (dict(good, steps=0), "steps"),
        (dict(good, rank=4096), "rank must be"),
        (dict(good, rank=65), "larger than the decoder's smallest adapted layer"),
        (dict(good, parts=("unet",)), "parts must name"),
        (dict(good, captions=("a heart", "", "x")), r"captions\[1\]"),
        (dict(good, learning_rate=0), "learning_rate"),
        (dict(good, pictures=(pictures[0], "a picture", pictures[2])), r"pictures\[1\]"),
    ]
    for fields, message in cases:
        with pytest.raises(kl.KitError, match=message):
            kl.finetune(clean, kl.FineTune(**fields), save_to=tmp_path / "bad")
    with pytest.raises(kl.KitError, match="FineTune"):
        kl.finetune(clean, kl.TextToImage(prompt="a heart"))
    clean.load_adapter(train(clean, tmp_path / "first", steps=1).folder)
    with pytest.raises(kl.KitError, match="unload_adapter"):
        kl.finetune(clean, kl.FineTune(**good), save_to=tmp_path / "second")


def test_mixed_sizes_modes_and_long_captions_are_converted_and_said(clean, tmp_path, capsys):
    pictures, captions = hearts(3)
    mixed = (pictures[0].resize((80, 64)), pictures[1].convert("RGBA"), pictures[2].convert("L"))
    long = ("a red heart " + "and a very long tail of words " * 8, *captions[1:])
    run = kl.finetune(clean, kl.FineTune(pictures=mixed, captions=long, steps=2), save_to=tmp_path / "mixed")
    said = " ".join(run.notes)
    assert "converted to RGB" in said and "1 of the 3 pictures were not 64 x 64" in said and "CLIP reads" in said
    assert "CLIP reads" in capsys.readouterr().out


def test_stop_keeps_the_last_checkpoint_loadable(clean, tmp_path):
    stop = kl.StopSignal()

    def halt(event):
        if event.step == 7:
            stop.set()

    pictures, captions = hearts()
    run = kl.finetune(clean, kl.FineTune(pictures=pictures, captions=captions, steps=50, checkpoint_every=5), save_to=tmp_path / "stopped", on_progress=halt, stop=stop)
    assert run.interrupted == "stopped after 7 of 50 steps" and run.steps == 7
    assert [p.name for p in run.checkpoints] == ["step-00005", "step-00007"]
    assert json.loads((run.folder / "adapter.json").read_text())["steps"] == 7
    clean.load_adapter(run.folder)
    clean.load_adapter(run.checkpoints[0])


def test_out_of_memory_keeps_the_last_checkpoint(clean, tmp_path):
    def full(event):
        if event.step == 6:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    pictures, captions = hearts()
    folder = tmp_path / "oom"
    with pytest.raises(kl.GPUOutOfMemory, match=f"the adapter of step 5 is kept in {folder}"):
        kl.finetune(clean, kl.FineTune(pictures=pictures, captions=captions, steps=50, checkpoint_every=5), save_to=folder, on_progress=full)
    assert not hasattr(clean.decoder.unet, "peft_config")
    clean.load_adapter(folder)
    assert clean.adapter.info["steps"] == 5


def test_damaged_foreign_and_misplaced_adapters_are_refused_by_name(clean, adapter, tmp_path):
    with pytest.raises(kl.FileFormatError, match="has no adapter.json"):
        clean.load_adapter(tmp_path)
    damaged = Path(shutil.copytree(adapter.folder, tmp_path / "damaged"))
    (damaged / "decoder" / adapters.WEIGHTS_FILE).write_bytes(b"\x00" * 40)
    with pytest.raises(kl.FileFormatError, match="decoder.*is damaged"):
        clean.load_adapter(damaged)
    foreign = Path(shutil.copytree(adapter.folder, tmp_path / "foreign"))
    from safetensors.torch import save_file

    save_file({"down_blocks.0.weight": torch.zeros(2)}, foreign / "prior" / adapters.WEIGHTS_FILE)
    with pytest.raises(kl.FileFormatError, match="holds no LoRA weights.*not a prior adapter"):
        clean.load_adapter(foreign)
    swapped = Path(shutil.copytree(adapter.folder, tmp_path / "swapped"))
    shutil.copy(adapter.folder / "decoder" / adapters.WEIGHTS_FILE, swapped / "prior" / adapters.WEIGHTS_FILE)
    with pytest.raises(kl.FileFormatError, match="does not fit this model's prior"):
        clean.load_adapter(swapped)
    assert clean.adapter is None and not hasattr(clean.prior.prior, "peft_config") and not hasattr(clean.decoder.unet, "peft_config")
    tiny = kl.load("tiny")
    with pytest.raises(kl.KitError, match="was made for 'nano', whose decoder is not this model's"):
        tiny.load_adapter(adapter.folder)
    with pytest.raises(kl.KitError, match="adapter_scale=1 but no adapter is loaded"):
        kl.text_to_image(clean, kl.TextToImage(prompt=PROMPT, adapter_scale=1.0, **QUICK))
    with pytest.raises(kl.SettingsError, match="adapter_scale must be"):
        kl.text_to_image(clean, kl.TextToImage(prompt=PROMPT, adapter_scale=9.0, **QUICK))


def test_the_kept_prompts_are_the_models_own_and_a_prior_only_run_draws_none(clean, monkeypatch):
    """keep_prompts: what text_to_image gives for them, seed by seed; a prior-only run needs only the prior's
    embeddings, so the decoder never runs."""
    pictures, captions = hearts(2)
    keep = ("a red circle on a white background", "a small blue star on the left on a yellow background")
    settings = kl.FineTune(pictures=pictures, captions=captions, keep_prompts=keep, seed=5)
    both = fine_tuning.own_pictures(clean, settings, 64)
    drawn = [kl.text_to_image(clean, kl.TextToImage(prompt=p, seed=5 + i)) for i, p in enumerate(keep)]
    assert torch.equal(both["image_embeds"], torch.cat([r.embeddings.image_embeds.float() for r in drawn]))
    monkeypatch.setattr(type(clean.decoder.unet), "forward", lambda *a, **k: pytest.fail("the decoder ran for a prior-only run"))
    prior_only = fine_tuning.own_pictures(clean, replace(settings, parts=("prior",)), 64)
    assert torch.equal(prior_only["image_embeds"], both["image_embeds"]) and "latents" not in prior_only


def test_the_ceiling_benchmarks_shifted_copies_show_the_same_scene_moved():
    """benchmarks.finetune_ceiling teaches every weight from shifted, mirrored copies: each must still be the heart
    in its colours (the judge reads them so), moved within the picture, never cut off."""
    import random

    from benchmarks.finetune_ceiling import shifted
    from kandinsky_lab import judge, world

    rng = random.Random(0)
    moved = 0
    for i in range(20):
        scene = world.sample(random.Random(i), shape="heart", size="small", position="center")
        picture = world.render(scene)
        copy = shifted(picture, rng)
        found = judge.describe(copy, shapes=world.SHAPES + ("heart",))
        assert (found["shape"], found["color"], found["background"]) == ("heart", scene.color, scene.background), i
        moved += not np.array_equal(np.asarray(copy), np.asarray(picture))
    assert moved >= 18


def test_the_ceiling_benchmarks_likeness_tells_a_known_shape_from_a_new_one(kit):
    """benchmarks.finetune_ceiling.alike compares a shape's embedding with the same scenes drawn as each old shape:
    an old shape asked as the "new" one is its own drawing (similarity 1, nearer than its other picture every time),
    and a heart is not."""
    from benchmarks.finetune_ceiling import alike

    circle, heart = alike(kit, "circle", count=4), alike(kit, "heart", count=4)
    assert circle["old"]["circle"] == pytest.approx(1.0, abs=1e-5) and circle["nearer_old"] == 1.0
    assert max(heart["old"].values()) < 0.99 and 0.5 < heart["same"] < 1.0 and 0.5 < heart["old_same"] < 1.0
