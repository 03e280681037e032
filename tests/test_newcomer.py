"""A newcomer's first minutes: the JupyterLab that `make lab` starts (scripts/lab.sh, nobody's settings) runs
notebook 01 in Chromium with nothing popping up and nothing reached but 127.0.0.1."""

import re
import sys
from pathlib import Path

import pytest

from .browser import CHROMIUM
from .newcomer import chromium_page, first_picture, notebooks_copy, outside_hosts, popups, watched_lab

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "01_text_to_image.ipynb"


def test_the_lab_make_lab_starts_runs_notebook_01_with_no_popup_and_no_outside_request(tmp_path):
    from playwright.sync_api import expect

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    folder = notebooks_copy(tmp_path, [NOTEBOOK])
    command = ["bash", str(ROOT / "scripts" / "lab.sh"), sys.executable, "{port}"]
    with watched_lab(folder, command, home=tmp_path / "home") as lab, chromium_page() as page:
        first_picture(page, lab.url, NOTEBOOK)
        code_cells = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
        expect(code_cells.last).to_contain_text(re.compile(r"\[\d+\]"), timeout=240_000)  # the last cell ran: the whole notebook did
        expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute("data-status", "idle", timeout=240_000)
        page.screenshot(path=str(tmp_path / "newcomer-lab.png"), full_page=True)  # under pytest's temporary folder only
        assert popups(page) == [], popups(page)
        assert outside_hosts(page) == set(), outside_hosts(page)
        assert page.errors == [], page.errors
    assert lab.outside == set(), lab.outside
    log = lab.server.log_path.read_text()
    assert "announcements" not in log.lower() and "Traceback" not in log, log[-3000:]
