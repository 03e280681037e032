"""Helpers for the real-browser tests: servers on 127.0.0.1 that always stop, and an offline Chromium.

Servers (JupyterLab, Voila) run on a temporary copy of the notebooks, with their own settings,
workspace and runtime folders, so the tests change nothing in the repository or the user's setup.
Chromium is Debian's (/usr/bin/chromium), driven by Playwright, and kept off the network: every host
name but 127.0.0.1 resolves to nothing and any other traffic goes to a dead loopback proxy.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TOKEN = "kl-browser-test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1",
]
# JupyterLab's news and update checks, off: nothing but 127.0.0.1 is reached.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workspace(tmp: Path, notebooks: list[str]) -> dict:
    """Copy notebooks into tmp/nb and make isolated Jupyter folders; returns the environment to use."""
    (tmp / "nb").mkdir(parents=True)
    for name in notebooks:  # "NN_name.ipynb" from notebooks/, or a path from the repository root (the app)
        shutil.copy(ROOT / name if "/" in name else ROOT / "notebooks" / name, tmp / "nb" / Path(name).name)
    (tmp / "config" / "labconfig").mkdir(parents=True)
    (tmp / "config" / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
    return {
        **os.environ,
        "KANDINSKY_LAB_SOURCE": "nano",
        "JUPYTER_TOKEN": TOKEN,
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
    }


class Server:
    """A server process in its own session; `stop()` ends it and every process it started (kernels)."""

    def __init__(self, args: list[str], cwd: Path, env: dict, port: int, ready_path: str, timeout_s: float = 90, log_dir: Path | None = None):
        self.port = port
        self.log_path = (log_dir or cwd) / f"server-{port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{self.url}{ready_path}", timeout=5)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"server on port {port} did not start: {self.log_path.read_text()[-3000:]}")
                time.sleep(0.3)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> list[int]:
        """Stop the server and its children; returns the pids still alive afterwards (should be none)."""
        try:
            family = [self.proc] + psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = [self.proc]
        pids = [p.pid for p in family]
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        deadline = time.monotonic() + 10
        while (alive := [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        self.log.close()
        return alive


def start_lab(tmp: Path, notebooks: list[str]) -> Server:
    env, port = workspace(tmp, notebooks), free_port()
    args = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={tmp / 'nb'}", "--ServerApp.allow_root=True", "--LabApp.extension_manager=readonly",
    ]  # fmt: skip
    return Server(args, tmp, env, port, f"/api/status?token={TOKEN}")


def start_voila(tmp: Path, notebook: str = "app/playground.ipynb", cull_s: int = 600, env: dict | None = None) -> Server:
    """Voila as `make app` runs it (its template, idle kernels culled after `cull_s`), on a copy of `notebook`;
    `env` adds to the kernels' environment (e.g. KANDINSKY_LAB_SOURCE: a room server, as `make app SERVER=…`)."""
    env, port = workspace(tmp, [notebook]) | (env or {}), free_port()
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(ROOT / "app"), env.get("JUPYTER_PATH")]))
    args = [
        sys.executable, "-m", "voila", str(tmp / "nb" / Path(notebook).name), "--no-browser", f"--port={port}",
        "--Voila.ip=127.0.0.1", f"--Voila.root_dir={tmp / 'nb'}", "--template=kandinsky-lab",
        f"--MappingKernelManager.cull_idle_timeout={cull_s}", f"--MappingKernelManager.cull_interval={min(60, max(1, cull_s // 2))}",
        "--VoilaExecutor.iopub_timeout=120",
    ]  # fmt: skip
    return Server(args, tmp / "nb", env, port, "/voila/static/voila.js")  # a static file: "/" would start a kernel of its own


def kernel_processes(server: Server) -> list[psutil.Process]:
    """The kernels the server runs now."""
    try:
        children = psutil.Process(server.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for c in children:
        try:
            if "ipykernel_launcher" in " ".join(c.cmdline()):
                found.append(c)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            pass
    return found


def kernels(server: Server) -> int:
    """How many kernels the server runs now (one per open app page until culled)."""
    try:
        children = psutil.Process(server.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    def is_kernel(process) -> bool:
        try:
            return "ipykernel_launcher" in " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):  # a culled kernel exiting right now: not running
            return False

    return sum(1 for c in children if is_kernel(c))


def open_and_run_all(page, url: str, notebook: str) -> None:
    """Open `notebook` in JupyterLab at `url` and start Run All Cells (returns once the first cell runs)."""
    from playwright.sync_api import expect

    page.goto(f"{url}/lab/tree/{notebook}?token={TOKEN}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute("data-status", "idle", timeout=60_000)
    first_prompt = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first
    for attempt in range(3):  # a click that lands while the notebook is still settling runs nothing: try again
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        try:
            expect(first_prompt).to_contain_text(re.compile(r"\[(\*|\d+)\]"), timeout=20_000)
            return
        except AssertionError:
            if attempt == 2:
                raise


IMAGE_JS = """(el) => {
    const img = el.tagName === 'IMG' ? el : el.querySelector('img');
    if (!img || !img.complete || img.naturalWidth === 0) return null;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 4) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return {width: img.naturalWidth, height: img.naturalHeight, colours: colours.size};
}"""


def read_image(page, selector: str) -> dict | None:
    """Width, height and number of distinct colours of the picture the page shows at `selector`."""
    return page.locator(selector).first.evaluate(IMAGE_JS)
