"""`python -m benchmarks.visitors`: how many visitors one machine serves with `make app` — measured in a browser.

Writes the "visitors" section of benchmarks/results.md. The app runs as `make app` serves it (Voila, the
kit's template, one kernel and one copy of the model per page). For N = 1, 2, 4, 8, 16 visitors (each a
Chromium context of its own, Debian's Chromium through Playwright, as the browser tests drive it):

    arrive      all N pages opened at once: seconds until every page's Generate button shows (kernel
                start, imports, the model loaded)
    memory      the proportional set size (PSS: shared pages split between the processes sharing them)
                of the Voila server and its kernels, in all and per visitor
    pictures    every visitor presses Generate at the same moment with the panel's defaults and the seed
                unlocked (a new seed each time, so no run reuses the prior's cached embedding), ROUNDS
                times: seconds from the click to "done" on each page, and pictures per minute in all

The model is whatever the app loads on this machine (nano on a CPU, the real one on a GPU); the browsers
run on the same machine here, where at a workshop they would be on the visitors' laptops.

`--kernels` measures the same without a browser or Voila, for a GPU machine that has neither: each visitor
is a kernel running the app page's code (what Voila runs for a page load), and Generate is pressed through
the widget (`.click()`), in all kernels at once. Memory is then also the GPU's (used memory before and
after, CUDA contexts included), and "all pages ready after" counts from the kernels' start, as a page load
does. On a CPU both ways are measured, so they can be compared. On a lent GPU,
after benchmarks/real_scale.py has filed the replica (`--root /tmp/rs --keep`), with the carried wheels
(anywidget and psygnal among them: the playground's mask painter) on PYTHONPATH:

    HF_HUB_CACHE=/tmp/rs/gpu HF_HUB_OFFLINE=1 KANDINSKY_LAB_SOURCE=kandinsky-2-2 \
        python -m benchmarks.visitors --kernels --visitors 1 4 8
"""

import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

from benchmarks import sections
from tests.browser import CHROMIUM, CHROMIUM_ARGS, kernels, start_voila

ROOT = Path(__file__).resolve().parents[1]
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
            for page in pages:
                panel(page).locator(".kl-seed-lock input").uncheck()  # a new seed on every Generate
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


# What a kernel runs for one round: Generate on the text→image panel, then wait for the run to end.
CLICK = """
import time as _time
_panel = _app.playground.text_to_image
_start = _time.perf_counter()
_panel.run.generate_button.click()
_panel.run.wait(600)
_took = _time.perf_counter() - _start
_status = _panel.run.status.value
"""


def gpu_used_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**30


def execute_all(clients, code: str, expressions: dict | None = None) -> list[dict]:
    """Send `code` to every kernel at once, then collect each one's execute_reply (raising on an error)."""
    ids = [kc.execute(code, user_expressions=expressions or {}) for kc in clients]
    replies = []
    for kc, msg_id in zip(clients, ids):
        while True:
            reply = kc.get_shell_msg(timeout=TIMEOUT_S)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"a visitor's kernel failed: {reply['content'].get('ename')}: {reply['content'].get('evalue')}")
        replies.append(reply)
    return replies


def page_code() -> str:
    """The app page's code (app/playground.ipynb) with the page — its last expression — kept as `_app`."""
    import ast

    code = next(c.source for c in nbformat.read(ROOT / "app" / "playground.ipynb", as_version=4).cells if c.cell_type == "code")
    last = ast.parse(code).body[-1]
    if not isinstance(last, ast.Expr):
        raise ValueError("app/playground.ipynb's code cell should end with the page it shows")
    lines = code.splitlines()
    return "\n".join(lines[: last.lineno - 1] + ["_app = " + ast.get_source_segment(code, last.value)])


def kernel_visit(n: int, also_measure=None) -> dict:
    """N visitors as N kernels running the app page's code, Generate pressed through the widget.
    `also_measure()`, if given, adds GiB to the memory at the moment the kernels' is measured (a room's server)."""
    from jupyter_client.manager import start_new_kernel

    app_code = page_code()
    with tempfile.TemporaryDirectory() as tmp:
        gpu_before = gpu_used_gib()
        opened = time.monotonic()  # as a page load: the kernel starts, then runs the page's code
        kernels = [start_new_kernel(kernel_name="python3", cwd=tmp) for _ in range(n)]
        managers, clients = [km for km, _ in kernels], [kc for _, kc in kernels]
        try:
            execute_all(clients, app_code)
            arrive = time.monotonic() - opened  # every kernel has built its page (the model loaded)
            execute_all(clients, "_app.playground.text_to_image.sampling.seed.lock.value = False")  # a new seed on every Generate
            seconds, walls = [], []
            for round_ in range(ROUNDS):
                clicked = time.monotonic()
                replies = execute_all(clients, CLICK, {"took": "_took", "status": "_status"})
                walls.append(time.monotonic() - clicked)
                for reply in replies:
                    found = reply["content"]["user_expressions"]
                    if not found["status"]["data"]["text/plain"].strip("'\"").startswith("done"):
                        raise RuntimeError(f"a visitor's run did not finish: {found['status']['data']['text/plain']}")
                    seconds.append(float(found["took"]["data"]["text/plain"]))
                if round_ == 0:
                    pids = [km.provisioner.process.pid for km in managers]
                    memory = sum(psutil.Process(pid).memory_full_info().pss for pid in pids) / 2**30
                    if also_measure is not None:
                        memory += also_measure()
                    gpu_after = gpu_used_gib()
            row = {"n": n, "arrive": arrive, "idle": 0.0, "memory": memory, "seconds": statistics.median(seconds), "slowest": max(seconds), "per_minute": n * ROUNDS * 60 / sum(walls)}
            if gpu_before is not None:
                row["gpu"] = gpu_after - gpu_before
            return row
        finally:
            for kc in clients:
                kc.stop_channels()
            for km in managers:
                km.shutdown_kernel(now=True)


def table(rows: list[dict]) -> list[str]:
    one, gpu = rows[0], "gpu" in rows[0]
    lines = [
        "| visitors | all pages ready after | memory in all | per visitor |" + (" GPU memory in all |" if gpu else "") + " seconds per picture (median / slowest) | pictures per minute, all visitors |",
        "| --- | --- | --- | --- |" + (" --- |" if gpu else "") + " --- | --- |",
    ]
    for row in rows:
        per = (row["memory"] - one["idle"]) / row["n"]
        on_gpu = f" {row['gpu']:.1f} GiB |" if gpu else ""
        lines.append(f"| {row['n']} | {row['arrive']:.0f} s | {row['memory']:.2f} GiB | {per:.2f} GiB |{on_gpu} {row['seconds']:.1f} / {row['slowest']:.1f} s | {row['per_minute']:.0f} |")
    return lines


def section(rows: list[dict], device: str, seconds: float) -> list[str]:
    one = rows[0]
    lines = [
        "## Visitors of the app",
        "",
        f"`python -m benchmarks.visitors` on {device}: `make app`'s Voila server with N visitors at once, each in a "
        "Chromium context of its own on the same machine. Each page loads its own kernel and copy of the model; "
        f"every visitor presses Generate at the same moment with the panel's defaults (25 prior + 50 decoder steps) and a new seed each time, {ROUNDS} times. "
        f"Memory is the PSS (shared pages split) of the server and its kernels. {seconds / 60:.1f} min in all.",
        "",
        *table(rows),
    ]
    last = rows[-1]
    shared = [r["per_minute"] for r in rows if r["n"] >= 2] or [one["per_minute"]]
    per_visitor = (last["memory"] - one["idle"]) / last["n"]
    memory = (
        "GPU memory is not measured in this mode: `--kernels` measures it"
        if "(GPU)" in device
        else f"Memory is not the limit: {per_visitor:.2f} GiB a visitor"
    )
    lines += [
        "",
        f"Read as: from two visitors on the machine is busy and makes {min(shared):.0f}–{max(shared):.0f} pictures a minute in all, "
        f"however many share it; each visitor's wait grows with the room — {last['seconds']:.0f} s a picture with {last['n']} "
        f"clicking at once, against {one['seconds']:.1f} s alone. {memory}. "
        "Here the browsers share the machine with the server (at a workshop they run on the visitors' laptops), and "
        "visitors rarely click in step, so a room is kinder than these rows.",
    ]
    return lines


def kernels_section(rows: list[dict], device: str, seconds: float | None) -> list[str]:
    """The `--kernels` table; `seconds` None when the rows were measured in several commands (a GPU loan's parts)."""
    took = f" {seconds / 60:.1f} min in all." if seconds is not None else " Each row was measured by a command of its own."
    return [
        f"## Visitors of the app, without a browser: `--kernels` on {device}",
        "",
        "Each visitor a kernel running the app page's code, Generate pressed through the widget in all kernels at once, a new seed each time "
        f"({ROUNDS} rounds); memory is the kernels' PSS" + (" and the GPU's used memory (CUDA contexts included)" if "gpu" in rows[0] else "")
        + f"; seconds are measured inside each kernel, from the click to the run's end.{took}",
        "",
        *table(rows),
    ]


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (GPU)"
    return f"this machine's {psutil.cpu_count()}-core CPU ({psutil.virtual_memory().total / 2**30:.0f} GiB RAM), nano"


def main(visitors: tuple[int, ...] = VISITORS, write: bool = True, kernels_only: bool = False) -> None:
    started = time.monotonic()
    if kernels_only:
        rows = []
        for n in visitors:
            rows.append(kernel_visit(n))
            print(rows[-1], flush=True)
        lines = kernels_section(rows, device_name(), time.monotonic() - started)
        name = "visitors_kernels_gpu" if "(GPU)" in device_name() else "visitors_kernels"  # the CPU's and a GPU's, side by side
    else:
        from playwright.sync_api import sync_playwright

        rows = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for n in visitors:
                rows.append(visit(browser, n))
                print(rows[-1], flush=True)
            browser.close()
        lines = section(rows, device_name(), time.monotonic() - started)
        name = "visitors"
    if write:
        sections.write(name, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, nargs="+", default=list(VISITORS), help="the numbers of visitors to measure")
    parser.add_argument("--dry-run", action="store_true", help="print the table, leave results.md as it is")
    parser.add_argument("--kernels", action="store_true", help="visitors as kernels, without a browser or Voila (a GPU machine)")
    arguments = parser.parse_args()
    main(tuple(arguments.visitors), write=not arguments.dry_run, kernels_only=arguments.kernels)
