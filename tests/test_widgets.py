"""Widget panels, headless: set values, click buttons, and check the settings used and the images shown."""

import dataclasses
import html
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import kandinsky_lab as kl
from kandinsky_lab.images import fetch_image
from kandinsky_lab.steps import StepEvent
from kandinsky_lab.widgets import ImageToImagePanel, InterpolationPanel, Playground, TextToImagePanel
from kandinsky_lab.sizes import model_size
from kandinsky_lab.widgets.controls import INPUT_SIZE, MODEL_SIZE, size_options, uploaded_files


def fast(panel, steps=3, images=1):
    panel.sampling.prior_steps.value = 2
    panel.sampling.steps.value = steps
    panel.sampling.num_images.value = images


def shown(image_widget) -> PIL.Image.Image:
    return PIL.Image.open(io.BytesIO(image_widget.value))


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_generate_passes_the_widget_values_and_shows_the_images(kit, monkeypatch):
    panel = TextToImagePanel(kit)
    seen = []
    monkeypatch.setattr(TextToImagePanel, "task", staticmethod(lambda k, s, **kw: seen.append(s) or kl.text_to_image(k, s, **kw)))
    panel.prompt.value, panel.negative_prompt.value = "a red circle", "blurry"
    fast(panel, images=2)
    panel.sampling.guidance.value = 6.5
    panel.sampling.seed.seed.value = 42
    panel.sampling.size.set(32, 128)
    panel.run.generate_button.click()
    assert panel.run.wait(60)
    assert seen == [
        kl.TextToImage(prompt="a red circle", negative_prompt="blurry", prior_steps=2, steps=3, num_images=2,
                       guidance_scale=6.5, seed=42, height=32, width=128)
    ]  # fmt: skip
    result = panel.run.last_result
    assert [im.size for im in result.images] == [(128, 32)] * 2
    assert panel.run.status.value.startswith("done: 2 image(s), 128 × 32")
    grid = shown(panel.run.result_image)
    assert grid.width > 2 * 128  # both pictures side by side, with labels
    assert panel.run.generate_button.disabled is False and panel.run.stop_button.disabled is True
    assert panel.run.prior_progress.value == 2 and panel.run.decoder_progress.value == 3


def test_stop_during_a_run_ends_it_and_keeps_finished_images(kit):
    panel = TextToImagePanel(kit)
    fast(panel, steps=150, images=3)
    panel.run.generate_button.click()
    assert panel.run.stop_button.disabled is False  # the click returned while the work goes on
    deadline = time.monotonic() + 60
    while not (panel.run.decoder_progress.description == "decoder 2/3" and panel.run.decoder_progress.value >= 2):
        assert time.monotonic() < deadline and panel.run.runner.busy, panel.run.status.value
        time.sleep(0.01)
    panel.run.stop_button.click()
    assert panel.run.wait(30)
    assert "stopped during the decoder" in panel.run.status.value
    assert "kept 1 finished image(s)" in panel.run.status.value
    assert len(panel.run.last_result.images) == 1
    fast(panel)  # the next generation works
    panel.run.generate_button.click()
    assert panel.run.wait(60) and panel.run.status.value.startswith("done")


def test_an_error_inside_generation_is_shown_in_the_panel(kit, monkeypatch):
    def broken(k, s, **kw):
        raise RuntimeError("the UNet caught fire")

    monkeypatch.setattr(TextToImagePanel, "task", staticmethod(broken))
    panel = TextToImagePanel(kit)
    panel.run.generate_button.click()
    assert panel.run.wait(30)
    assert "Error:</b> the UNet caught fire" in panel.run.status.value
    assert "RuntimeError: the UNet caught fire" in "".join(o.get("text", "") for o in panel.run.log.outputs)
    assert panel.run.generate_button.disabled is False


def test_a_bad_setting_is_shown_before_anything_runs(kit):
    panel = TextToImagePanel(kit)
    panel.prompt.value = "   "
    panel.run.generate_button.click()
    assert not panel.run.runner.busy
    assert "prompt must be a non-empty text" in panel.run.status.value


def test_unlocked_seed_rolls_and_shows_the_seed_used(kit):
    panel = TextToImagePanel(kit)
    fast(panel)
    panel.sampling.seed.lock.value = False
    panel.run.generate_button.click()
    panel.run.wait(60)
    used = panel.run.last_result.settings.seed
    assert panel.sampling.seed.seed.value == used
    panel.run.generate_button.click()
    panel.run.wait(60)
    assert panel.run.last_result.settings.seed != used


def test_size_picker_offers_only_valid_sizes(kit):
    options = size_options(768, 64)
    assert ("768 × 768 (1:1)", (768, 768)) in options and ("512 × 512 (1:1)", (512, 512)) in options
    assert all(h % 64 == 0 and w % 64 == 0 for _, (h, w) in options)
    panel = TextToImagePanel(kit)
    assert all(h % kit.size_multiple == 0 and w % kit.size_multiple == 0 for _, (h, w) in panel.sampling.size.dropdown.options)
    assert panel.sampling.size.value == (kit.default_size, kit.default_size)


@pytest.mark.parametrize("default, multiple", [(768, 64), (64, 16)])
def test_size_menu_labels_only_true_ratios_in_size_order(default, multiple):
    options = size_options(default, multiple)
    areas = [h * w for _, (h, w) in options]
    assert areas == sorted(areas)
    for label, (h, w) in options:
        ratio = label.split("(")[1].rstrip(")")
        if ratio.startswith("≈"):
            a, b = map(int, ratio[2:].split(":"))
            assert w * b != h * a and abs(w / h - a / b) < 0.15 * a / b, label
        else:
            a, b = map(int, ratio.split(":"))
            assert w * b == h * a, label  # e.g. 80 × 48 is 5:3, not 4:3


def test_image_to_image_renders_at_the_models_size_and_says_why(kit):
    assert model_size(PIL.Image.new("RGB", (300, 200)), 768, 64) == (640, 960)  # the real model keeps the shape
    nano = kl.load("nano", device="cpu")
    panel = ImageToImagePanel(nano)
    dropdown = panel.sampling.size.dropdown
    panel.image_input.samples.value = kl.sample_names()[0]  # every sample is 256 × 256
    assert dropdown.value == MODEL_SIZE
    assert panel.size_note.value.startswith("renders 64 × 64 px: <span class='kl-size-reason'>nano was trained on 64 × 64")
    panel.image_input.set_image(PIL.Image.new("RGB", (300, 200)))
    assert panel.size_note.value.startswith("renders 64 × 64 px")  # nano knows one square size only
    assert panel.settings().height is None
    dropdown.value = (48, 32)
    dropdown.value = INPUT_SIZE  # back to an automatic choice: the menu shows it, not a blank
    assert dropdown.index is not None and dropdown.label == "size of the input image"
    assert (panel.settings().height, panel.settings().width) == (208, 304)
    assert "the start image's 300 × 200" in html.unescape(panel.size_note.value)
    dropdown.value = MODEL_SIZE
    assert dropdown.index == 0 and dropdown.label.startswith("the model's size")
    panel.set_settings(dataclasses.replace(panel.settings(), height=None, width=None))
    assert dropdown.value == MODEL_SIZE


def test_image_to_image_panel_with_an_upload_in_either_ipywidgets_format(kit):
    panel = ImageToImagePanel(kit)
    fast(panel, steps=10)
    picture = PIL.Image.new("RGBA", (90, 60), (255, 0, 0, 128))
    v8 = ({"name": "red.png", "type": "image/png", "size": 1, "content": memoryview(png(picture))},)
    v7 = {"red.png": {"metadata": {"name": "red.png"}, "content": png(picture)}}
    assert uploaded_files(v8) == uploaded_files(v7) == [("red.png", png(picture))]
    panel.image_input._on_upload({"new": v8})
    assert panel.image_input.image.mode == "RGB" and "uploaded red.png" in panel.image_input.note.value
    assert panel.size_note.value.startswith("renders 80 × 52 px: ")  # the model's 64² pixels at the upload's shape
    panel.sampling.size.dropdown.value = INPUT_SIZE
    assert panel.size_note.value.startswith("renders 92 × 60 px: ")
    panel.run.generate_button.click()
    assert panel.run.wait(60)
    assert panel.run.last_result.images[0].size == (92, 60)
    assert "resized the image from 90x60 to 92x60" in panel.run.status.value


def test_a_file_that_is_no_image_is_refused_in_the_input(kit):
    panel = ImageToImagePanel(kit)
    panel.image_input._on_upload({"new": ({"name": "notes.txt", "content": memoryview(b"hello")},)})
    assert panel.image_input.image is None and "notes.txt is not an image" in panel.image_input.note.value
    panel.image_input.url.value = "file:///etc/passwd"
    panel.image_input.url_button.click()
    assert "only http:// and https:// URLs" in panel.image_input.note.value
    panel.run.generate_button.click()
    assert "Error:</b> choose or upload a start image" in panel.run.status.value


def test_an_unreachable_url_says_what_failed(kit):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    port = listener.getsockname()[1]
    with pytest.raises(ValueError, match=r"could not download .*: no answer within 0.5 s$"):
        fetch_image(f"http://127.0.0.1:{port}/a.png", timeout=0.5)
    listener.close()  # now nothing listens there
    panel = ImageToImagePanel(kit)
    panel.image_input.url.value = f"http://127.0.0.1:{port}/a.png"
    panel.image_input.url_button.click()
    note = html.unescape(re.sub("<[^>]+>", "", panel.image_input.note.value))
    assert re.fullmatch(rf"could not download http://127.0.0.1:{port}/a.png: .*refused", note), note


def test_an_error_clears_the_last_result_preview_and_progress(kit, monkeypatch):
    panel = TextToImagePanel(kit)
    fast(panel, steps=5)
    panel.run.generate_button.click()
    assert panel.run.wait(60) and panel.run.result_image.layout.display is None
    panel.prompt.value = ""  # refused before anything runs
    panel.run.generate_button.click()
    assert "Error:" in panel.run.status.value
    run = panel.run
    assert run.result_image.layout.display == "none" and run.preview_box.layout.display == "none"
    assert run.prior_progress.value == 0 and run.decoder_progress.value == 0
    panel.prompt.value = "a red circle"
    panel.run.generate_button.click()
    assert panel.run.wait(60) and panel.run.result_image.layout.display is None

    def broken(k, s, on_step, **kw):  # fails half way, after a preview was shown
        for step in (1, 2, 3, 4, 5):
            on_step(StepEvent("decoder", step, 10, 999, torch.zeros(1, 4, 8, 8), 1, 1))
        raise RuntimeError("the UNet caught fire")

    monkeypatch.setattr(TextToImagePanel, "task", staticmethod(broken))
    panel.run.generate_button.click()
    assert panel.run.wait(60) and "the UNet caught fire" in panel.run.status.value
    assert run.result_image.layout.display == "none" and run.preview_box.layout.display == "none"
    assert run.decoder_progress.value == 0


def test_live_preview_has_the_results_colours_and_shape_and_gives_way_to_it():
    nano = kl.load("nano", device="cpu")
    panel = TextToImagePanel(nano)
    panel.prompt.value = "a large blue star on a yellow background"
    panel.sampling.prior_steps.value, panel.sampling.steps.value = 10, 10
    panel.sampling.size.set(48, 80)  # landscape
    previews, labels = [], []
    panel.run.preview.observe(lambda change: previews.append(change["new"]), names="value")
    panel.run.preview_label.observe(lambda change: labels.append(change["new"]), names="value")
    panel.run.generate_button.click()
    assert panel.run.wait(120) and panel.run.status.value.startswith("done")
    assert len(previews) == 2 and "preview</i> · decoder step 10/10" in labels[-1]  # at steps 5 and 10, labelled
    assert panel.run.preview_box.layout.display == "none" and panel.run.result_image.layout.display is None
    preview, result = PIL.Image.open(io.BytesIO(previews[-1])), panel.run.last_result.images[0]
    assert preview.size == (20, 12)  # the latents' own size: the browser enlarges it ...
    layout = panel.run.preview.layout
    assert (layout.width, layout.height) == ("240px", "144px")  # ... to 80 × 48 shown 3× larger, as the result grid shows it
    assert preview.width * result.height == preview.height * result.width
    assert "80 × 48 px, shown 3× larger" in labels[-1]
    assert shown(panel.run.result_image).width == 240 + 2 * 4  # the result's one cell: as wide as the preview, with its padding
    mean = lambda im: np.asarray(im.convert("RGB"), dtype=float).reshape(-1, 3).mean(0)
    assert np.abs(mean(preview) - mean(result)).max() < 30, (mean(preview), mean(result))  # yellow, not light blue
    assert mean(result)[0] > 150 and mean(result)[2] < 120  # the picture is mostly yellow


def test_interpolation_panel_edits_items_and_weights(kit):
    panel = InterpolationPanel(kit)
    fast(panel)
    panel.new_text.value = "a blue star"
    panel.add_text_button.click()
    panel.image_input.samples.value = "swirls"
    panel.add_image_button.click()
    assert len(panel.items) == 4
    panel.items[0][1].value = 0.0
    panel.items[3][1].value = 1.0
    assert "sum of weights: <b>2.00</b>" in panel.weight_sum.value
    panel.rows.children[1].children[-1].click()  # remove "a yellow square"
    s = panel.settings()
    assert s.items[:2] == ("a red circle", "a blue star") and isinstance(s.items[2], PIL.Image.Image)
    assert s.weights == (0.0, 0.5, 1.0) and s.mode == "slerp" and s.normalize_weights
    panel.run.generate_button.click()
    assert panel.run.wait(60) and panel.run.status.value.startswith("done")
    for weight in panel.items:
        weight[1].value = 0.0
    assert "all zero" in panel.weight_sum.value
    panel.run.generate_button.click()
    assert "weights must not all be zero" in panel.run.status.value


def test_playground_gallery_restores_settings_and_sends_images(kit, tmp_path):
    play = Playground(kit, output_dir=tmp_path)
    t2i = play.text_to_image
    fast(t2i, images=2)
    t2i.prompt.value = "a green triangle on a white background with a long tail of words"
    t2i.sampling.seed.seed.value = 7
    t2i.run.generate_button.click()
    assert t2i.run.wait(60)
    assert len(play.gallery.entries) == 2 and len(play.gallery.grid.children) == 2
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(names) == 2 and names[0].startswith("00001-a-green-triangle")
    made = t2i.run.last_result.settings
    t2i.prompt.value, t2i.sampling.seed.seed.value = "something else", 99
    play.tabs.selected_index = 2
    newest = play.gallery.grid.children[0]
    label = newest.children[1].value
    assert "#2 · seed 8" in label and "text → image" in label
    assert "a green triangle on a white background …" in label  # shortened at a word boundary
    newest.children[2].children[0].click()  # "restore" on the newest card: the second picture of the batch
    assert play.tabs.selected_index == 0
    assert t2i.settings() == dataclasses.replace(made, num_images=1, seed=8)  # that picture's own seeds, one image
    t2i.run.generate_button.click()
    assert t2i.run.wait(60)
    assert np.array_equal(np.asarray(t2i.run.last_result.images[0]), np.asarray(play.gallery.images[1]))  # the same picture again
    newest.children[2].children[1].click()  # "→ i2i"
    assert play.tabs.selected_index == 1
    sent = play.image_to_image.image_input.image
    assert np.array_equal(np.asarray(sent), np.asarray(play.gallery.images[1]))
    assert play.interpolation.image_input.gallery.options[-1] == ("#3", 2)
    # After a kernel restart: a new playground on the same folder shows the saved pictures again.
    again = Playground(kit, output_dir=tmp_path)
    assert len(again.gallery.entries) == 3 and [e.seed for e in again.gallery.entries] == [7, 8, 8]
    again.gallery.restore(1)
    assert again.text_to_image.settings() == dataclasses.replace(made, num_images=1, seed=8)
    assert np.array_equal(np.asarray(again.gallery.images[1]), np.asarray(play.gallery.images[1]))


def test_reloaded_gallery_restores_image_inputs_it_can_find_and_says_why_not(kit, tmp_path):
    play = Playground(kit, output_dir=tmp_path)
    i2i = play.image_to_image
    fast(i2i, steps=10)
    i2i.image_input.samples.value = "swirls"  # a sample: found again after a restart
    i2i.run.generate_button.click()
    assert i2i.run.wait(60)
    i2i.image_input.set_image(PIL.Image.new("RGB", (40, 40), "teal"), "uploaded")  # an upload: gone after a restart
    i2i.run.generate_button.click()
    assert i2i.run.wait(60)
    mix = play.interpolation
    fast(mix)
    mix.run.generate_button.click()
    assert mix.run.wait(60)
    again = Playground(kit, output_dir=tmp_path)
    sample_card, upload_card, mix_card = [again.gallery._card(n) for n in range(3)]
    assert sample_card.children[2].children[0].disabled is False and "image → image" in sample_card.children[1].value
    assert mix_card.children[2].children[0].disabled is False and "interpolation" in mix_card.children[1].value
    restore = upload_card.children[2].children[0]
    assert restore.disabled and "40x40 input image that is not in the gallery or the samples" in restore.tooltip
    assert "cannot restore" in upload_card.children[-1].value  # said on the card, not only in a tooltip
    again.gallery.restore(0)
    assert again.tabs.selected_index == 1 and again.image_to_image.image_input.image is not None


def test_the_core_package_never_imports_ipywidgets():
    code = "import sys, kandinsky_lab as kl; kl.load('tiny'); print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_widget_tests_pass_with_colabs_ipywidgets_7():
    """Run this file (and the other panels' widget tests) again with ipywidgets 7.7 (installed by `make` into .venv/ipywidgets7) first on the path."""
    root = Path(__file__).resolve().parents[1]
    target = Path(sys.prefix) / "ipywidgets7"
    assert (target / "ipywidgets").is_dir(), "run `make env` to install ipywidgets 7.7 beside the venv"
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = "import ipywidgets, sys; sys.exit(0 if ipywidgets.__version__.startswith('7.7') else 1)"
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
    files = [str(Path(__file__).with_name(name)) for name in ("test_widgets.py", "test_inpaint_widgets.py", "test_controlnet_widgets.py")]
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files, "-k", "not ipywidgets_7"]
    out = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]


def test_each_app_visitor_gets_a_folder_and_a_gallery_of_their_own(tmp_path):
    """make app serves app/playground.ipynb: every page load (a kernel) calls visitor_app anew."""
    from kandinsky_lab.widgets import visitor_app

    nano = kl.load("nano")
    first = visitor_app(nano, tmp_path)
    assert "nano is a miniature Kandinsky 2.2: it draws one circle, square, triangle or star" in first.children[0].value
    panel = first.playground.text_to_image
    panel.sampling.steps.value, panel.sampling.prior_steps.value = 2, 2
    panel.run.generate_button.click()
    assert panel.run.wait(60) and panel.run.status.value.startswith("done")
    assert len(list(first.output_dir.glob("*.png"))) == 1 and len(first.playground.gallery.images) == 1
    second = visitor_app(nano, tmp_path)  # a visitor arriving after the first made a picture
    assert second.output_dir != first.output_dir and second.output_dir.parent == tmp_path
    assert second.playground.gallery.images == [] and not second.output_dir.exists()


@pytest.mark.slow
def test_the_visitors_benchmark_drives_the_app_page_as_voila_runs_it(tmp_path, monkeypatch):
    """benchmarks.visitors --kernels runs app/playground.ipynb's code and presses Generate through the widget:
    the same code, in-process here, must give a page whose run ends with a picture in this visitor's gallery."""
    from benchmarks import visitors

    monkeypatch.setenv("KANDINSKY_LAB_SOURCE", "nano")
    monkeypatch.chdir(tmp_path)
    code = visitors.page_code()
    assert code.splitlines()[-1] == "_app = visitor_app(kl.load())"
    page: dict = {}
    exec(code, page)
    exec("_app.playground.text_to_image.sampling.seed.lock.value = False\n_app.playground.text_to_image.sampling.steps.value = 5", page)
    seeds = []
    for _ in range(2):
        exec(visitors.CLICK, page)
        assert page["_status"].startswith("done") and page["_took"] > 0, page["_status"]
        seeds.append(page["_app"].playground.text_to_image.sampling.seed.seed.value)  # the seed this run used
    assert len(page["_app"].playground.gallery.grid.children) == 2 and seeds[0] != seeds[1]  # a new seed each time


def test_gallery_cards_send_small_pictures_and_encode_each_once(monkeypatch):
    """A 768² picture is sent as a 256² thumbnail (not whole), a 64² one enlarged with its pixels kept, and a new
    picture does not re-encode the cards already shown (every card is redrawn on each new picture)."""
    from kandinsky_lab.widgets import gallery

    large, small = PIL.Image.new("RGB", (768, 512), "red"), PIL.Image.new("RGB", (64, 64), "blue")
    assert gallery.thumbnail(large).size == (256, 171) and gallery.thumbnail(small).size == (128, 128)
    encoded = []
    monkeypatch.setattr(gallery, "png_bytes", lambda image: encoded.append(image.size) or b"png")
    shelf = gallery.HistoryGallery()
    shelf.entries.append(gallery.Entry(large, None, 0))
    shelf._redraw()
    shelf.entries.append(gallery.Entry(small, None, 1))
    shelf._redraw()
    assert encoded == [(256, 171), (128, 128)]
