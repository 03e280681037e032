"""Real-browser tests: Debian's Chromium, driven by Playwright, against JupyterLab and Voila on 127.0.0.1.

A person's path through the product: open a notebook, run it, type a prompt, press Generate, see
the picture, press Stop; upload an image; build a mix; use the playground as a web app. A page
error fails the test. `.ci/run` installs Chromium; elsewhere these tests are skipped without it.
"""

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
import PIL.Image
import pytest

from .browser import CHROMIUM, CHROMIUM_ARGS, TOKEN, kernels, open_and_run_all, read_image, start_lab, start_voila

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
PlaywrightTimeout = playwright_api.TimeoutError

pytestmark = pytest.mark.browser
RUN_S = 90_000  # ms: the longest a generation may take on a 2-core CI machine


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it with apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def new_page(browser, shots: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.shots = shots
    return page


def finish(page, name: str):
    page.screenshot(path=str(page.shots / f"{name}.png"))  # under pytest's temporary folder only
    assert page.errors == [], page.errors
    page.close()


def run_all_cells(page, url: str, notebook: str, panels: int):
    open_and_run_all(page, url, notebook)
    try:
        expect(page.locator(".kl-generate-button")).to_have_count(panels, timeout=120_000)
    except AssertionError:
        page.screenshot(path=str(page.shots / f"{notebook}-failed.png"))
        raise
    expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute("data-status", "idle", timeout=120_000)


def set_slider(scope, css: str, value) -> None:
    """Type a value into an ipywidgets slider's editable readout."""
    readout = scope.locator(f"{css} .widget-readout")
    readout.click()
    readout.press("Control+a")
    readout.type(str(value))
    readout.press("Enter")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    server = start_lab(tmp, ["01_text_to_image.ipynb"])
    panels = nbformat.v4.new_notebook()
    panels.cells = [
        nbformat.v4.new_code_cell("import kandinsky_lab as kl\nfrom kandinsky_lab.widgets import ImageToImagePanel, InterpolationPanel\nkit = kl.load()"),
        nbformat.v4.new_code_cell("ImageToImagePanel(kit)"),
        nbformat.v4.new_code_cell("InterpolationPanel(kit)"),
    ]
    panels.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(panels, tmp / "nb" / "panels.ipynb")
    painter = nbformat.v4.new_notebook()
    painter.cells = [
        nbformat.v4.new_code_cell(
            "import kandinsky_lab as kl\nfrom kandinsky_lab import world\nfrom kandinsky_lab.widgets import InpaintPanel\nkit = kl.load()\n"
            f"panel = InpaintPanel(kit, output_dir='inpainted')\npanel.image_input.set_image(world.render(world.{SOURCE_SCENE!r}), 'test')\n"
            "panel.prompt.value = 'a large green square on a blue background'\npanel"
        )
    ]
    painter.metadata["kernelspec"] = panels.metadata["kernelspec"]
    nbformat.write(painter, tmp / "nb" / "painter.ipynb")
    server.root = tmp / "nb"  # where the notebooks run and write
    yield server
    assert server.stop() == [], "processes left running after JupyterLab stopped"


@pytest.fixture(scope="module")
def panels_page(browser, lab, tmp_path_factory):
    page = new_page(browser, tmp_path_factory.mktemp("shots"))
    run_all_cells(page, lab.url, "panels.ipynb", panels=2)
    yield page
    finish(page, "panels")


def test_lab_text_to_image_generate_and_stop(browser, lab, tmp_path):
    page = new_page(browser, tmp_path)
    run_all_cells(page, lab.url, "01_text_to_image.ipynb", panels=1)
    panel = page.locator(".kl-panel-texttoimagepanel")
    panel.locator(".kl-prompt textarea").fill("a blue square on a white background")
    panel.locator(".kl-generate-button").click()
    expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s), 64 × 64", timeout=RUN_S)
    picture = read_image(panel, ".kl-result-image")
    assert picture is not None and picture["width"] == 136  # one 64 px picture shown at 128 px, with padding
    assert picture["colours"] > 50  # not blank
    # A long run, stopped half way: the panel says so and keeps what was finished.
    set_slider(panel, ".kl-steps", 150)
    set_slider(panel, ".kl-num-images", 8)
    panel.locator(".kl-generate-button").click()
    expect(panel.locator(".kl-status")).to_contain_text("running", timeout=10_000)
    expect(panel.locator(".kl-stop-button")).to_be_enabled()
    time.sleep(2)
    panel.locator(".kl-stop-button").click()
    expect(panel.locator(".kl-status")).to_contain_text("stopped during the", timeout=30_000)
    expect(panel.locator(".kl-status")).to_contain_text("finished image(s)")
    expect(panel.locator(".kl-generate-button")).to_be_enabled()
    finish(page, "text-to-image")


def test_lab_image_to_image_with_an_uploaded_file(panels_page, tmp_path):
    picture = tmp_path / "upload.png"
    PIL.Image.new("RGB", (96, 64), "orange").save(picture)
    panel = panels_page.locator(".kl-panel-imagetoimagepanel")
    # ipywidgets 8 keeps FileUpload's <input type=file> out of the page: catch the file chooser it opens.
    with panels_page.expect_file_chooser() as chooser:
        panel.locator(".kl-image-upload").click()
    chooser.value.set_files(str(picture))
    expect(panel.locator(".kl-image-note")).to_contain_text("uploaded upload.png", timeout=20_000)
    set_slider(panel, ".kl-steps", 20)
    panel.locator(".kl-generate-button").click()
    expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s), 64 × 64", timeout=RUN_S)  # nano's own size
    expect(panel.locator(".kl-status")).to_contain_text("resized the image from 96x64 to 64x64")
    shown = read_image(panel, ".kl-result-image")
    assert shown is not None and shown["width"] == 2 * 64 + 8 and shown["colours"] > 50, shown  # shown 2× larger


def test_lab_interpolation_with_a_text_and_an_image_item(panels_page):
    panel = panels_page.locator(".kl-panel-interpolationpanel")
    panel.locator(".kl-new-text input").fill("a blue star")
    panel.locator(".kl-add-text-button").click()
    panel.locator(".kl-image-samples select").select_option("swirls")
    expect(panel.locator(".kl-image-note")).to_contain_text("sample: swirls")
    panel.locator(".kl-add-image-button").click()
    expect(panel.locator(".kl-weight")).to_have_count(4)
    set_slider(panel.locator(".kl-weight").nth(0), "", 0)
    set_slider(panel.locator(".kl-weight").nth(3), "", 1)
    expect(panel.locator(".kl-weight-sum")).to_contain_text("sum of weights: 2.00")
    set_slider(panel, ".kl-steps", 10)
    panel.locator(".kl-generate-button").click()
    expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s)", timeout=RUN_S)
    shown = read_image(panel, ".kl-result-image")
    assert shown is not None and shown["colours"] > 50


SOURCE_SCENE = __import__("kandinsky_lab.world", fromlist=["Scene"]).Scene("square", "red", "blue")
STROKES = [[(8, 30), (56, 30)], [(32, 12), (32, 52)]]  # in the picture's pixels: a cross over the square


def paint_strokes(page, panel, lines) -> None:
    """Drag the mouse along `lines` (picture pixels) on the mask painter's canvas, button held, as a person paints."""
    canvas = panel.locator("canvas.kl-mask-canvas")
    expect(canvas).to_be_visible(timeout=60_000)
    box = canvas.bounding_box()
    at = lambda x, y: (box["x"] + x * box["width"] / 64, box["y"] + y * box["height"] / 64)  # noqa: E731
    for line in lines:
        page.mouse.move(*at(*line[0]))
        page.mouse.down()
        for x, y in line[1:]:
            page.mouse.move(*at(x, y), steps=12)
        page.mouse.up()
        page.wait_for_timeout(300)


def check_inpainted(folder: Path, source: PIL.Image.Image, brush: float) -> None:
    """The saved mask is the strokes painted, and the picture changed inside them far more than outside."""
    import numpy as np

    from kandinsky_lab import masks

    masks_saved = sorted(folder.rglob("*.mask.png"))
    assert len(masks_saved) == 1, masks_saved
    got = masks.read(PIL.Image.open(masks_saved[0]))
    # A canvas point (x, y) is a corner of pixel (x, y); PIL draws around pixel centres: half a pixel apart.
    wanted = masks.read(masks.strokes((64, 64), [[(x - 0.5, y - 0.5) for x, y in line] for line in STROKES], brush))
    overlap = (got & wanted).sum() / (got | wanted).sum()
    assert overlap > 0.9, overlap  # the strokes, up to anti-aliasing at their edges
    picture = PIL.Image.open(masks_saved[0].with_name(masks_saved[0].name.replace(".mask.png", ".png"))).convert("RGB")
    change = np.abs(np.asarray(picture, float) - np.asarray(source, float)).mean(axis=2) / 255
    inside, outside = change[got].mean(), change[~masks.read(masks.grow(masks.to_image(got), 4))].mean()
    assert inside > 0.15 and inside > 4 * outside, (inside, outside)


@contextmanager
def playground(browser, tmp_path, server=None):
    """The Voila app in a page, its text→image panel ready: (page, panel); a server of its own stops cleanly after."""
    own = server is None
    server = server or start_voila(tmp_path)
    try:
        page = new_page(browser, tmp_path)
        page.requests, pending = [], set()
        page.on("request", lambda request: (page.requests.append(request.url), pending.add(request.url)))
        page.on("requestfinished", lambda request: pending.discard(request.url))
        page.on("requestfailed", lambda request: pending.discard(request.url))
        panel = page.locator(".kl-panel-texttoimagepanel")
        try:  # the panel's Generate button says the page is ready; the "load" event, which also waits for every
            # image and font, once never came within 120 s in CI (13–19 s here): if it fails again, say what it waited for
            page.goto(server.url, wait_until="domcontentloaded", timeout=120_000)
            expect(panel.locator(".kl-generate-button")).to_be_visible(timeout=120_000)
        except (PlaywrightTimeout, AssertionError) as error:
            log = Path(server.log.name).read_text()[-3000:]
            raise AssertionError(f"the app page did not get ready: {error}\nrequests not finished: {sorted(pending)}\nserver log:\n{log}") from None
        page.server_url = server.url
        yield page, panel
    finally:
        if own:
            assert server.stop() == [], "processes left running after Voila stopped"


def test_voila_playground_generates_and_fills_the_gallery(browser, tmp_path):
    with playground(browser, tmp_path) as (page, panel):
        text = page.locator("body").inner_text()
        assert "Kandinsky 2.2 playground" in text and "nano is a miniature Kandinsky 2.2: it draws one circle" in text
        for coder_text in ("import kandinsky_lab", "kl.load", "Every cell works", "Exercises", "Loading", "Kit("):
            assert coder_text not in text, coder_text  # an app: a title, one line, the panels
        box = panel.locator(".kl-generate-button").bounding_box()
        assert box["y"] + box["height"] <= 1000  # Generate in the first screen (1400 × 1000), no scrolling
        set_slider(panel, ".kl-steps", 10)
        panel.locator(".kl-generate-button").click()
        expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s)", timeout=RUN_S)
        expect(page.locator(".kl-gallery-card")).to_have_count(1)
        assert read_image(page, ".kl-gallery-card")["colours"] > 50
        outside = [url for url in page.requests if not url.startswith((page.server_url.rstrip("/"), "data:", "blob:"))]
        assert page.requests and outside == [], outside  # the app asks nothing of the internet (Voila's lab template asked a CDN)
        icon = page.locator(".kl-generate-button i.fa-play").first  # Font Awesome from Voila's own bundle
        assert icon.evaluate("(el) => getComputedStyle(el, '::before').content") not in ("none", "normal", '""')
        finish(page, "voila")


SHAPE_JS = """(el) => {
    const img = el.tagName === 'IMG' ? el : el.querySelector('img');
    const box = img.getBoundingClientRect();
    return {natural: img.naturalWidth / img.naturalHeight, shown: box.width / box.height, width: box.width};
}"""


def test_voila_preview_and_result_keep_their_shape(browser, tmp_path):
    """Only a browser lays the pictures out: a landscape preview and result must not be shown stretched."""
    with playground(browser, tmp_path) as (page, panel):
        panel.locator(".kl-size select").select_option(label="80 × 48 (5:3)")
        set_slider(panel, ".kl-steps", 150)
        panel.locator(".kl-generate-button").click()
        expect(panel.locator(".kl-preview-label")).to_contain_text("preview", timeout=RUN_S)
        expect(panel.locator("img.kl-preview")).to_be_visible(timeout=RUN_S)
        preview = panel.locator("img.kl-preview").evaluate(SHAPE_JS)
        assert abs(preview["natural"] - 80 / 48) < 0.01 and abs(preview["shown"] - preview["natural"]) < 0.02, preview
        expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s)", timeout=RUN_S)
        expect(panel.locator("img.kl-preview")).to_be_hidden()
        result = panel.locator("img.kl-result-image").evaluate(SHAPE_JS)
        assert abs(result["shown"] - result["natural"]) < 0.02, result
        finish(page, "voila-shapes")


def test_voila_visitors_have_their_own_history_and_closed_pages_free_their_kernel(browser, tmp_path):
    """Two visitors of one app: the second sees none of the first's pictures; a closed page's kernel is culled."""
    server = start_voila(tmp_path, cull_s=4)
    try:
        with playground(browser, tmp_path, server) as (first, panel):
            set_slider(panel, ".kl-steps", 5)
            panel.locator(".kl-generate-button").click()
            expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s)", timeout=RUN_S)
            expect(first.locator(".kl-gallery-card")).to_have_count(1)
            other = browser.new_context(viewport={"width": 1400, "height": 1000})  # another visitor: a browser of their own
            try:
                second = other.new_page()
                second.goto(server.url, timeout=120_000)
                expect(second.locator(".kl-generate-button").first).to_be_visible(timeout=120_000)
                assert second.locator(".kl-gallery-card").count() == 0  # nothing of the first visitor's
                assert kernels(server) == 2
            finally:
                other.close()
            first.close()
        deadline = time.monotonic() + 60
        while kernels(server) > 0 and time.monotonic() < deadline:
            time.sleep(1)
        assert kernels(server) == 0  # both pages closed: their kernels (and model copies) are gone
    finally:
        assert server.stop() == [], "processes left running after Voila stopped"


def test_lab_mask_painter_strokes_become_the_mask_and_the_picture_changes_inside(browser, lab, tmp_path):
    page = new_page(browser, tmp_path)
    run_all_cells(page, lab.url, "painter.ipynb", panels=1)
    panel = page.locator(".kl-panel-inpaintpanel")
    paint_strokes(page, panel, STROKES)
    expect(panel.locator(".kl-mask-note")).to_contain_text(re.compile(r"repaints [1-9]\d*%"), timeout=10_000)
    set_slider(panel, ".kl-steps", 15)
    panel.locator(".kl-generate-button").click()
    expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s)", timeout=RUN_S)
    from kandinsky_lab import world

    check_inpainted(lab.root / "inpainted", world.render(SOURCE_SCENE), brush=8)
    finish(page, "lab-mask-painter")


def test_voila_gallery_picture_to_inpainting_painted_with_the_mouse(browser, tmp_path):
    with playground(browser, tmp_path) as (page, panel):
        set_slider(panel, ".kl-steps", 10)
        panel.locator(".kl-generate-button").click()
        expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s)", timeout=RUN_S)
        page.locator(".kl-gallery-card .kl-gallery-send:text-is('→ inpaint')").first.click()
        inpaint = page.locator(".kl-panel-inpaintpanel")
        expect(inpaint).to_be_visible(timeout=10_000)
        paint_strokes(page, inpaint, STROKES)
        expect(inpaint.locator(".kl-mask-note")).to_contain_text(re.compile(r"repaints [1-9]\d*%"), timeout=10_000)
        inpaint.locator(".kl-prompt textarea").fill("a blue circle on a white background")
        set_slider(inpaint, ".kl-steps", 15)
        inpaint.locator(".kl-generate-button").click()
        expect(inpaint.locator(".kl-status")).to_contain_text("done: 1 image(s)", timeout=RUN_S)
        expect(page.locator(".kl-gallery-card")).to_have_count(2)
        visitors = tmp_path / "nb" / "outputs" / "visitors"
        first = sorted(p for p in visitors.rglob("*.png") if not p.name.endswith(".mask.png"))[0]
        check_inpainted(visitors, PIL.Image.open(first).convert("RGB"), brush=8)
        finish(page, "voila-mask-painter")


def test_voila_controlnet_keeps_an_uploaded_pictures_layout(browser, tmp_path):
    """The app's ControlNet tab: upload a picture, see its depth hint beside it, generate with a new prompt."""
    import numpy as np

    from kandinsky_lab import world

    scene = world.Scene("star", "red", "blue", position="left")
    picture = tmp_path / "star.png"
    world.render(scene).save(picture)
    with playground(browser, tmp_path) as (page, _):
        page.locator(".lm-TabBar-tab:has-text('controlnet'), .p-TabBar-tab:has-text('controlnet')").first.click()
        panel = page.locator(".kl-panel-controlnetpanel")
        expect(panel).to_be_visible(timeout=10_000)
        with page.expect_file_chooser() as chooser:
            panel.locator(".kl-image-upload").first.click()
        chooser.value.set_files(str(picture))
        expect(panel.locator(".kl-hint-note")).to_contain_text("estimated from the picture", timeout=30_000)
        hint = read_image(panel, ".kl-hint-view")
        assert hint is not None and hint["colours"] >= 2  # a depth picture is shown beside the upload
        panel.locator(".kl-prompt textarea").fill("a large yellow star on a purple background")
        set_slider(panel, ".kl-steps", 25)
        panel.locator(".kl-generate-button").click()
        expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s), 64 × 64", timeout=RUN_S)
        expect(page.locator(".kl-gallery-card")).to_have_count(1)
        saved = sorted(p for p in (tmp_path / "nb" / "outputs" / "visitors").rglob("*.png") if not p.name.endswith(".hint.png"))
        assert len(saved) == 1
        made = np.asarray(PIL.Image.open(saved[0]).convert("RGB"), dtype=float)
        left, right = made[20:44, 8:28].mean(axis=(0, 1)), made[20:44, 48:60].mean(axis=(0, 1))
        assert np.abs(left - right).sum() > 100  # the object is on the left, as in the upload, not in the center
        finish(page, "voila-controlnet")
