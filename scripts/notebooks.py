"""Keep notebooks in the project's stored form: `python scripts/notebooks.py refresh [NOTEBOOK ...]`.

Stored form: no outputs and no execution counts, except in cells that start with
`# NBVAL_CHECK_OUTPUT`. Those keep their small text output (stdout and text/plain only) as the
reference that `pytest --nbval-lax` compares against, and an execution count (nbval does not
compare cells without one). `refresh` runs each notebook on the offline model and stores it so.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(MARK)


def strip(nb) -> None:
    """Drop every output but the checked cells' text; number the checked cells 1, 2, …"""
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if is_checked(cell):
            count += 1
            cell.execution_count = count
            kept = []
            for out in cell.outputs:
                if out.output_type == "stream" and out.name == "stdout":
                    kept.append(out)
                elif out.output_type == "execute_result" and "text/plain" in out.data:
                    out.data = {"text/plain": out.data["text/plain"]}
                    out.metadata = {}
                    out.execution_count = count
                    kept.append(out)
            cell.outputs = kept
        else:
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)


def refresh(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    took = time.perf_counter() - start
    strip(nb)
    nbformat.write(nb, path)
    return took


if __name__ == "__main__":
    os.environ.setdefault("KANDINSKY_LAB_SOURCE", "nano")
    if len(sys.argv) < 2 or sys.argv[1] != "refresh":
        sys.exit(__doc__)
    paths = [Path(p) for p in sys.argv[2:]] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for p in paths:
        print(f"{p.name}: ran in {refresh(p.resolve()):.1f} s")
