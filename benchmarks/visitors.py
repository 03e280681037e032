"""`python -m benchmarks.visitors`: how many visitors one machine serves with `make app` — measured in a browser.

Writes the "visitors" section of benchmarks/results.md. The app runs as `make app` serves it (Voila, the
kit's template, one kernel and one copy of the model per page). For N = 1, 2, 4, 8, 16 visitors (each a
Chromium context of its own, Debian's Chromium through Playwright, as the browser tests drive it):

    arrive      all N pages opened at once: seconds until every page's Generate button shows (kernel
                start, imports, the model loaded)
    memory      the proportional set size (PSS: shared pages split between the processes sharing them)
                of the Voila server and its kernels, in all and per visitor
    pictures    every visitor presses Generate at the same moment with the panel's defaults, ROUNDS
                times: seconds from the click to "done" on each page, and pictures per minute in all

The model is whatever the app loads on this machine (nano on a CPU, the real one on a GPU); the browsers
run on the same machine here, where at a workshop they would be on the visitors' laptops.
"""

import statistics
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks import sections
from tests.browser import CHROMIUM, CHROMIUM_ARGS, kernels, start_voila

VISITORS = (1, 2, 4, 8, 16)
ROUNDS = 3
TIMEOUT_S = 600


def pss_gib(server) -> tuple[float, int]:
    """(PSS of the server and its kernels in GiB, the number of kernels)."""
    family = [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(recursive=True)]
    return sum(p.memory_full_info().pss for p in family) / 2**30, kernels(server)


def wait_for(pages, done, since: list[float], timeout_s: float = TIMEOUT_S) -> list[float]:
    """Poll every page until `done(page)`; the seconds each took since its time in `since`."""
    started, took = time.monotonic(), [None] * len(pages)
    while None in took:
        for i, page in enumerate(pages):
            if took[i] is None and done(page):
                took[i] = time.monotonic() - since[i]
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{took.count(None)} of {len(pages)} pages did not finish in {timeout_s} s")
        time.sleep(0.1)
    return took


def panel(page):
    return page.locator(".kl-panel-texttoimagepanel")


def finished(page, pictures: int) -> bool:
    """The page's run is done and its gallery holds `pictures` cards."""
    return panel(page).locator(".kl-status").inner_text().startswith("done") and page.locator(".kl-gallery-card").count() == pictures


def visit(browser, n: int) -> dict:
    """N visitors on one fresh app server: arrival, memory and seconds per picture."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start_voila(Path(tmp))
        contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(n)]
        try:
            idle_gib, _ = pss_gib(server)
            pages = [context.new_page() for context in contexts]
            opened = []
            for page in pages:
                opened.append(time.monotonic())
                page.goto(server.url, wait_until="commit", timeout=TIMEOUT_S * 1000)
            arrive = wait_for(pages, lambda p: panel(p).locator(".kl-generate-button").is_visible(), opened)
            seconds, walls = [], []
            for round_ in range(ROUNDS):
                clicked = []
                for page in pages:
                    clicked.append(time.monotonic())
                    panel(page).locator(".kl-generate-button").click()
                took = wait_for(pages, lambda p, cards=round_ + 1: finished(p, cards), clicked)
                seconds.extend(took)
                walls.append(max(c + t for c, t in zip(clicked, took)) - clicked[0])
                if round_ == 0:
                    busy_gib, count = pss_gib(server)
            if count != n:
                raise RuntimeError(f"{n} visitors but {count} kernels")
            return {"n": n, "arrive": max(arrive), "idle": idle_gib, "memory": busy_gib, "seconds": statistics.median(seconds), "slowest": max(seconds), "per_minute": n * ROUNDS * 60 / sum(walls)}
        finally:
            for context in contexts:
                context.close()
            server.stop()


def section(rows: list[dict], device: str, seconds: float) -> list[str]:
    one = rows[0]
    lines = [
        "## Visitors of the app",
        "",
        f"`python -m benchmarks.visitors` on {device}: `make app`'s Voila server with N visitors at once, each in a "
        "Chromium context of its own on the same machine. Each page loads its own kernel and copy of the model; "
        f"every visitor presses Generate at the same moment with the panel's defaults, {ROUNDS} times. "
        f"Memory is the PSS (shared pages split) of the server and its kernels. {seconds / 60:.1f} min in all.",
        "",
        "| visitors | all pages ready after | memory in all | per visitor | seconds per picture (median / slowest) | pictures per minute, all visitors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        per = (row["memory"] - one["idle"]) / row["n"]
        lines.append(f"| {row['n']} | {row['arrive']:.0f} s | {row['memory']:.2f} GiB | {per:.2f} GiB | {row['seconds']:.1f} / {row['slowest']:.1f} s | {row['per_minute']:.0f} |")
    busiest, last = max(rows, key=lambda r: r["per_minute"]), rows[-1]
    per_visitor = (last["memory"] - one["idle"]) / last["n"]
    lines += [
        "",
        f"Read as: the machine makes at most about {busiest['per_minute']:.0f} pictures a minute however many visitors share it "
        f"(reached at {busiest['n']}); beyond that each visitor waits longer — {last['seconds']:.0f} s a picture with {last['n']} "
        f"clicking at once, against {one['seconds']:.1f} s alone. Memory is not the limit: {per_visitor:.2f} GiB a visitor. "
        "Visitors rarely click in step, so a room is kinder than these rows.",
    ]
    return lines


def main(visitors: tuple[int, ...] = VISITORS, write: bool = True) -> None:
    from playwright.sync_api import sync_playwright

    import torch

    device = f"{torch.cuda.get_device_name()} (GPU)" if torch.cuda.is_available() else f"this machine's {psutil.cpu_count()}-core CPU ({psutil.virtual_memory().total / 2**30:.0f} GiB RAM), nano"
    started = time.monotonic()
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for n in visitors:
            rows.append(visit(browser, n))
            print(rows[-1], flush=True)
        browser.close()
    lines = section(rows, device, time.monotonic() - started)
    if write:
        sections.write("visitors", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, nargs="+", default=list(VISITORS), help="the numbers of visitors to measure")
    parser.add_argument("--dry-run", action="store_true", help="print the table, leave results.md as it is")
    arguments = parser.parse_args()
    main(tuple(arguments.visitors), write=not arguments.dry_run)
