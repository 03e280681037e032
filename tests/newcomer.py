"""A newcomer's JupyterLab: started the way `make lab` starts it, on a machine with nobody's Jupyter settings.

    with watched_lab(folder, command) as lab:          # folder holds notebooks/ (a fresh clone, or a copy)
        with Chromium() as page:
            seconds = first_picture(page, lab.url, "01_text_to_image.ipynb")
        lab.outside                                    # every address but 127.0.0.1 the lab's processes reached

`command` is `make lab` (the benchmark, in a fresh clone) or scripts/lab.sh (the test). Home-made Jupyter
folders (config, settings, workspaces, runtime) are empty, as on a new machine, and the kit's own defaults are
all the lab has: nothing of the tests' page_config (tests/browser.py) is used here. While the lab runs, a
thread reads the network connections of the server and its kernels every 0.2 s; the page's own requests are
read by Playwright.
"""

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import psutil

from .browser import CHROMIUM, CHROMIUM_ARGS, TOKEN, Server, free_port, open_and_run_all

LOCAL = {"127.0.0.1", "::1", "localhost"}
POPUP_TEXT = "official Jupyter news"


def newcomer_env(home: Path) -> dict:
    """The environment of a first `make lab`: empty Jupyter folders under `home`, a known token, no browser opened."""
    return {
        **os.environ,
        "JUPYTER_TOKEN": TOKEN,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "LAB_NO_BROWSER": "1",
    }


class Watched:
    """The lab's server, and the outside addresses its processes connected to while it ran."""

    def __init__(self, server: Server):
        self.server, self.outside = server, set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self.server.url

    def _watch(self) -> None:
        while not self._done.wait(0.2):
            try:
                family = [psutil.Process(self.server.proc.pid)] + psutil.Process(self.server.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for process in family:
                try:
                    for c in process.net_connections(kind="inet"):
                        if c.raddr and c.raddr.ip not in LOCAL:
                            self.outside.add(f"{c.raddr.ip}:{c.raddr.port}")
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    pass

    def stop(self) -> list[int]:
        self._done.set()
        self._thread.join()
        return self.server.stop()


@contextmanager
def watched_lab(folder: Path, command: list[str], home: Path, timeout_s: float = 90):
    """Run `command` in `folder` ("{port}" in it: a free port JupyterLab is to listen on), its Jupyter folders empty
    ones under `home`; yields a Watched. The server's log is `home`/server-PORT.log."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    home.mkdir(parents=True, exist_ok=True)
    server = Server(command, folder, newcomer_env(home), port, f"/api/status?token={TOKEN}", timeout_s=timeout_s, log_dir=home)
    watched = Watched(server)
    try:
        yield watched
    finally:
        watched.stop()


def host(url: str) -> str | None:
    """The host a URL reaches: a blob: URL's is its origin's; data: and about: reach none."""
    scheme = url.split(":", 1)[0]
    if scheme in ("data", "about"):
        return None
    return urlparse(url[len("blob:") :] if scheme == "blob" else url).hostname or url


@contextmanager
def chromium_page():
    """A Chromium page that records the hosts it asks for (page.hosts) and its errors (page.errors)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.hosts, page.errors = set(), []
            page.on("request", lambda request: page.hosts.add(host(request.url)))
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            yield page
        finally:
            browser.close()


def first_picture(page, url: str, notebook: str, timeout_s: float = 120) -> float:
    """Open `notebook`, Run All Cells, and wait for its first picture; returns the seconds from opening the page."""
    opened = time.monotonic()
    open_and_run_all(page, url, notebook)
    page.locator(".jp-OutputArea-output img").first.wait_for(state="visible", timeout=timeout_s * 1000)
    return time.monotonic() - opened


def popups(page) -> list[str]:
    """The texts of the notifications JupyterLab shows (its toasts), and the news question wherever it is."""
    found = [t.strip() for t in page.locator(".Toastify__toast").all_inner_texts() if t.strip()]
    if POPUP_TEXT in page.content() and not any(POPUP_TEXT in t for t in found):
        found.append(POPUP_TEXT)
    return found


def outside_hosts(page) -> set[str]:
    """The hosts other than this machine that the page asked for."""
    return {h for h in page.hosts if h is not None and h not in LOCAL}


def notebooks_copy(tmp: Path, names: list[str]) -> Path:
    """tmp/notebooks holding copies of `names` from the repository's notebooks/ (what lab.sh serves)."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    (tmp / "notebooks").mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(root / "notebooks" / name, tmp / "notebooks" / name)
    return tmp
