"""Grids and X/Y sweeps: labels, shapes, shared prior work and seed batching."""

import numpy as np
import PIL.Image
import pytest
import torch

import kandinsky_lab as kl

from .conftest import FAST


def test_grid_places_cells_and_labels():
    red, blue = PIL.Image.new("RGB", (64, 64), "red"), PIL.Image.new("RGB", (64, 64), "blue")
    grid = kl.image_grid([[red, blue], [blue, None]], row_labels=["r0", "r1"], col_labels=["c0", "c1"], title="t")
    assert grid.mode == "RGB"
    px = np.asarray(grid)
    # Cells are enlarged to 128 px; the four cells hold red, blue, blue and the grey of a missing cell.
    reds = (px[..., 0] == 255) & (px[..., 1] == 0) & (px[..., 2] == 0)
    blues = (px[..., 0] == 0) & (px[..., 1] == 0) & (px[..., 2] == 255)
    greys = (px == 200).all(-1)[np.argmax(reds.any(1)) :, np.argmax(reds.any(0)) :]  # in the cells (antialiased labels have greys too)
    assert reds.sum() == 128 * 128 and blues.sum() == 2 * 128 * 128 and greys.sum() == 128 * 128
    # Labels leave ink (dark pixels) outside the cells: above the columns and left of the rows.
    ink = px.sum(-1) < 200
    assert ink[:, : np.argmax(reds.any(0))].any() and ink[: np.argmax(reds.any(1))].any()


def test_grid_refuses_mismatched_labels():
    im = PIL.Image.new("RGB", (8, 8))
    with pytest.raises(ValueError, match="col_labels has 1 labels for 2 cols"):
        kl.image_grid([[im, im]], col_labels=["a"])


def test_decoder_sweep_runs_the_prior_once(fresh_kit):
    s = kl.TextToImage(prompt="a red circle", **FAST)
    sw = kl.sweep(fresh_kit, s, x=("guidance_scale", [1.0, 4.0, 8.0]), y=("steps", [2, 3, 4]), title="guidance x steps")
    assert sw.prior_runs == 1 and fresh_kit.prior_runs == 1
    assert sw.decoder_calls == 9
    assert [[c.result.settings.guidance_scale for c in row] for row in sw.cells] == [[1.0, 4.0, 8.0]] * 3
    assert [row[0].result.settings.steps for row in sw.cells] == [2, 3, 4]
    assert sw.grid.size[0] > 3 * 128 and sw.grid.size[1] > 3 * 128


def test_seed_axis_is_batched_and_matches_a_batched_run(fresh_kit):
    s = kl.TextToImage(prompt="a", **FAST)
    sw = kl.sweep(fresh_kit, s, x=("seed", [0, 1, 2, 3]), y=("guidance_scale", [1.0, 4.0]))
    assert sw.decoder_calls == 2  # one batched decoder call per row
    assert fresh_kit.prior_runs == 4  # one prior run per seed, shared by both rows
    batch = kl.text_to_image(fresh_kit, kl.TextToImage(prompt="a", num_images=4, guidance_scale=4.0, **FAST))
    for cell, image in zip(sw.cells[1], batch.images):
        assert np.array_equal(np.asarray(cell.image), np.asarray(image))


def test_strength_by_seed_and_weight_by_seed_sweeps(kit):
    img = PIL.Image.new("RGB", (64, 64), "green")
    sw = kl.sweep(kit, kl.ImageToImage(prompt="a", image=img, **FAST), x=("strength", [0.4, 0.8]), y=("seed", [0, 1]))
    assert [[c.result.settings.strength for c in row] for row in sw.cells] == [[0.4, 0.8], [0.4, 0.8]]
    mix = kl.Interpolation(items=("a cat", img), weights=(1, 0), **FAST)
    sw = kl.sweep(kit, mix, x=("weights", [(1, 0), (0.5, 0.5), (0, 1)]), y=("seed", [0, 1]))
    assert sw.grid is not None and len(sw.cells) == 2 and len(sw.cells[0]) == 3


def test_stopped_sweep_keeps_the_finished_cells(fresh_kit):
    stop = kl.StopSignal()
    done = []

    def on_step(e):
        if e.stage == "decoder" and e.step == e.total:
            done.append(e)
            if len(done) == 2:
                stop.set()

    sw = kl.sweep(fresh_kit, kl.TextToImage(prompt="a", **FAST), x=("steps", [2, 3, 4]), on_step=on_step, stop=stop)
    assert sw.interrupted is not None
    assert [c is not None for c in sw.cells[0]] == [True, False, False]


def test_unknown_or_repeated_axes_are_refused(kit):
    s = kl.TextToImage(prompt="a", **FAST)
    with pytest.raises(ValueError, match="cannot sweep 'cfg'"):
        kl.sweep(kit, s, x=("cfg", [1, 2]))
    with pytest.raises(ValueError, match="x and y both sweep 'steps'"):
        kl.sweep(kit, s, x=("steps", [2]), y=("steps", [3]))


def test_triangle_weights_cover_the_simplex():
    rows = kl.triangle_weights(4)
    assert [len(r) for r in rows] == [1, 2, 3, 4]
    assert rows[0] == [(1.0, 0.0, 0.0)] and rows[-1][0] == (0.0, 1.0, 0.0) and rows[-1][-1] == (0.0, 0.0, 1.0)
    assert all(abs(sum(w) - 1) < 1e-9 and min(w) >= 0 for row in rows for w in row)


def test_mixing_triangle_runs_each_point_once(fresh_kit):
    s = kl.Interpolation(items=("a cat", kl.sample("swirls"), kl.sample("red circle")), weights=(1, 1, 1), **FAST)
    tri = kl.triangle(fresh_kit, s, n=3)
    assert tri.decoder_calls == 6 and tri.prior_runs == 1
    assert [[c.result.settings.weights for c in row] for row in tri.cells] == kl.triangle_weights(3)


def test_inside_the_decoder_reproduces_the_pipeline(kit):
    s = kl.TextToImage(prompt="a red circle", prior_steps=2, steps=6, seed=3)
    result = kl.text_to_image(kit, s)
    record = kl.denoising_steps(kit, result.embeddings, 64, 64, steps=6, seed=3)
    assert [r.step for r in record] == [1, 2, 3, 4, 5, 6]
    assert np.array_equal(np.asarray(kl.final_picture(kit, record)), np.asarray(result.images[0]))
    strip = kl.denoising_strip(kit, record, every=3)
    assert strip.width > 3 * 128 and strip.height > 2 * 128


def test_clip_view_and_latent_channels(kit):
    assert kl.clip_view(kit, kl.sample("sketch").resize((300, 200))).size == (224, 224)
    assert kl.latent_channels(kit, kl.sample("sketch")).width > 4 * 128
    sims = kl.similarity(torch.randn(3, 8))
    assert sims.shape == (3, 3) and torch.allclose(sims.diagonal(), torch.ones(3))


def test_labels_keep_every_character_and_words_whole():
    from PIL import ImageDraw, ImageFont

    from kandinsky_lab.grids import _fit, _font, drawable

    bare = ImageFont.load_default(size=16)  # Pillow's own font has no arrow
    assert drawable("text → image", bare) == "text -> image"
    assert drawable("text → image", _font(16)) in ("text → image", "text -> image")
    draw = ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))
    prompt = "a large blue star on a yellow background"
    shortened = _fit(prompt, draw, _font(16), 150)
    assert shortened.endswith("…") and prompt.startswith(shortened[:-1]) and prompt[len(shortened) - 1] == " "


def test_long_labels_show_what_differs_and_small_pictures_are_enlarged():
    from kandinsky_lab.grids import differing, enlargement

    prompts = ["a red circle on a white background", "a red circle on a black background"]
    assert differing(prompts) == ["… white …", "… black …"]
    assert differing(["seed 1", "seed 1"]) == ["seed 1", "seed 1"]  # nothing tells them apart: left alone
    tiny = PIL.Image.new("RGB", (64, 32), "red")
    assert enlargement(64, 32) == 4 and enlargement(768, 768) == 1
    grid = kl.image_grid([[tiny]], row_labels=prompts[:1])
    assert grid.height > 4 * 32  # the 32-pixel-high picture is shown 4× larger, under a title saying so


def test_a_narrow_grid_shrinks_then_wraps_its_title_and_never_cuts_it():
    """Notebook 08's two-picture rows read "64 × 64 px shown 2×…" (the title cut); wrapped instead, a one-picture
    result in the app then carried it on three lines of the labels' large font above a 128-pixel picture."""
    from PIL import ImageDraw

    from kandinsky_lab.grids import _font, title_lines

    draw, title = ImageDraw.Draw(PIL.Image.new("RGB", (1, 1))), "64 × 64 px shown 2× larger"
    font, lines = title_lines(title, draw, _font(21), 128)  # over one enlarged 64-pixel picture
    assert font.size == 12 and len(lines) == 2 and " ".join(lines) == title  # smaller first, then wrapped, every word kept
    font, lines = title_lines(title, draw, _font(21), 256)  # over two
    assert lines == [title] and 12 < font.size < 21
    font, lines = title_lines(title, draw, _font(21), 128, fixed=True)  # a font size the caller chose is kept
    assert font.size == 21 and len(lines) > 2 and " ".join(lines) == title
    small = PIL.Image.new("RGB", (64, 64), "red")
    one, four = kl.image_row([small], labels=["seed 0"]), kl.image_row([small] * 4, labels=list("abcd"))
    assert one.height - four.height < 20  # the one-picture title costs about a line more, not three


def test_an_empty_text_is_labelled_as_none_not_left_blank():
    """Notebook 01's seed grid had a row labelled "negative_prompt=", which reads like a cut label."""
    assert kl.sweeps.label("negative_prompt", "") == "negative_prompt=(none)"
    assert kl.sweeps.label("negative_prompt", "a small star").endswith("=a small star")


def test_guidance_grid_has_a_row_per_scale_from_the_same_noise(kit):
    result = kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", prior_steps=2, steps=4))
    grid = kl.guidance_grid(kit, result.embeddings, *result.size, steps=4, scales=(1.0, 4.0), every=2)
    one = kl.guidance_grid(kit, result.embeddings, *result.size, steps=4, scales=(1.0,), every=2)
    assert grid.height > one.height and grid.width == one.width  # a row per scale, the same columns
