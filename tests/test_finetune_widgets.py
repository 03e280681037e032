"""The playground's fine-tuning tab (kandinsky_lab/widgets/finetune_panel.py), headless, on nano."""

import io
import types

import PIL.Image
import pytest

import kandinsky_lab as kl
from kandinsky_lab import world
from kandinsky_lab.widgets import FineTunePanel, Playground


@pytest.fixture(scope="module")
def nano():
    return kl.load("nano", device="cpu")


def png(picture) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def test_the_tab_trains_on_the_example_then_every_tab_draws_with_the_adapter(nano, tmp_path):
    app = Playground(nano, output_dir=tmp_path)
    panel = app.finetune
    assert app.tabs.get_title(6) == "fine-tuning" and app.tabs.children[6] is panel.widget  # one widget, however often shown
    panel.example_button.click()
    assert len(panel.pictures) == 12 and len(panel.strip.children) == 12 and panel.count.value == "12 pictures, 12 captions"
    assert all("heart" in line for line in panel.caption_lines())
    panel.steps.value, panel.rank.value = 10, 2
    panel.train_button.click()
    assert panel.wait(120)
    assert panel.status.value.startswith("trained 10 steps in ") and "the words it learned: heart" in panel.status.value
    assert panel.training.folder.parent == tmp_path / "adapters" and (panel.training.folder / "adapter.json").exists()
    assert panel.curve.value and panel.curve.layout.display is None and panel.progress.value == 10
    assert not panel.use.disabled and nano.adapter is None  # trained, not yet drawn with
    panel.use.value = True
    assert nano.adapter is not None and nano.adapter.scale == 1.0 and "every tab draws with heart" in panel.status.value
    panel.scale.value = 0.5
    assert nano.adapter.scale == 0.5
    t2i = app.text_to_image
    t2i.sampling.prior_steps.value, t2i.sampling.steps.value = 2, 3
    t2i.run.generate_button.click()
    assert t2i.run.wait(60)
    assert t2i.run.last_result.adapter["digest"] == nano.adapter.digest and t2i.run.last_result.adapter["scale"] == 0.5
    assert "with the adapter heart at scale 0.5" in t2i.run.status.value  # the tab says what it drew with
    panel.use.value = False
    assert nano.adapter is None and panel.status.value == "every tab draws with the base model"


def test_bad_input_is_said_in_the_status_and_nothing_trains(nano):
    panel = FineTunePanel(nano)
    panel.train_button.click()
    assert "pictures is empty" in panel.status.value and panel.training is None and not panel.runner.busy
    panel.example_button.click()
    panel.captions.value = "\n".join(panel.caption_lines()[:11])
    assert "12 pictures, 11 captions" in panel.count.value and "give one caption per picture" in panel.count.value
    panel.train_button.click()
    assert "12 pictures but 11 captions" in panel.status.value and not panel.runner.busy


def test_gallery_pictures_and_uploads_are_added_and_a_non_picture_is_refused(nano):
    panel = FineTunePanel(nano)
    pictures, _ = world.taught("heart", 3)
    panel.set_gallery(pictures)
    assert [label for label, _ in panel.gallery.options] == ["#1", "#2", "#3"]
    panel.gallery.value = (0, 2)
    panel.add_button.click()
    assert panel.pictures == [pictures[0], pictures[2]] and panel.gallery.value == ()
    upload = ({"name": "heart.png", "type": "image/png", "size": 1, "content": memoryview(png(pictures[1]))},
              {"name": "notes.txt", "type": "text/plain", "size": 5, "content": memoryview(b"hello")})  # fmt: skip
    panel._on_upload({"new": upload})
    assert len(panel.pictures) == 3 and panel.pictures[2].size == (64, 64)
    assert "notes.txt is not an image" in panel.status.value
    panel.clear_button.click()
    assert panel.pictures == [] and panel.strip.children == ()


def test_stop_keeps_the_adapter_of_the_last_step(nano):
    panel = FineTunePanel(nano)
    panel.example_button.click()
    panel.steps.value = 2000
    panel.train_button.click()
    panel.stop_button.click()
    assert panel.wait(120)
    run = panel.training
    assert run.interrupted and run.steps < 2000
    if run.folder is None:
        assert panel.status.value.startswith("stopped before the first step")
    else:
        assert panel.status.value.startswith(f"stopped at step {run.saved_step} in ") and not panel.use.disabled


def test_a_room_client_cannot_train_here_and_the_tab_says_so():
    client = types.SimpleNamespace(trains_here=False, vocabulary=None, adapter=None)  # what the panel reads of a RemoteKit
    panel = FineTunePanel(client)
    assert panel.train_button.disabled and "train in a notebook on kl.load()" in panel.status.value
    assert panel.example_button.layout.display == "none"
