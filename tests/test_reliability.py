"""Reliability: bad input at the kit's boundary, user images and URLs, simulated GPU out-of-memory.

Every case of BAD_INPUTS asserts the error type and message, and then that the *same* loaded model
still generates. docs/reliability.md is generated from these lists:
`python -m tests.test_reliability > docs/reliability.md` (a test checks that it is current).
"""

import dataclasses
import http.server
import io
import math
import threading
import time
from pathlib import Path

import PIL.Image
import pytest
import torch
from hypothesis import given, settings as hyp_settings, strategies as st

import kandinsky_lab as kl
from kandinsky_lab import images, memory

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(prior_steps=2, steps=2)
T, I, X = kl.TextToImage, kl.ImageToImage, kl.Interpolation
RED = PIL.Image.new("RGB", (64, 64), "red")


def png(image: PIL.Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


# (case id, what is wrong, call(kit, tmp_path), error type, message pattern)
BAD_INPUTS = [
    ("empty-prompt", "an empty prompt", lambda k, t: kl.text_to_image(k, T(prompt="")), ValueError, "prompt must be a non-empty text"),
    ("blank-prompt", "a prompt of spaces", lambda k, t: kl.text_to_image(k, T(prompt="   ")), ValueError, "prompt must be a non-empty text"),
    ("prompt-not-text", "a number as the prompt", lambda k, t: kl.text_to_image(k, T(prompt=123)), ValueError, "prompt must be a non-empty text"),
    ("negative-not-text", "None as the negative prompt", lambda k, t: kl.text_to_image(k, T(prompt="a", negative_prompt=None)), ValueError, "negative_prompt must be a text"),
    ("prior-steps-1", "one prior step", lambda k, t: kl.text_to_image(k, T(prompt="a", prior_steps=1)), ValueError, "prior_steps must be a whole number from 2 to 1000, got 1"),
    ("prior-steps-huge", "more prior steps than training timesteps", lambda k, t: kl.text_to_image(k, T(prompt="a", prior_steps=1001)), ValueError, "prior_steps must be a whole number from 2 to 1000"),
    ("steps-0", "zero decoder steps", lambda k, t: kl.text_to_image(k, T(prompt="a", steps=0)), ValueError, "steps must be a whole number from 1 to 1000, got 0"),
    ("steps-fraction", "2.5 decoder steps", lambda k, t: kl.text_to_image(k, T(prompt="a", steps=2.5)), ValueError, "steps must be a whole number from 1 to 1000, got 2.5"),
    ("steps-bool", "True as the step count", lambda k, t: kl.text_to_image(k, T(prompt="a", steps=True)), ValueError, "steps must be a whole number"),
    ("images-0", "zero images", lambda k, t: kl.text_to_image(k, T(prompt="a", num_images=0)), ValueError, "num_images must be a whole number from 1 to 64"),
    ("images-65", "65 images in one call", lambda k, t: kl.text_to_image(k, T(prompt="a", num_images=65)), ValueError, "num_images must be a whole number from 1 to 64"),
    ("guidance-negative", "guidance -1", lambda k, t: kl.text_to_image(k, T(prompt="a", guidance_scale=-1.0)), ValueError, "guidance_scale must be a number from 0 to 100, got -1.0"),
    ("guidance-nan", "guidance NaN", lambda k, t: kl.text_to_image(k, T(prompt="a", guidance_scale=math.nan)), ValueError, "guidance_scale must be a number from 0 to 100, got nan"),
    ("guidance-inf", "guidance infinity", lambda k, t: kl.text_to_image(k, T(prompt="a", guidance_scale=math.inf)), ValueError, "guidance_scale must be a number from 0 to 100, got inf"),
    ("prior-guidance-huge", "prior guidance 101", lambda k, t: kl.text_to_image(k, T(prompt="a", prior_guidance_scale=101.0)), ValueError, "prior_guidance_scale must be a number from 0 to 100"),
    ("seed-negative", "seed -1", lambda k, t: kl.text_to_image(k, T(prompt="a", seed=-1)), ValueError, "seed must be a whole number from 0 to"),
    ("seed-too-big", "seed 2**63", lambda k, t: kl.text_to_image(k, T(prompt="a", seed=2**63)), ValueError, "seed must be a whole number from 0 to"),
    ("seed-text", "seed '7'", lambda k, t: kl.text_to_image(k, T(prompt="a", seed="7")), ValueError, "seed must be a whole number"),
    ("decoder-seed-negative", "decoder seed -5", lambda k, t: kl.text_to_image(k, T(prompt="a", decoder_seed=-5)), ValueError, "decoder_seed must be a whole number from 0 to"),
    ("size-off-rule", "height 65 (not a multiple)", lambda k, t: kl.text_to_image(k, T(prompt="a", height=65)), ValueError, "height=65 is not a multiple of 4: use 64 or 68"),
    ("size-too-small", "width 2", lambda k, t: kl.text_to_image(k, T(prompt="a", width=2)), ValueError, "width=2 is out of range: use 4 to 2048 pixels"),
    ("size-too-large", "height 4096", lambda k, t: kl.text_to_image(k, T(prompt="a", height=4096)), ValueError, "height=4096 is out of range: use 4 to 2048 pixels"),
    ("size-float", "height 64.0", lambda k, t: kl.text_to_image(k, T(prompt="a", height=64.0)), ValueError, "height must be a whole number of pixels or None"),
    ("batch-size-0", "batch_size 0", lambda k, t: kl.text_to_image(k, T(prompt="a", **FAST), batch_size=0), ValueError, "batch_size must be a whole number >= 1 or None"),
    ("i2i-no-image", "image→image without an image", lambda k, t: kl.image_to_image(k, I(prompt="a")), ValueError, "image must be a PIL image, got NoneType"),
    ("i2i-bytes-image", "raw bytes as the image", lambda k, t: kl.image_to_image(k, I(prompt="a", image=b"\x89PNG")), ValueError, "image must be a PIL image, got bytes"),
    ("strength-0", "strength 0", lambda k, t: kl.image_to_image(k, I(prompt="a", image=RED, strength=0.0)), ValueError, r"strength must be in \(0, 1\], got 0.0"),
    ("strength-1.5", "strength 1.5", lambda k, t: kl.image_to_image(k, I(prompt="a", image=RED, strength=1.5)), ValueError, r"strength must be in \(0, 1\], got 1.5"),
    ("strength-no-steps", "steps x strength below one step", lambda k, t: kl.image_to_image(k, I(prompt="a", image=RED, steps=2, strength=0.3)), ValueError, r"steps \* strength must be >= 1"),
    ("mix-no-items", "an empty mix", lambda k, t: kl.interpolate(k, X()), ValueError, "items must hold at least one prompt or image"),
    ("mix-length-mismatch", "3 items, 2 weights", lambda k, t: kl.interpolate(k, X(items=("a", "b", RED), weights=(1, 1))), ValueError, "items and weights must have the same length, got 3 and 2"),
    ("mix-all-zero", "all weights zero", lambda k, t: kl.interpolate(k, X(items=("a", "b"), weights=(0, 0))), ValueError, "weights must not all be zero"),
    ("mix-negative-weight", "a negative weight", lambda k, t: kl.interpolate(k, X(items=("a", "b"), weights=(1, -0.5))), ValueError, r"weights\[1\] must be a finite number >= 0, got -0.5"),
    ("mix-nan-weight", "a NaN weight", lambda k, t: kl.interpolate(k, X(items=("a", "b"), weights=(math.nan, 1))), ValueError, r"weights\[0\] must be a finite number >= 0, got nan"),
    ("mix-inf-weight", "an infinite weight", lambda k, t: kl.interpolate(k, X(items=("a", "b"), weights=(1, math.inf))), ValueError, r"weights\[1\] must be a finite number >= 0, got inf"),
    ("mix-bad-mode", "mode 'cubic'", lambda k, t: kl.interpolate(k, X(items=("a",), weights=(1,), mode="cubic")), ValueError, r"mode must be one of \('lerp', 'slerp'\), got 'cubic'"),
    ("mix-empty-text", "an empty prompt among the items", lambda k, t: kl.interpolate(k, X(items=("a", " "), weights=(1, 1))), ValueError, r"items\[1\] is an empty prompt"),
    ("mix-wrong-item", "a number among the items", lambda k, t: kl.interpolate(k, X(items=("a", 7), weights=(1, 1))), ValueError, r"items\[1\] must be a prompt or a PIL image, got int"),
    ("source-unknown", "an unknown model source", lambda k, t: kl.load("kandinsky-9"), kl.SourceError, "unknown model source 'kandinsky-9'"),
    ("source-empty-folder", "a folder without prior/ and decoder/", lambda k, t: kl.load(t), kl.SourceError, "missing prior/model_index.json, decoder/model_index.json"),
    ("source-corrupt-weights", "a model folder with a corrupt weights file", lambda k, t: corrupt_folder(k, t), kl.SourceError, "could not load the model from"),
    ("offload-unknown", "offload='everything'", lambda k, t: kl.load("tiny", offload="everything"), ValueError, "offload must be one of"),
    ("offload-on-cpu", "an offload preset on the CPU", lambda k, t: kl.load("tiny", device="cpu", offload="sequential"), ValueError, "on the CPU use offload=None"),
    ("dtype-int", "dtype torch.int8", lambda k, t: kl.load("tiny", device="cpu", dtype=torch.int8), ValueError, "dtype must be torch.float32"),
    ("upload-empty", "an empty upload", lambda k, t: images.open_image(b"", "upload.png"), ValueError, "upload.png is empty"),
    ("upload-text", "a text file as an image", lambda k, t: images.open_image(b"hello, world", "notes.txt"), ValueError, "notes.txt is not an image PIL can read"),
    ("upload-truncated", "a PNG cut in half", lambda k, t: images.open_image(png(RED)[:60], "half.png"), ValueError, "half.png is not an image PIL can read"),
    ("upload-bomb", "a decompression bomb (above PIL's pixel limit)", lambda k, t: bomb(), ValueError, "too large to open safely"),
    ("upload-too-many-pixels", "a picture over the kit's pixel limit (40 megapixels)", lambda k, t: huge(), ValueError, r"photo.png is 20 x 20 pixels: more than the \d+ megapixels accepted"),
    ("url-ftp", "an ftp:// URL", lambda k, t: images.fetch_image("ftp://127.0.0.1/a.png"), ValueError, "only http:// and https:// URLs can be loaded, not 'ftp'"),
    ("url-path", "a file path instead of a URL", lambda k, t: images.fetch_image("/etc/passwd"), ValueError, "only http:// and https:// URLs can be loaded, not a bare path"),
    ("url-404", "a URL that answers 404", lambda k, t: images.fetch_image(serve("/missing.png")), ValueError, "could not download .*404"),
    ("url-html", "a URL that answers a web page", lambda k, t: images.fetch_image(serve("/page.html")), ValueError, "page.html is not an image PIL can read"),
    ("url-too-big", "a download over the size cap", lambda k, t: images.fetch_image(serve("/red.png"), max_bytes=100), ValueError, "is larger than 0 MB"),
    ("url-timeout", "a server that does not answer in time", lambda k, t: images.fetch_image(serve("/slow.png"), timeout=0.5), ValueError, "could not download .*timed out"),
]  # fmt: skip


def corrupt_folder(kit, tmp):
    folder = kit.save(tmp / "model")
    (folder / "decoder" / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    return kl.load(folder, device="cpu")


def bomb():
    limit = PIL.Image.MAX_IMAGE_PIXELS
    PIL.Image.MAX_IMAGE_PIXELS = 1000  # PIL refuses pictures of more than twice this: a 100 x 100 stands in for a bomb
    try:
        return images.open_image(png(PIL.Image.new("L", (100, 100))), "bomb.png")
    finally:
        PIL.Image.MAX_IMAGE_PIXELS = limit


def huge():
    limit = images.MAX_PIXELS
    images.MAX_PIXELS = 100  # the same check as for a 7000 x 7000 photo, without the 200 MB of pixels
    try:
        return images.open_image(png(PIL.Image.new("RGB", (20, 20))), "photo.png")
    finally:
        images.MAX_PIXELS = limit


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow.png":
            time.sleep(2)
        if self.path in ("/red.png", "/slow.png"):
            body, kind = png(RED), "image/png"
        elif self.path == "/page.html":
            body, kind = b"<html><body>not a picture</body></html>", "text/html"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


_server = None


def serve(path: str) -> str:
    """A URL on a test HTTP server on 127.0.0.1 (started once, a daemon thread)."""
    global _server
    if _server is None:
        _server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        _server.daemon_threads = True
        threading.Thread(target=_server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{_server.server_address[1]}{path}"


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_clearly_and_the_model_still_works(kit, tmp_path, case):
    _, _, call, error_type, message = case
    with pytest.raises(error_type, match=message):
        call(kit, tmp_path)
    result = kl.text_to_image(kit, T(prompt="a red circle", **FAST))
    assert len(result.images) == 1 and result.images[0].size == (64, 64)


def test_there_are_at_least_40_bad_inputs():
    assert len(BAD_INPUTS) >= 40 and len({c[0] for c in BAD_INPUTS}) == len(BAD_INPUTS)


def _exif_rotated() -> bytes:
    im = PIL.Image.new("RGB", (40, 20), "red")
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    return png(im, format="JPEG", exif=exif)


def _animated() -> bytes:
    frames = [PIL.Image.new("RGB", (16, 16), colour) for colour in ("red", "lime", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def _palette_with_transparency() -> bytes:
    im = PIL.Image.new("P", (8, 8), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.info["transparency"] = 0
    return png(im, transparency=0)


# (case id, what it is, bytes, expected size, note pattern or None)
CONVERSIONS = [
    ("rgba", "RGBA with transparency", lambda: png(PIL.Image.new("RGBA", (8, 8), (255, 0, 0, 0))), (8, 8), "transparent parts on white"),
    ("la", "grey + alpha (LA)", lambda: png(PIL.Image.new("LA", (8, 8), (10, 128))), (8, 8), "transparent parts on white"),
    ("palette-transparent", "palette (P) with a transparent colour", _palette_with_transparency, (8, 8), "transparent parts on white"),
    ("cmyk", "CMYK (a print JPEG)", lambda: png(PIL.Image.new("CMYK", (8, 8), (0, 255, 255, 0)), format="JPEG"), (8, 8), "converted CMYK to RGB"),
    ("16-bit", "16-bit grey (I;16)", lambda: png(PIL.Image.new("I;16", (8, 8), 40000)), (8, 8), "scaled the I;16 image's values"),
    ("1-bit", "1-bit black and white", lambda: png(PIL.Image.new("1", (8, 8), 1)), (8, 8), "converted 1 to RGB"),
    ("grey", "8-bit grey (L)", lambda: png(PIL.Image.new("L", (8, 8), 77)), (8, 8), "converted L to RGB"),
    ("exif-rotated", "a JPEG photo with EXIF rotation", _exif_rotated, (20, 40), "rotated as its EXIF data says"),
    ("one-pixel", "a 1 x 1 picture", lambda: png(PIL.Image.new("RGB", (1, 1), "blue")), (1, 1), None),
    ("animated-gif", "an animated GIF", _animated, (16, 16), "used the first of 3 frames"),
]  # fmt: skip


@pytest.mark.parametrize("case", CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_every_kind_of_user_image_converts_and_says_what_was_done(kit, case):
    _, _, make, size, note = case
    image, said = images.open_image(make(), "in.png")
    assert image.mode == "RGB" and image.size == size
    if note is None:
        assert said is None
    else:
        assert said is not None and __import__("re").search(note, said), said
    result = kl.image_to_image(kit, I(prompt="a", image=image, strength=0.5, **FAST))  # and it can be used
    assert result.images[0].mode == "RGB"


def test_sixteen_bit_values_keep_their_contrast():
    im = PIL.Image.new("I;16", (2, 1))
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 65535)
    rgb, _ = images.open_image(png(im))
    assert rgb.getpixel((0, 0)) == (0, 0, 0) and rgb.getpixel((1, 0)) == (255, 255, 255)


def test_a_url_image_loads():
    image, note = images.fetch_image(serve("/red.png"))
    assert image.size == (64, 64) and image.getpixel((0, 0)) == (255, 0, 0) and note is None


def test_long_prompts_say_what_clip_will_not_read(kit):
    result = kl.text_to_image(kit, T(prompt="a red circle " + "very " * 80 + "END", **FAST))
    assert len(result.notes) == 1 and "CLIP reads 77, so it ignores" in result.notes[0] and "end" in result.notes[0]


@pytest.mark.parametrize("stage", ["prior", "decoder"])
def test_simulated_gpu_out_of_memory_is_explained_and_the_next_run_works(fresh_kit, monkeypatch, stage, tmp_path):
    module = fresh_kit.prior.prior if stage == "prior" else fresh_kit.decoder.unet

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    calls = {"n": 0}
    real = module.forward

    def second_batch_fails(*args, **kwargs):  # the decoder's first image finishes, the second runs out
        calls["n"] += 1
        return out_of_memory() if calls["n"] > 2 else real(*args, **kwargs)

    monkeypatch.setattr(module, "forward", out_of_memory if stage == "prior" else second_batch_fails)
    s = T(prompt="a red circle", num_images=2, **FAST)
    with pytest.raises(kl.GPUOutOfMemory) as caught:
        kl.text_to_image(fresh_kit, s, batch_size=1, save_to=tmp_path)
    message = str(caught.value)
    assert f"ran out of memory during the {stage} at 64 x 64" in message
    assert "Memory was released" in message and "height=48, width=48" in message
    if stage == "decoder":
        assert "1 finished image(s) kept and saved" in message and len(list(tmp_path.glob("*.png"))) == 1
    monkeypatch.undo()
    assert len(kl.text_to_image(fresh_kit, s).images) == 2


def test_out_of_memory_advice_names_the_next_preset(fresh_kit):
    from kandinsky_lab.generate import Result, _out_of_memory_advice

    s = T(prompt="a", height=1024, width=768, num_images=2)
    result = Result([], s, [0, 1], [0, 1], "tiny", 2)
    fresh_kit.offload = None
    assert 'offload="model" (fits a 16 GB T4) or batch_size=1' in _out_of_memory_advice(fresh_kit, result, "decoder")
    fresh_kit.offload = "model"
    assert 'offload="sequential"' in _out_of_memory_advice(fresh_kit, result, "decoder")


GIB = 2**30
LINES = {"unet": memory.Line(fixed=0.5 * GIB, per_pixel=8_000.0), "movq": memory.Line(fixed=0.1 * GIB, per_pixel=12_000.0)}


def test_memory_line_through_two_probes_predicts_a_third():
    line = memory.Line.through((64 * 64, 128 * 128), (1_000 + 64 * 64 * 7, 1_000 + 128 * 128 * 7))
    assert line.fixed == pytest.approx(1_000) and line.per_pixel == pytest.approx(7)
    assert line.at(512 * 512, 2) == pytest.approx(1_000 + 2 * 512 * 512 * 7)


@hyp_settings(max_examples=200, deadline=None)
@given(
    fixed=st.floats(0, 4 * GIB), per_pixel=st.floats(100, 1e6), usable=st.floats(0.1 * GIB, 80 * GIB),
    batch=st.integers(1, 8), multiple=st.sampled_from([16, 64]),
)
def test_largest_side_is_the_largest_square_that_fits(fixed, per_pixel, usable, batch, multiple):
    lines = {"unet": memory.Line(fixed, per_pixel), "movq": memory.Line(fixed / 2, per_pixel * 1.5)}
    side = memory.largest_side(lines, usable, batch, multiple)
    assert side % multiple == 0
    if side:
        assert memory.needed_bytes(lines, side, side, batch) <= usable * (1 + 1e-9)
    bigger = side + multiple
    assert side == kl.sizes.MAX_SIDE // multiple * multiple or memory.needed_bytes(lines, bigger, bigger, batch) > usable


def test_size_too_large_for_the_gpu_is_refused_before_the_prior(fresh_kit, monkeypatch):
    """A simulated 16 GB GPU with 3 GiB free: 1024 x 1024 needs ~12 GiB by the lines above."""
    monkeypatch.setattr(memory, "room", lambda kit: (LINES, 3 * GIB, "Tesla T4 (cuda:0)"))
    with pytest.raises(ValueError) as caught:
        kl.text_to_image(fresh_kit, T(prompt="a red circle", height=1024, width=1024, **FAST))
    message = str(caught.value)
    assert message.startswith("height=1024, width=1024 (1 image(s) per batch) needs about 11.8 GiB on Tesla T4 (cuda:0)")
    assert "which has 3.0 GiB free: use height and width up to 508 (e.g. 508 x 508), or load with offload=\"model\"" in message
    assert fresh_kit.prior_runs == 0  # refused before any work
    with pytest.raises(ValueError, match=r"\(2 image\(s\) per batch\).*up to 360 .*or batch_size=1 or load"):
        kl.text_to_image(fresh_kit, T(prompt="a red circle", height=496, width=496, num_images=2, **FAST), batch_size=2)
    assert len(kl.text_to_image(fresh_kit, T(prompt="a red circle", height=64, width=64, **FAST)).images) == 1


def test_a_batch_too_large_for_the_gpu_is_split_into_batches_that_fit(fresh_kit, monkeypatch, capsys):
    """On a T4 the notebooks' 4-picture rows at 768² fit one or two at a time (the real-scale GPU run found it):
    with batch_size left to the kit they run in smaller batches, with a note; an asked-for batch is refused."""
    monkeypatch.setattr(memory, "room", lambda kit: (LINES, 3 * GIB, "Tesla T4 (cuda:0)"))
    s = T(prompt="a red circle", height=496, width=496, num_images=3, **FAST)  # 1 fits (2.9 GiB of 3), 2 do not (5.6 GiB)
    assert memory.fitting_batch(fresh_kit, 496, 496, 3) == 1 and memory.fitting_batch(fresh_kit, 320, 320, 3) == 2
    assert kl.planned_size(fresh_kit, s) == (496, 496)  # the panels' check: runnable
    result = kl.text_to_image(fresh_kit, s)
    assert len(result.images) == 3 and result.batch_size == 1
    assert "3 images in batches of 1: all at once would not fit in the GPU's free memory" in result.notes
    assert "3 images in batches of 1" in capsys.readouterr().out
    assert kl.text_to_image(fresh_kit, dataclasses.replace(s, height=64, width=64)).batch_size == 3  # all fit: one batch
    with pytest.raises(ValueError, match=r"\(3 image\(s\) per batch\)"):
        kl.planned_size(fresh_kit, s, batch_size=3)


def test_panel_says_at_once_when_a_size_will_not_fit_the_gpu(kit, monkeypatch):
    from kandinsky_lab.widgets import TextToImagePanel

    monkeypatch.setattr(memory, "room", lambda kit: (LINES, 3 * GIB, "Tesla T4 (cuda:0)"))
    panel = TextToImagePanel(kit)
    panel.widget  # noqa: B018 - builds the panel and its size note
    assert "renders" in panel.size_note.value
    panel.sampling.size.set(1024, 1024)
    assert "height=1024, width=1024" in panel.size_note.value and "GiB free" in panel.size_note.value
    panel.run.generate_button.click()
    assert "use height and width up to" in panel.run.status.value


def test_usable_memory_honours_a_per_process_cap(monkeypatch):
    """How a 16 GB T4 is simulated on an 80 GB card: set_per_process_memory_fraction caps what the kit plans for."""
    import torch

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (70 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 9 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 8 * GIB)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device: 1.0)
    assert memory.usable_bytes("cuda") == pytest.approx(memory.HEADROOM * 71 * GIB)  # free + cached
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device: 15 / 80)
    assert memory.usable_bytes("cuda") == pytest.approx(memory.HEADROOM * 7 * GIB)  # 15 GiB cap - 8 allocated
    monkeypatch.delattr(torch.cuda, "get_per_process_memory_fraction")  # torch < 2.6 (Colab's may be older)
    assert memory.usable_bytes("cuda") == pytest.approx(memory.HEADROOM * 71 * GIB)


def test_memory_is_not_checked_off_cuda(fresh_kit):
    assert memory.room(fresh_kit) is None and fresh_kit.memory_lines is None


def test_panel_shows_out_of_memory_and_bad_input_messages(kit, monkeypatch):
    from kandinsky_lab.widgets import TextToImagePanel

    def out_of_memory(k, s, **kw):
        raise kl.GPUOutOfMemory("the GPU ran out of memory during the decoder at 1024 x 1024")

    monkeypatch.setattr(TextToImagePanel, "task", staticmethod(out_of_memory))
    panel = TextToImagePanel(kit)
    panel.run.generate_button.click()
    assert panel.run.wait(30) and "ran out of memory during the decoder" in panel.run.status.value
    panel.sampling.guidance.value = 100.0
    panel.sampling.num_images.value = 8
    panel.prompt.value = ""
    panel.run.generate_button.click()
    assert "prompt must be a non-empty text" in panel.run.status.value


def test_nothing_loads_pickles():
    sources = "\n".join(p.read_text() for p in (ROOT / "kandinsky_lab").rglob("*.py"))
    for forbidden in ("import pickle", "pickle.load", "torch.load(", "trust_remote_code=True", "use_safetensors=False"):
        assert forbidden not in sources


@hyp_settings(max_examples=150, deadline=None)
@given(
    steps=st.one_of(st.integers(-5, 1100), st.floats(allow_nan=True), st.booleans(), st.none()),
    guidance=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 200), st.text(max_size=3)),
    seed=st.one_of(st.integers(-(2**64), 2**64), st.floats(), st.text(max_size=3)),
    num_images=st.one_of(st.integers(-3, 80), st.floats()),
)
def test_validators_accept_exactly_the_documented_ranges(steps, guidance, seed, num_images):
    s = T(prompt="a", steps=steps, guidance_scale=guidance, seed=seed, num_images=num_images)
    whole = lambda v, lo, hi: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
    number = lambda v, lo, hi: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
    valid_images = whole(num_images, 1, 64)
    valid = whole(steps, 1, 1000) and number(guidance, 0, 100) and valid_images and whole(seed, 0, kl.settings.MAX_SEED - num_images)
    if valid:
        kl.settings.check(s)
    else:
        with pytest.raises(ValueError, match=r"^(steps|guidance_scale|seed|num_images) must be"):
            kl.settings.check(s)


def render_doc() -> str:
    lines = [
        "# Reliability: what is covered",
        "",
        "Generated from `tests/test_reliability.py` (`python -m tests.test_reliability > docs/reliability.md`);",
        "a test fails when this file and the tests disagree.",
        "",
        f"## Bad input: {len(BAD_INPUTS)} cases",
        "",
        "Each is refused with the error type and message below, and then the same loaded model generates a picture.",
        "",
        "| case | input | error | message (pattern) |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{c}` | {what} | `{err.__name__}` | `{msg}` |" for c, what, _, err, msg in BAD_INPUTS]
    lines += [
        "",
        f"## User images that are converted: {len(CONVERSIONS)} cases",
        "",
        "Each becomes an RGB picture, the kit says what it did, and image→image runs on it.",
        "",
        "| case | image | what the kit says |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{c}` | {what} | {('`' + note + '`') if note else 'nothing: used as it is'} |" for c, what, _, _, note in CONVERSIONS]
    lines += [
        "",
        "## Also covered",
        "",
        "- Stop during the prior and during the decoder: the run ends within a step, finished images are kept, "
        "the next run works (`tests/test_generate.py`, `tests/test_widgets.py`, `tests/test_browser.py`).",
        "- Sizes too large for the GPU and preset: on CUDA, `kandinsky_lab/memory.py` predicts the run's peak from "
        "two small probes and refuses a size that cannot fit before the prior runs, naming the largest size that "
        "fits, `batch_size=1` and the next offload preset (simulated GPU here; on a real GPU in `tests/test_gpu.py`, "
        "where the prediction is checked against measured peaks and the size it names runs).",
        "- GPU out-of-memory in the prior and in the decoder: `GPUOutOfMemory` names the stage, size and "
        "preset, memory is released, finished images are kept and saved, the next run works; the panel shows it "
        "(simulated here; a real one in `tests/test_gpu.py`: memory back to what it was, cached blocks returned).",
        "- No lost work: with `save_to` (the panels' output folder) every image is written the moment its batch "
        "finishes, atomically and never over an existing file; the playground's gallery rebuilds from the folder "
        "after a kernel restart (`tests/test_metadata.py`, `tests/test_widgets.py`).",
        "- File names made from prompts stay inside the output folder (`tests/test_metadata.py`).",
        "- Prompts over CLIP's 77 tokens: the result's notes say what is ignored.",
        "- Safety: weights load from safetensors only (a folder with only pickled weights is refused), no remote "
        "code, no pickle or `torch.load` anywhere in the package.",
        "- Property-based tests (hypothesis): the validators accept exactly the documented ranges; settings survive "
        "the PNG metadata round-trip (`tests/test_metadata.py`).",
        "",
        "The GPU tests run only where a GPU is lent (`python -m benchmarks.gpu`; last run in "
        "`benchmarks/results.md`). On the CPU and Apple MPS no memory check is made: a large picture is slow there, "
        "not fatal, and MPS reports no peak.",
        "",
    ]
    return "\n".join(lines)


def test_reliability_doc_is_generated_from_these_tests():
    assert (ROOT / "docs" / "reliability.md").read_text() == render_doc()


if __name__ == "__main__":
    print(render_doc(), end="")
