"""The offline model says what it knows: the model card's snippets typed against nano get notes naming
the words nano never saw and the size factor, before anything runs; prompts of nano's world get none."""

import json
import random
import time

import PIL.Image
import pytest

import kandinsky_lab as kl
from kandinsky_lab import knowledge, world

CARD_NEGATIVE = "low quality, bad quality"


def card_snippets() -> dict:
    """The model card's three snippets as a learner types them against the kit (its sizes, prompts and images)."""
    photo = PIL.Image.new("RGB", (768, 512), "skyblue")  # the card's input, resized to 768 × 512
    cat, starry = PIL.Image.new("RGB", (512, 512), "orange"), PIL.Image.new("RGB", (512, 512), "navy")
    return {
        "text_to_image": kl.TextToImage(
            prompt="portrait of a young women, blue eyes, cinematic", negative_prompt=CARD_NEGATIVE, prior_guidance_scale=1.0, height=768, width=768
        ),
        "image_to_image": kl.ImageToImage(prompt="A fantasy landscape, Cinematic lighting", image=photo, strength=0.3, height=768, width=768),
        "interpolation": kl.Interpolation(items=("a cat", cat, starry), weights=(0.3, 0.3, 0.4), height=768, width=768),
    }


UNKNOWN = {
    "text_to_image": ["portrait", "of", "young", "women", "eyes", "cinematic", "low", "quality", "bad"],
    "image_to_image": ["fantasy", "landscape", "cinematic", "lighting"],
    "interpolation": ["cat"],
}


@pytest.fixture
def nano():
    return kl.load("nano", device="cpu")  # a Kit of its own: each test starts with nothing said


@pytest.mark.parametrize("task", ["text_to_image", "image_to_image", "interpolation"])
def test_card_snippets_on_nano_get_notes_before_anything_runs(nano, task, capsys):
    settings = card_snippets()[task]
    stop = kl.StopSignal()
    stop.set()  # the run ends before its first step: what is said comes before any generation
    start = time.perf_counter()
    result = kl.run(nano, settings, stop=stop)
    took = time.perf_counter() - start
    assert nano.prior_runs == 0 and result.images == [] and result.interrupted
    assert took < 1.0, f"notes took {took:.2f} s"  # calibration of the time estimate included
    said = capsys.readouterr().out
    first, second = result.notes[:2]
    words = ", ".join(map(repr, UNKNOWN[task]))
    assert first.startswith(f"nano never saw the word{'s' if len(UNKNOWN[task]) > 1 else ''} {words} and will ignore")
    assert "768 × 768 is 144× the pixels it was trained on (64 × 64): about " in first and " s here, and no clear shapes" in first
    assert second.startswith("nano draws shapes: try prompt=\"") and second.endswith('" at height=width=64')
    assert first in said and second in said  # printed before the run


def test_prompts_sharing_an_unknown_word_print_its_note_and_a_suggestion_once(nano, capsys):
    """A dozen heart prompts (notebook 09 before training): two printed lines, not one suggestion per prompt;
    every Result still keeps its own two notes."""
    stop = kl.StopSignal()
    stop.set()
    prompts = [f"a {color} heart on a white background" for color in ("red", "blue", "green")]
    results = [kl.text_to_image(nano, kl.TextToImage(prompt=p), stop=stop) for p in prompts]
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["nano never saw the word 'heart' and will ignore it", 'nano draws shapes: try prompt="a large red circle on a white background"']
    assert [r.notes[1] for r in results] == [f'nano draws shapes: try prompt="a large {c} circle on a white background"' for c in ("red", "blue", "green")]
    kl.text_to_image(nano, kl.TextToImage(prompt="a red cat on a white background"), stop=stop)  # another word: its own two lines
    assert capsys.readouterr().out.splitlines() == ["nano never saw the word 'cat' and will ignore it", 'nano draws shapes: try prompt="a large red circle on a white background"']


def test_the_suggestion_keeps_what_nano_understood():
    assert knowledge.nearest_prompt(["portrait of a young women, blue eyes, cinematic"]) == "a large blue circle on a white background"
    assert knowledge.nearest_prompt(["a small star on the left, red on black"]) == "a small red star on the left on a black background"
    assert knowledge.nearest_prompt(["a cat"]) == "a large red circle on a white background"
    assert knowledge.nearest_prompt(["a blue heart"], vocabulary={"circle", "blue"}) == "a large blue circle on a white background"
    assert knowledge.nearest_prompt(["a blue heart"], vocabulary={"heart", "blue"}) == "a large blue heart on a white background"  # taught


def test_a_prompt_of_nanos_world_gets_no_note(nano):
    rng = random.Random(0)
    captions = {world.caption(world.sample(rng), rng) for _ in range(400)}
    assert len(captions) > 300
    for caption in captions:  # every template, every attribute
        assert knowledge.notes(nano, kl.TextToImage(prompt=caption)) == [], caption
    s = kl.TextToImage(prompt="A Red Star at the top, Yellow background")
    assert knowledge.notes(nano, s) == [] and knowledge.notes(nano, kl.TextToImage(prompt="a red star", height=80, width=64)) == []


def test_only_the_size_or_only_the_words(nano):
    words = knowledge.notes(nano, kl.TextToImage(prompt="a red cat on a white background"))
    assert words == ["nano never saw the word 'cat' and will ignore it", 'nano draws shapes: try prompt="a large red circle on a white background"']
    size = knowledge.notes(nano, kl.TextToImage(prompt="a red circle", height=256, width=256))
    assert size[0].startswith("256 × 256 is 16× the pixels it was trained on (64 × 64): about ") and size[1] == "nano draws shapes: try height=width=64"
    small = knowledge.notes(nano, kl.TextToImage(prompt="a red circle", height=32, width=32))
    assert small[0] == "32 × 32 is 0.25× the pixels it was trained on (64 × 64): shapes may come out deformed"
    middle = knowledge.notes(nano, kl.TextToImage(prompt="a red circle", height=96, width=144, steps=2, prior_steps=2))
    assert middle[0].startswith("144 × 96 is 3.38× the pixels") and middle[0].endswith("here, and shapes may come out deformed")
    assert " 0 s " not in middle[0]  # a short run says "under a second" or "about a second"


def test_the_estimate_is_in_the_right_range(nano):
    """The predicted time against a real run at 4× the pixels (a sanity range: machines vary)."""
    s = kl.TextToImage(prompt="a red circle", height=128, width=128, prior_steps=10, steps=10)
    predicted = knowledge.expected_seconds(nano, s, 128, 128)
    start = time.perf_counter()
    kl.text_to_image(nano, s)
    measured = time.perf_counter() - start
    assert measured / 3 < predicted < measured * 3, (predicted, measured)


def test_notes_are_kept_in_the_result_and_the_png_and_printed_once(nano, tmp_path, capsys):
    s = kl.TextToImage(prompt="a red cat", prior_steps=2, steps=2)
    first = kl.text_to_image(nano, s, save_to=tmp_path)
    again = kl.text_to_image(nano, s)
    assert capsys.readouterr().out.count("never saw the word 'cat'") == 1  # said once per Kit
    assert first.notes == again.notes and "never saw the word 'cat'" in first.notes[0]
    with PIL.Image.open(first.paths[0]) as im:
        assert json.loads(im.text["kandinsky_lab"])["notes"] == first.notes


def test_a_model_that_knows_the_words_gets_no_notes(kit):
    for settings in card_snippets().values():
        assert knowledge.notes(kit, settings) == []  # tiny records no vocabulary, like the real model


def test_the_vocabulary_comes_from_the_models_folder(nano, tmp_path):
    folder = nano.save(tmp_path / "retrained")
    info = json.loads((folder / "kandinsky_lab.json").read_text())
    assert info["vocabulary"] == world.vocabulary() and info["trained_size"] == 64
    info["vocabulary"].append("cat")  # a nano retrained on a world with cats
    (folder / "kandinsky_lab.json").write_text(json.dumps(info))
    retrained = kl.load(folder, device="cpu")
    assert knowledge.notes(retrained, kl.TextToImage(prompt="a red cat on a white background")) == []


def test_panels_show_the_notes_while_typing(nano):
    from kandinsky_lab.widgets import ImageToImagePanel, InterpolationPanel, TextToImagePanel

    panel = TextToImagePanel(nano)
    panel.widget  # noqa: B018 - builds the panel and its note line
    assert "never saw" not in panel.size_note.value  # starts from a prompt nano knows
    panel.prompt.value = "portrait of a young women"
    assert "nano never saw the words &#x27;portrait&#x27;, &#x27;of&#x27;, &#x27;young&#x27;, &#x27;women&#x27;" in panel.size_note.value
    panel.sampling.size.set(256, 256)
    assert "256 × 256 is 16× the pixels" in panel.size_note.value and "try prompt=" in panel.size_note.value
    panel.prompt.value = "a red circle on a white background"
    panel.sampling.size.set(64, 64)
    assert "never saw" not in panel.size_note.value and "try" not in panel.size_note.value
    i2i = ImageToImagePanel(nano)
    i2i.widget  # noqa: B018
    i2i.prompt.value = "A fantasy landscape"
    assert "&#x27;fantasy&#x27;, &#x27;landscape&#x27;" in i2i.size_note.value
    mix = InterpolationPanel(nano)
    mix.widget  # noqa: B018
    mix.new_text.value = "a cat"
    mix.add_text_button.click()
    assert "never saw the word &#x27;cat&#x27;" in mix.size_note.value
