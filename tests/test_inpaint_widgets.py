"""The mask painter and the inpainting panel, headless: set values, click buttons, send what the browser sends."""

import io

import numpy as np
import PIL.Image
import pytest
import traitlets

import kandinsky_lab as kl
from kandinsky_lab import masks, world
from kandinsky_lab.widgets import InpaintPanel, MaskEditor, Playground

PICTURE = world.render(world.Scene("square", "red", "blue"))
BOX = masks.rectangle((64, 64), (16, 16, 48, 48))


def browser_png(mask: PIL.Image.Image) -> bytes:
    """What mask_painter.js sends: an RGBA PNG, painted pixels opaque magenta, the rest transparent."""
    layer = PIL.Image.new("RGBA", mask.size, (255, 0, 170, 0))
    layer.putalpha(mask)
    out = io.BytesIO()
    layer.save(out, format="PNG")
    return out.getvalue()


def fast(panel):
    panel.sampling.prior_steps.value, panel.sampling.steps.value = 2, 3


def test_the_editor_reads_what_the_browser_paints_and_its_buttons_change_it():
    editor = MaskEditor(PICTURE)
    assert editor.value.size == (64, 64) and masks.coverage(editor.value) == 0
    assert "paint the part to change" in editor.note.value
    editor.painter.mask = browser_png(BOX)  # a stroke ended in the browser
    assert np.array_equal(masks.read(editor.value), masks.read(BOX))
    assert "repaints <b>25%</b>" in editor.note.value
    editor.invert_button.click()
    assert np.array_equal(masks.read(editor.value), ~masks.read(BOX))
    editor.clear_button.click()
    assert masks.coverage(editor.value) == 0
    editor.tool.value, editor.brush.value = "rectangle", 12
    assert editor.painter.tool == "rectangle" and editor.painter.brush == 12
    with pytest.raises(traitlets.TraitError, match="tool must be one of brush, eraser, rectangle"):
        editor.painter.tool = "lasso"


def test_a_mask_of_another_size_is_refused_by_the_painter():
    editor = MaskEditor(PICTURE)
    with pytest.raises(kl.ImageError, match="mask is 32 x 32 pixels but the image is 64 x 64"):
        editor.painter.set_mask(BOX.resize((32, 32)))


def test_a_new_picture_starts_with_an_empty_mask_at_its_size():
    editor = MaskEditor(PICTURE)
    editor.painter.set_mask(BOX)
    editor.set_image(PIL.Image.new("RGB", (200, 100), "white"))
    assert editor.value.size == (200, 100) and masks.coverage(editor.value) == 0
    assert editor.painter.zoom_to >= 200 and editor.brush.value == 25


def test_the_panel_says_what_is_missing_then_repaints_the_mask(kit):
    panel = InpaintPanel(kit)
    fast(panel)
    panel.run.generate_button.click()
    assert "choose or upload a picture to repaint" in panel.run.status.value
    panel.image_input.set_image(PICTURE, "test")
    assert panel.editor.value.size == PICTURE.size
    panel.run.generate_button.click()
    assert "paint the part to repaint first" in panel.run.status.value
    panel.editor.painter.mask = browser_png(BOX)
    panel.keep_outside.value = True
    panel.feather.value = 0
    settings = panel.settings()
    assert isinstance(settings, kl.Inpaint) and np.array_equal(masks.read(settings.mask), masks.read(BOX))
    panel.run.generate_button.click()
    assert panel.run.wait(60) and panel.run.status.value.startswith("done")
    result = panel.run.last_result.images[0]
    outside = ~masks.read(BOX)
    assert np.array_equal(np.asarray(result)[outside], np.asarray(PICTURE)[outside])  # pasted back


def test_feather_follows_keep_outside_and_the_object_button_finds_the_square(kit):
    panel = InpaintPanel(kit)
    assert panel.feather.disabled
    panel.keep_outside.value = True
    assert not panel.feather.disabled
    panel.find_object.click()
    assert "choose a picture first" in panel.run.status.value
    panel.image_input.set_image(PICTURE, "test")
    panel.find_object.click()
    found = masks.read(panel.editor.value)
    assert found[32, 32] and not found[2, 2]
    panel.find_background.click()
    assert masks.read(panel.editor.value)[2, 2] and not masks.read(panel.editor.value)[32, 32]


def test_the_gallery_sends_a_picture_to_inpainting_and_restores_an_inpainting(kit, tmp_path):
    play = Playground(kit, output_dir=tmp_path)
    fast(play.text_to_image)
    play.text_to_image.run.generate_button.click()
    assert play.text_to_image.run.wait(60)
    card = play.gallery.grid.children[0]
    send = card.children[3].children[0]
    assert send.description == "→ inpaint"
    send.click()
    assert play.tabs.selected_index == 3
    made = play.gallery.images[0]
    assert np.array_equal(np.asarray(play.inpaint.image_input.image), np.asarray(made))
    inpaint = play.inpaint
    fast(inpaint)
    inpaint.editor.painter.mask = browser_png(BOX)
    inpaint.run.generate_button.click()
    assert inpaint.run.wait(60) and len(play.gallery.entries) == 2
    assert "inpainting" in play.gallery.grid.children[0].children[1].value
    assert len(list(tmp_path.glob("*.mask.png"))) == 1
    # after a restart: the inpainting card restores its picture (an earlier gallery picture) and its mask
    again = Playground(kit, output_dir=tmp_path)
    assert len(again.gallery.entries) == 2  # the mask files are not pictures of the gallery
    again.tabs.selected_index = 0
    again.gallery.restore(1)
    assert again.tabs.selected_index == 3
    assert np.array_equal(masks.read(again.inpaint.editor.value), masks.read(BOX))
    assert np.array_equal(np.asarray(again.inpaint.image_input.image), np.asarray(made))
