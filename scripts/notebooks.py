"""Keep notebooks in the project's stored form: `python scripts/notebooks.py refresh [NOTEBOOK ...]`.

Every notebook opens with the same Colab install cell, written here from pyproject.toml (the
repository address in [project.urls] and the release tag v{version}): `refresh` puts it in place, and
`python scripts/notebooks.py install-cell` rewrites only that cell in every notebook, without running them.

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
import tomllib
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"
INSTALL_CELL = """\
# Colab only: install the kit release this notebook belongs to, keeping Colab's own torch.
# Elsewhere this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import torch  # Colab's build: pinned below, so pip never replaces it

    KIT_REPO = "{repository}"  # pyproject.toml: [project.urls] Repository
    KIT_REF = "v{version}"  # the release tag of this notebook's version
    KIT_DIR = "/content/kandinsky-lab"
    !git clone --quiet --depth 1 --branch {{KIT_REF}} {{KIT_REPO}} {{KIT_DIR}}
    %pip install --quiet {{KIT_DIR}} torch=={{torch.__version__}}"""


def install_cell() -> str:
    """The Colab install cell for this checkout's pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return INSTALL_CELL.format(repository=project["urls"]["Repository"], version=project["version"])


def put_install_cell(nb) -> None:
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    first.source = install_cell()


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
    put_install_cell(nb)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    took = time.perf_counter() - start
    strip(nb)
    nbformat.write(nb, path)
    return took


if __name__ == "__main__":
    os.environ.setdefault("KANDINSKY_LAB_SOURCE", "nano")
    os.environ.setdefault("KANDINSKY_LAB_TRAIN_STEPS", "8")  # as tests/conftest.py: the checked outputs of notebook 09 are the suite's
    if len(sys.argv) < 2 or sys.argv[1] not in ("refresh", "install-cell"):
        sys.exit(__doc__)
    paths = [Path(p) for p in sys.argv[2:]] or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
    for p in paths:
        if sys.argv[1] == "install-cell":
            nb = nbformat.read(p, as_version=4)
            put_install_cell(nb)
            nbformat.write(nb, p)
            print(f"{p.name}: install cell written")
        else:
            print(f"{p.name}: ran in {refresh(p.resolve()):.1f} s")
