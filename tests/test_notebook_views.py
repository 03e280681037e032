"""What a learner sees in the notebooks, beyond nbval's checked text: a quiet load cell, pictures that differ."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


def run_until(path: Path, last: str, then: str | None = None) -> list:
    """Run a notebook's cells in a fresh kernel up to the first code cell containing `last`, and `then`; return the cells run."""
    nb = nbformat.read(path, as_version=4)
    end = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and last in c.source)
    nb.cells = [c for c in nb.cells[: end + 1] if c.cell_type == "code"] + ([nbformat.v4.new_code_cell(then)] if then else [])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb.cells


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_the_load_cell_writes_nothing_to_stderr(path):
    cells = run_until(path, "kl.load(")
    stderr = [o.get("text", "") for c in cells for o in c.outputs if o.get("name") == "stderr"]
    assert stderr == [], stderr


def test_the_strength_sweep_of_notebook_02_shows_pictures_that_differ():
    """Ten identical pictures teach nothing: the sweep's prompt disagrees with its start image."""
    check = (
        "import numpy as np\n"
        "px = lambda r, c: np.asarray(strengths.cells[r][c].image, dtype=float)\n"
        "print([round(float(np.abs(px(r, 0) - px(r, 4)).mean()), 1) for r in (0, 1)])"
    )
    cells = run_until(NOTEBOOKS[2], "strengths.grid", then=check)
    weakest_vs_strongest = eval(cells[-1].outputs[0]["text"])
    assert min(weakest_vs_strongest) > 30, weakest_vs_strongest  # mean change per channel out of 255


def test_notebook_04_prints_numbers_in_lines_that_do_not_wrap():
    """JupyterLab breaks an output line anywhere once it is wider than the page, numbers included."""
    cells = run_until(NOTEBOOKS[4], "change per step")
    lines = [line for o in cells[-1].outputs if o.get("name") == "stdout" for line in o["text"].splitlines()]
    assert len(lines) >= 3 and max(map(len, lines)) <= 100, lines


def test_notebook_04_guidance_is_one_grid_with_a_row_per_scale_and_a_line_on_what_to_look_for():
    nb = nbformat.read(NOTEBOOKS[4], as_version=4)
    assert any("kl.guidance_grid(" in c.source for c in nb.cells if c.cell_type == "code")
    assert any("What to look for" in c.source for c in nb.cells if c.cell_type == "markdown")
