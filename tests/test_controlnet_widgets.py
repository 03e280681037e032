"""The ControlNet and variations panels, headless, and the gallery's "→ control" and "→ vary"."""

import numpy as np
import PIL.Image

import kandinsky_lab as kl
from kandinsky_lab import world
from kandinsky_lab.widgets import ControlNetPanel, Playground, VariationsPanel

PICTURE = world.render(world.Scene("star", "red", "blue", position="left"))
HINT = kl.masks.ellipse((64, 64), (8, 8, 40, 40))


def fast(panel):
    panel.sampling.prior_steps.value, panel.sampling.steps.value = 2, 3


def test_controlnet_panel_says_what_is_missing_then_uses_an_uploaded_hint(kit):
    panel = ControlNetPanel(kit)
    fast(panel)
    panel.run.generate_button.click()
    assert "choose a picture (its depth becomes the hint) or upload a depth hint first" in panel.run.status.value
    panel.image_input.set_image(PICTURE, "test")  # tiny has no depth estimator: the panel says so
    assert "the tiny model has no depth estimator" in panel.hint_note.value and panel.hint is None
    panel.hint_input.set_image(HINT.convert("RGB"), "drawn")
    assert panel.hint is not None and panel.hint_view.layout.display is None and "your own hint" in panel.hint_note.value
    settings = panel.settings()
    assert isinstance(settings, kl.ControlNet) and settings.image is None
    panel.run.generate_button.click()
    assert panel.run.wait(60) and panel.run.status.value.startswith("done")
    assert panel.image_options.layout.display == "none" and panel.prompt.layout.display is None  # only its own options hidden
    panel.from_picture.value = True
    assert panel.image_options.layout.display is None and panel.settings().image is PICTURE


def test_controlnet_panel_estimates_the_hint_with_nanos_depth_model():
    nano = kl.load("nano")
    panel = ControlNetPanel(nano)
    assert panel.sampling.guidance.value == nano.guidance_scale("controlnet") != 4.0  # the one chosen for nano's ControlNet
    panel.image_input.set_image(PICTURE, "test")
    assert "estimated from the picture" in panel.hint_note.value
    near = np.asarray(panel.hint) > 127
    assert near[32, 20] and not near[5, 60]  # the star on the left is near, the far right corner is not


def test_variations_panel_makes_four_by_default(kit):
    panel = VariationsPanel(kit)
    fast(panel)
    panel.run.generate_button.click()
    assert "choose or upload a picture to vary" in panel.run.status.value
    panel.image_input.set_image(PICTURE, "test")
    panel.run.generate_button.click()
    assert panel.run.wait(60) and len(panel.run.last_result.images) == 4
    panel.prompt.value = "a green circle"
    assert panel.settings().prompt == "a green circle" and panel.settings().prior_strength == 0.3


def test_the_gallery_sends_to_controlnet_and_variations_and_restores_them(kit, tmp_path):
    play = Playground(kit, output_dir=tmp_path)
    fast(play.text_to_image)
    play.text_to_image.run.generate_button.click()
    assert play.text_to_image.run.wait(60)
    card = play.gallery.grid.children[0]
    buttons = {b.description: b for row in card.children[2:] for b in getattr(row, "children", ()) if hasattr(b, "description")}
    assert {"→ i2i", "→ inpaint", "→ control", "→ vary"} <= set(buttons)
    buttons["→ vary"].click()
    assert play.tabs.selected_index == 5
    made = play.gallery.images[0]
    assert np.array_equal(np.asarray(play.variations.image_input.image), np.asarray(made))
    fast(play.variations)
    play.variations.sampling.num_images.value = 1
    play.variations.run.generate_button.click()
    assert play.variations.run.wait(60)
    buttons["→ control"].click()
    assert play.tabs.selected_index == 4
    play.controlnet.hint_input.set_image(HINT.convert("RGB"), "drawn")
    fast(play.controlnet)
    play.controlnet.run.generate_button.click()
    assert play.controlnet.run.wait(60) and len(play.gallery.entries) == 3
    assert len(list(tmp_path.glob("*.hint.png"))) == 1
    again = Playground(kit, output_dir=tmp_path)
    assert len(again.gallery.entries) == 3
    again.gallery.restore(2)  # the ControlNet picture: its hint read from beside it
    assert again.tabs.selected_index == 4 and again.controlnet.hint is not None
    again.gallery.restore(1)  # the variation: its picture is the gallery's first
    assert again.tabs.selected_index == 5
    assert np.array_equal(np.asarray(again.variations.image_input.image), np.asarray(made))
    assert isinstance(again.variations.settings(), kl.Variations)
    assert PIL.Image.open(sorted(tmp_path.glob("00002-*.png"))[0]).size == (64, 64)
