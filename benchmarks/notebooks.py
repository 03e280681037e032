"""Time each notebook top to bottom on the offline model, as a learner's kernel would run it.

Each notebook runs in a fresh kernel (start-up and imports included), in notebooks/, without
saving anything. `python -m benchmarks.notebooks` prints the lessons' times; `benchmarks.run` puts them in
results.md. `python -m benchmarks.notebooks --solutions` times the worked solutions (notebooks/solutions/)
and writes their own section of results.md, which docs/workshop.md quotes.
"""

import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LIMIT_EACH_S, LIMIT_ALL_S = 60, 300


def time_notebooks(folder: Path = ROOT / "notebooks") -> list[tuple[str, float]]:
    os.environ.setdefault("KANDINSKY_LAB_SOURCE", "nano")
    times = []
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        times.append((path.name, time.perf_counter() - start))
    return times


def table(times: list[tuple[str, float]]) -> list[str]:
    total = sum(t for _, t in times)
    lines = ["| notebook | seconds | target |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {t:.1f} | ≤ {LIMIT_EACH_S} |" for name, t in times]
    lines.append(f"| **all notebooks** | **{total:.1f}** | ≤ {LIMIT_ALL_S} |")
    return lines


def solutions_section(times: list[tuple[str, float]]) -> list[str]:
    total = sum(t for _, t in times)
    return [
        "## Solution notebooks",
        "",
        "`python -m benchmarks.notebooks --solutions`: each worked-solutions notebook (notebooks/solutions/) top to bottom in a "
        "fresh kernel on nano, CPU only, as `pytest --nbval-lax` runs them in `make test`:",
        "",
        "| notebook | seconds |",
        "| --- | --- |",
        *[f"| `{name}` | {t:.1f} |" for name, t in times],
        f"| **all solutions** | **{total:.1f}** |",
    ]


if __name__ == "__main__":
    import sys

    if "--solutions" in sys.argv[1:]:
        from benchmarks import sections

        lines = solutions_section(time_notebooks(ROOT / "notebooks" / "solutions"))
        sections.write("solutions", lines)
        print("\n".join(lines))
    else:
        print("\n".join(table(time_notebooks())))
