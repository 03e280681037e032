"""A newcomer's first picture: fresh clone → `make lab` → notebook 01's first picture in Chromium, timed.

    python -m benchmarks.newcomer               # writes results.md "A newcomer's first picture"
    python -m benchmarks.newcomer --then-test   # and then `make test` from that same set-up

What a new user does on a fresh machine: clone this repository (its committed HEAD), run `make lab` with a
cold package cache (PIP_NO_CACHE_DIR=1 and UV_NO_CACHE=1: every package downloaded, the honest stand-in for
a machine that never installed them), open notebook 01 in the browser, Run All. Their browser is already
running (Chromium is started before the clock), and their Jupyter folders are empty (tests/newcomer.py).
The split: clone, set-up (until `make lab`'s venv is ready, .venv/.lab-ready), the lab starting, and the
notebook until its first picture shows (kernel, imports, model, first generation). Alongside: whether a
notification popped up, and any request beyond 127.0.0.1. Run it alone on the machine.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import sections
from tests.newcomer import chromium_page, first_picture, outside_hosts, popups, watched_lab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "01_text_to_image.ipynb"
GOAL_S = 60


def newcomer(folder: Path, home: Path) -> dict:
    started = time.time()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    cloned = time.time()
    os.environ |= {"PIP_NO_CACHE_DIR": "1", "UV_NO_CACHE": "1"}  # make lab's children inherit a cold cache
    with chromium_page() as page:
        lab_started = time.time()
        with watched_lab(folder, ["make", "lab", "LAB_PORT={port}"], home=home, timeout_s=900) as lab:
            lab_ready = time.time()
            set_up = (folder / ".venv" / ".lab-ready").stat().st_mtime
            to_picture = first_picture(page, lab.url, NOTEBOOK)
            pictured = time.time()
            shown, outside = popups(page), outside_hosts(page) | lab.outside
    return {
        "clone": cloned - started,
        "set-up": set_up - lab_started,
        "lab start": lab_ready - set_up,
        "notebook to first picture": to_picture,
        "total": pictured - started,
        "popups": shown,
        "outside": sorted(outside),
    }


def then_test(folder: Path) -> tuple[int, float]:
    """`make test` in the clone, as a user runs it: its set-up on top of the lab's, with the package caches back
    (the Colab test's stand-in installs would otherwise download everything again)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_NO_CACHE_DIR", "UV_NO_CACHE")}
    started = time.monotonic()
    code = subprocess.run(["make", "test"], cwd=folder, env=env).returncode
    return code, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--then-test", action="store_true", help="run `make test` in the clone afterwards (its set-up adds what the tests need)")
    parser.add_argument("--dry-run", action="store_true", help="print the section instead of writing results.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kl-newcomer-") as tmp:
        folder = Path(tmp) / "kandinsky-lab"
        row = newcomer(folder, Path(tmp) / "home")
        print(row, flush=True)
        test = then_test(folder) if args.then_test else None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [
        "## A newcomer's first picture: fresh clone → `make lab` → notebook 01 in Chromium, this machine (2 cores), cold package cache",
        "",
        f"`python -m benchmarks.newcomer`, commit {commit}. `git clone`, then `make lab` with PIP_NO_CACHE_DIR=1 and UV_NO_CACHE=1 "
        "(every package downloaded), then notebook 01 opened in Chromium (already running) and Run All until its first picture "
        "shows. Set-up is `make lab`'s install (a venv, uv, torch's CPU wheel, the kit and its packages: `.venv/.lab-ready`); "
        "the test set-up (`make test`: the test and serve extras, Colab's ipywidgets) comes after it, only for `make test`.",
        "",
        "| clone | set-up | lab start | notebook to first picture | clone → first picture | goal |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {row['clone']:.1f} s | {row['set-up']:.1f} s | {row['lab start']:.1f} s | {row['notebook to first picture']:.1f} s | "
        f"**{row['total']:.0f} s** | ≤ {GOAL_S} s: {'met' if row['total'] <= GOAL_S else 'not met'} |",
        "",
        f"Popups in JupyterLab: {', '.join(row['popups']) or 'none'}. Requests beyond 127.0.0.1 (the page's, and the lab's "
        f"processes' connections): {', '.join(row['outside']) or 'none'}. Before this round (2026-12-06, pip): 149 s, "
        "`make env` 128 s of it.",
    ]
    if test is not None:
        code, seconds = test
        lines += ["", f"`make test` from that set-up: {'passed' if code == 0 else f'FAILED (exit {code})'} in {seconds / 60:.1f} min."]
    if args.dry_run:
        print("\n".join(lines))
    else:
        sections.write("newcomer", lines)
    if test is not None and test[0] != 0:
        sys.exit(test[0])


if __name__ == "__main__":
    main()
