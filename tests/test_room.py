"""The room's model server (kandinsky_lab/serve/) and its thin client (kandinsky_lab/remote.py), on nano.

One server for the whole session, listening beyond loopback (every request needs the room code), with
one Ray instance bounded to the machine's 2 CPUs and no dashboard; it loads nano (tests/room_kits.py: a
decoder call at width 96 raises CUDA's out-of-memory error, as a full GPU would). Every test ends by
checking the server still serves.
"""

import dataclasses
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

import kandinsky_lab as kl
from tests.room import ROOM_CODE, RoomServer
from tests.room_kits import OUT_OF_MEMORY_WIDTH

pytestmark = pytest.mark.slow

QUICK = dict(prior_steps=3, steps=4)
RED = kl.masks.to_image(np.zeros((64, 64), dtype=bool)).convert("RGB")
RED.paste((220, 30, 30), (0, 0, 64, 64))
PICTURE = kl.sample("circles") if "circles" in kl.sample_names() else kl.sample(kl.sample_names()[0])
HINT = kl.masks.ellipse((64, 64), (8, 8, 40, 40))
BOX = kl.masks.rectangle((64, 64), (16, 16, 48, 48))


@pytest.fixture(scope="module")
def server():
    room = RoomServer()
    yield room
    left = room.stop()
    assert not left, f"processes left after SIGTERM: {left}"


@pytest.fixture(scope="module")
def nano():
    return kl.load("nano", device="cpu")


@pytest.fixture
def remote(server):
    return kl.load(server.address, token=ROOM_CODE)


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def every_task() -> dict:
    picture = PICTURE.resize((64, 64))
    return {
        "text_to_image": kl.TextToImage(prompt="a red circle on a white background", num_images=2, **QUICK),
        "image_to_image": kl.ImageToImage(prompt="a blue square", image=picture, strength=0.5, **QUICK),
        "inpaint": kl.Inpaint(prompt="a yellow star on a white background", image=picture, mask=BOX, keep_outside=True, **QUICK),
        "controlnet": kl.ControlNet(prompt="a green circle on a black background", hint=HINT, **QUICK),
        "variations": kl.Variations(image=picture, num_images=2, **QUICK),
        "interpolation": kl.Interpolation(items=("a red circle", picture), weights=(0.5, 0.5), **QUICK),
    }


def served(server) -> None:
    """The server still makes pictures (after whatever the test did to it)."""
    kit = kl.load(server.address, token=ROOM_CODE)
    assert len(kl.text_to_image(kit, kl.TextToImage(prompt="a circle", prior_steps=2, steps=2)).images) == 1


@pytest.mark.parametrize("task", list(every_task()))
def test_every_task_through_the_client_gives_the_local_pixels(server, remote, nano, task):
    settings = every_task()[task]
    there = kl.run(remote, settings)
    here = kl.run(nano, settings)
    assert there.settings == here.settings and there.notes == here.notes  # sizes, guidance, what the kit says
    assert there.decoder_seeds == here.decoder_seeds and there.model == here.model == "nano"
    assert len(there.images) == len(here.images) == settings.num_images
    for a, b in zip(there.images, here.images):
        assert np.array_equal(pixels(a), pixels(b)), task
    assert there.interrupted is None


def test_a_picture_made_in_the_room_regenerates_on_a_local_kit(server, remote, nano, tmp_path):
    result = kl.text_to_image(remote, kl.TextToImage(prompt="a blue star", seed=5, **QUICK), save_to=tmp_path)
    assert len(result.paths) == 1
    assert np.array_equal(pixels(kl.regenerate(nano, result.paths[0])), pixels(result.images[0]))


def test_the_batch_command_runs_through_the_room(server, nano, tmp_path):
    import os

    (tmp_path / "prompts.txt").write_text("a red circle on a white background\na blue square on a black background\n")
    env = {**os.environ, "KANDINSKY_LAB_TOKEN": ROOM_CODE}
    command = [sys.executable, "-m", "kandinsky_lab", "batch", str(tmp_path / "prompts.txt"), "--out", str(tmp_path / "out"),
               "--source", server.address, "--steps", "4", "--prior-steps", "3", "--no-progress"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    pictures = sorted((tmp_path / "out" / "images").glob("*.png"))
    assert len(pictures) == 2
    assert np.array_equal(pixels(kl.regenerate(nano, pictures[0])), pixels(PIL.Image.open(pictures[0])))  # made in the room, remade here


def test_visitors_asking_alike_are_decoded_in_one_call_with_their_own_seeds(server, nano):
    """Eight visitors at once, the same decoder settings, different seeds: fewer decoder calls than visitors,
    and each picture the one a local kit makes for its seed, within the numerics of the batch size."""
    kits = [kl.load(server.address, token=ROOM_CODE) for _ in range(8)]
    before = len(kits[0].stats()["batch_sizes"])
    asked = [kl.TextToImage(prompt="a green square on a white background", seed=100 + i, steps=12, prior_steps=3) for i in range(8)]
    results = [None] * 8
    go = threading.Barrier(8)

    def visit(i):
        go.wait()
        results[i] = kl.text_to_image(kits[i], asked[i])

    threads = [threading.Thread(target=visit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    sizes = kits[0].stats()["batch_sizes"][before:]
    assert sum(sizes) == 8 and max(sizes) >= 2, sizes  # batched: some call decoded several visitors' rows
    for settings, result in zip(asked, results):
        alone = kl.text_to_image(nano, settings).images[0]
        difference = np.abs(pixels(result.images[0]) - pixels(alone))
        assert difference.mean() < 0.5 and difference.max() <= 8, (settings.seed, difference.mean(), difference.max())


@pytest.fixture(scope="module")
def adapter(nano, tmp_path_factory):
    from tests.lora import train

    return train(nano, tmp_path_factory.mktemp("adapter") / "heart").folder


def test_an_adapter_sent_to_the_room_draws_the_local_pixels_for_its_visitor_only(server, nano, adapter):
    """One visitor loads a LoRA adapter: their pictures are a local kit's with it (prior and decoder); another
    visitor asking the same at the same moment gets the base model's, and no decoder call mixes the two."""
    mine, theirs = kl.load(server.address, token=ROOM_CODE), kl.load(server.address, token=ROOM_CODE)
    loaded = mine.load_adapter(adapter)
    assert loaded.digest == kl.adapters.read(adapter).digest and mine.adapter is loaded and theirs.adapter is None
    asked = kl.TextToImage(prompt="a red heart on a white background", seed=3, steps=8, prior_steps=3)
    before = len(mine.stats()["batch_sizes"])
    results = {}
    go = threading.Barrier(2)

    def visit(name, kit):
        go.wait()
        results[name] = kl.text_to_image(kit, asked)

    threads = [threading.Thread(target=visit, args=pair) for pair in (("mine", mine), ("theirs", theirs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(mine.stats()["batch_sizes"][before:]) == [1, 1]  # two calls: the adapter is in the plan's key
    base = kl.text_to_image(nano, asked)
    nano.load_adapter(adapter)
    try:
        local = kl.text_to_image(nano, asked)
    finally:
        nano.unload_adapter()
    assert results["mine"].adapter == local.adapter and results["mine"].settings == local.settings
    assert np.array_equal(pixels(results["mine"].images[0]), pixels(local.images[0]))
    assert np.array_equal(pixels(results["theirs"].images[0]), pixels(base.images[0])) and results["theirs"].adapter is None
    half = kl.text_to_image(mine, dataclasses.replace(asked, adapter_scale=0.0))
    assert np.array_equal(pixels(half.images[0]), pixels(base.images[0]))
    mine.unload_adapter()
    assert np.array_equal(pixels(kl.text_to_image(mine, asked).images[0]), pixels(base.images[0]))


def test_damaged_and_foreign_adapters_are_refused_by_name(server, remote, adapter, tmp_path):
    damaged = Path(shutil.copytree(adapter, tmp_path / "damaged"))
    (damaged / "prior" / kl.adapters.WEIGHTS_FILE).write_bytes(b"\x02" + b"\x00" * 7 + b"{}")
    with pytest.raises(kl.FileFormatError, match="prior.*holds no LoRA weights"):  # checked by the client
        remote.load_adapter(damaged)
    foreign = Path(shutil.copytree(adapter, tmp_path / "foreign"))
    info = json.loads((foreign / "adapter.json").read_text())
    info["base"] = {"source": "another-model", "decoder": "0" * 12, "prior": "0" * 12}
    (foreign / "adapter.json").write_text(json.dumps(info))
    with pytest.raises(kl.KitError, match="was made for 'another-model', whose decoder is not this model's"):  # by the server
        remote.load_adapter(foreign)
    assert remote.adapter is None
    served(server)


def test_visitors_clicking_a_moment_apart_share_one_decoder_call(server):
    """Four clicks 40 ms apart (each later than the 5 ms a batch waits on an idle model): the first visitor's
    decoder rows wait for the three whose prior runs after theirs, so the room makes one decoder call, not 1 + 3."""
    kits = [kl.load(server.address, token=ROOM_CODE) for _ in range(4)]
    before = len(kits[0].stats()["batch_sizes"])
    threads = [
        threading.Timer(0.04 * i, kl.text_to_image, (kits[i], kl.TextToImage(prompt="a red circle on a blue background", seed=300 + i, steps=8)))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert kits[0].stats()["batch_sizes"][before:] == [4]


def test_stop_mid_run_keeps_what_is_finished_and_the_server_serves_on(server, remote):
    stop = kl.StopSignal()
    seen = []

    def on_step(event):
        seen.append(event)
        if event.stage == "decoder" and event.step == 3:
            stop.set()

    settings = kl.TextToImage(prompt="a red circle", num_images=2, prior_steps=3, steps=200)
    started = time.perf_counter()
    result = kl.text_to_image(remote, settings, on_step=on_step, stop=stop)
    assert time.perf_counter() - started < 20  # 200 steps would take far longer
    assert result.interrupted and result.interrupted.startswith("stopped during the decoder at step"), result.interrupted
    assert result.images == [] and all(e.latents is None for e in seen)
    served(server)


def test_previews_and_progress_reach_the_client(server, remote):
    events = []
    settings = kl.TextToImage(prompt="a purple circle on a white background", seed=77, prior_steps=3, steps=10)  # a prior not cached yet
    kl.text_to_image(remote, settings, on_step=events.append, previews="colors")
    stages = [(e.stage, e.step) for e in events]
    assert stages == [("prior", i) for i in (1, 2, 3)] + [("decoder", i) for i in range(1, 11)]
    with_pictures = [e for e in events if e.previews]
    assert [e.step for e in with_pictures] == [5, 10] and with_pictures[0].previews[0].size == (16, 16)


CLIENT = """
import sys, kandinsky_lab as kl
kit = kl.load(sys.argv[1], token=sys.argv[2])
kl.text_to_image(kit, kl.TextToImage(prompt="a red circle", seed=3, prior_steps=2, steps=400),
                 on_step=lambda e: print(e.stage, e.step, flush=True))
"""


def test_a_client_killed_mid_run_leaves_the_others_pictures_whole(server, remote, nano):
    killed = subprocess.Popen([sys.executable, "-c", CLIENT, server.address, ROOM_CODE], stdout=subprocess.PIPE, text=True)
    for text in killed.stdout:
        if text.startswith("decoder"):
            break
    other = kl.TextToImage(prompt="a red circle", seed=4, prior_steps=2, steps=400)  # same key: it joins the same batches
    done = {}
    worker = threading.Thread(target=lambda: done.update(result=kl.text_to_image(remote, dataclass_copy(other, steps=12))))
    worker.start()
    time.sleep(1.0)
    killed.kill()
    killed.wait()
    worker.join(120)
    result = done["result"]
    assert result.interrupted is None and len(result.images) == 1
    alone = kl.text_to_image(nano, dataclass_copy(other, steps=12)).images[0]
    assert np.abs(pixels(result.images[0]) - pixels(alone)).max() <= 8
    served(server)


def dataclass_copy(settings, **changes):
    import dataclasses

    return dataclasses.replace(settings, **changes)


def raw(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    first = data.split(b"\n", 1)[0]
    return response.status, json.loads(first) if first else {}


def test_the_room_code_is_needed_beyond_loopback(server):
    status, answer = raw(server, "GET", "/v1/info")
    assert status == 401 and "needs the room code" in answer["message"]
    status, answer = raw(server, "GET", "/v1/info", headers={"X-Room-Code": "guess"})
    assert status == 401 and "wrong room code" in answer["message"]
    status, answer = raw(server, "POST", "/v1/generate", b"x" * 100, {"X-Room-Code": "guess", "Content-Length": "100"})
    assert status == 401  # nothing is read or run before the code is checked
    with pytest.raises(kl.SourceError, match="room code"):
        kl.load(server.address)
    with pytest.raises(kl.SourceError, match="wrong room code"):
        kl.load(server.address, token="guess")
    served(server)


def test_oversized_and_garbage_requests_are_refused_by_name(server, remote):
    code = {"X-Room-Code": ROOM_CODE}
    status, answer = raw(server, "POST", "/v1/generate", b"{}", code | {"Content-Length": str(64 * 2**20)})
    assert status == 413 and "over this room's limit" in answer["message"]
    status, answer = raw(server, "POST", "/v1/generate", b"not json", code)
    assert status == 400 and "must be JSON" in answer["message"]
    status, answer = raw(server, "POST", "/v1/generate", json.dumps({"request": {"task": "rm -rf", "settings": {}}}).encode(), code)
    assert answer["type"] == "accepted"  # the stream starts; the refusal is its last event
    with pytest.raises(kl.SettingsError, match="steps 500 is over this room's limit of 200"):
        kl.text_to_image(remote, kl.TextToImage(prompt="a", steps=500))
    with pytest.raises(kl.SettingsError, match="num_images 20 is over this room's limit"):
        kl.text_to_image(remote, kl.TextToImage(prompt="a", num_images=20))
    big = PIL.Image.new("RGB", (2048, 1024))
    with pytest.raises(kl.SettingsError, match="image has 2048 × 1024 pixels, over this room's limit"):
        kl.image_to_image(remote, kl.ImageToImage(prompt="a", image=big))
    for body, message in [
        ({"task": "text_to_image", "settings": {"steps": "many"}}, "steps"),  # the local checks' own message
        ({"task": "text_to_image", "settings": {"pickle": "cos\nsystem\n"}}, "unknown setting 'pickle'"),
        ({"task": "image_to_image", "settings": {"image": {"png": "bm90IGEgcG5n"}}}, "image is not a PNG picture"),
        ({"task": "nope", "settings": {}}, "unknown task 'nope'"),
        ("just text", "must be a JSON object"),
    ]:
        events = stream(server, {"request": body})
        assert events[-1]["type"] == "error" and message in events[-1]["message"], (body, events[-1])
    served(server)


def stream(server, body: dict, visitor: str = "raw") -> list[dict]:
    data = json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("POST", "/v1/generate", body=data, headers={"X-Room-Code": ROOM_CODE, "X-Visitor": visitor})
    response = connection.getresponse()
    events = [json.loads(text) for text in response.read().splitlines() if text.strip()]
    connection.close()
    return events


def test_an_out_of_memory_error_reaches_the_client_as_advice_and_the_server_serves_on(server, remote):
    with pytest.raises(kl.GPUOutOfMemory, match="ran out of memory during the decoder at 96 x 64.*try"):
        kl.text_to_image(remote, kl.TextToImage(prompt="a red circle", width=OUT_OF_MEMORY_WIDTH, height=64, **QUICK))
    served(server)


def test_visitors_are_served_in_turn(server):
    """Visitor A asks for three runs of a full batch each (8 pictures) at once; B asks for one picture while A's
    first is decoding. B waits for that batch only: B's picture is done before A's second run (A's runs take
    their turn at the room's door, B's joins the model's queue ahead of them). A fourth from A is refused."""
    a, b = kl.load(server.address, token=ROOM_CODE), kl.load(server.address, token=ROOM_CODE)
    finished, decoding = {}, threading.Event()
    many = kl.TextToImage(prompt="a red circle", num_images=8, prior_steps=2, steps=40)

    def run(name, kit, settings, on_step=None):
        kl.text_to_image(kit, settings, on_step=on_step)
        finished[name] = time.monotonic()

    first = lambda event: decoding.set() if event.stage == "decoder" else None  # noqa: E731
    threads = [threading.Thread(target=run, args=(f"a{i}", a, dataclass_copy(many, seed=10 * i), first if i == 0 else None)) for i in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    with pytest.raises(kl.SettingsError, match="already have 3 requests in the room's queue"):
        kl.text_to_image(a, many)
    assert decoding.wait(60)
    run("b", b, kl.TextToImage(prompt="a blue circle", prior_steps=2, steps=40))
    for t in threads:
        t.join(300)
    order = sorted(finished, key=finished.get)
    assert order == ["a0", "b", "a1", "a2"], order
    served(server)


def test_what_needs_the_model_here_says_so_in_one_line(server, remote):
    for look_inside in (kl.architecture, lambda kit: kl.latent_channels(kit, PICTURE), lambda kit: kl.clip_view(kit, PICTURE)):
        with pytest.raises(kl.KitError, match="needs the model in this kernel"):
            look_inside(remote)
    with pytest.raises(kl.KitError, match="needs the model in this kernel"):
        remote.decoder
    depth = kl.depth_map(remote, PICTURE.resize((64, 64)))  # made on the server
    assert depth.mode == "L" and depth.size == (64, 64)


THIN = """
import sys, psutil
import kandinsky_lab as kl
from kandinsky_lab.widgets import Playground
kit = kl.load(sys.argv[1], token=sys.argv[2])
app = Playground(kit)
panel = app.text_to_image
panel.sampling.steps.value, panel.sampling.prior_steps.value = 10, 3
panel.run.generate_button.click()
assert panel.run.wait(120), "no result"
shown = panel.run.result_image.value
heavy = sorted(m for m in ("torch", "diffusers", "transformers", "numpy") if m in sys.modules)
print(len(panel.run.last_result.images), len(shown) > 100, heavy, round(psutil.Process().memory_info().rss / 2**20))
"""


def test_the_playground_on_a_thin_client_imports_no_torch(server):
    """The app page's code on a client kit: a picture through the panel, and no torch, diffusers or transformers,
    nor numpy (it is 6-10 MiB of every visitor's kernel, which the room's memory figure counts)."""
    out = subprocess.run([sys.executable, "-c", THIN, server.address, ROOM_CODE], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("1 True [] "), out.stdout + out.stderr[-2000:]
    assert int(last.rsplit(" ", 1)[1]) < 250  # MiB; a kernel with nano loaded holds about 350


def test_a_replica_asking_for_a_gpu_the_machine_lacks_fails_at_once_and_leaves_nothing(tmp_path):
    from tests.browser import free_port
    from tests.room import session_processes

    command = [sys.executable, "-m", "kandinsky_lab.serve", "--gpus-per-replica", "1", "--cpus", "1", "--port", str(free_port())]
    # and it starts a Ray of its own even where a killed `ray start` left its address behind (a short temporary
    # folder: Ray's socket paths must fit in 107 characters)
    ray_tmp = Path(tempfile.mkdtemp(prefix="kl-ray-", dir="/tmp"))
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:9")
    started = time.monotonic()
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and "need 1 GPUs, and this Ray cluster has 0" in err and "--gpus-per-replica 0" in err, err[-1500:]
        assert time.monotonic() - started < 60  # it does not wait for a GPU
        deadline = time.monotonic() + 10
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not session_processes(proc.pid)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.mark.browser
def test_the_app_with_a_server_makes_every_kernel_a_thin_client(server, browser, tmp_path):
    """`make app SERVER=…`: two visitors of the Voila app get their pictures from the room's server, and
    neither visitor's kernel loaded torch (no libtorch among its memory maps) or a copy of the model."""
    from playwright.sync_api import expect

    from tests.browser import kernel_processes, start_voila

    app = start_voila(tmp_path, env={"KANDINSKY_LAB_SOURCE": server.address, "KANDINSKY_LAB_TOKEN": ROOM_CODE})
    try:
        visitors = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
        pages = [v.new_page() for v in visitors]
        for page in pages:
            page.goto(app.url, timeout=120_000)
        for page in pages:
            panel = page.locator(".kl-panel-texttoimagepanel")
            expect(panel.locator(".kl-generate-button")).to_be_visible(timeout=120_000)
            panel.locator(".kl-generate-button").click()
        for i, page in enumerate(pages):
            panel = page.locator(".kl-panel-texttoimagepanel")
            expect(panel.locator(".kl-status")).to_contain_text("done: 1 image(s)", timeout=120_000)
            expect(panel.locator("img.kl-result-image")).to_be_visible()
            page.screenshot(path=str(tmp_path / f"room-visitor-{i}.png"))
        found = kernel_processes(app)
        assert len(found) == 2
        for kernel in found:
            maps = [m.path for m in kernel.memory_maps()]
            assert not [m for m in maps if "libtorch" in m], "a visitor's kernel loaded torch"
            assert kernel.memory_info().rss < 300 * 2**20
        for v in visitors:
            v.close()
    finally:
        app.stop()
