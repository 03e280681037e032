"""What a learner sees in the notebooks, beyond nbval's checked text: a quiet load cell, pictures that differ."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


def run_until(path: Path, last: str) -> list:
    """Run a notebook's cells in a fresh kernel up to the first code cell containing `last`; return the cells run."""
    nb = nbformat.read(path, as_version=4)
    end = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and last in c.source)
    nb.cells = [c for c in nb.cells[: end + 1] if c.cell_type == "code"]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb.cells


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_the_load_cell_writes_nothing_to_stderr(path):
    cells = run_until(path, "kl.load(")
    stderr = [o.get("text", "") for c in cells for o in c.outputs if o.get("name") == "stderr"]
    assert stderr == [], stderr
