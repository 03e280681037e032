"""Test the kit on the lowest versions it declares: `python scripts/lowest_versions.py [--venv DIR]`.

Reads the `>=` floors of pyproject.toml's dependencies, installs exactly those versions (`==floor`)
into a fresh virtual environment (default `.venv-lowest`), and runs the unit tests that need no
browser plus one notebook on nano there. torch is the exception: it is pinned to TORCH (the CPU wheel
the project's machines hold; an older torch is a multi-GB CUDA download here), and the floor it
declares is what Colab and the real-scale GPU runs check. Exit code: pytest's.
"""

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
TESTS = [
    "tests/test_generate.py",
    "tests/test_loading.py",
    "tests/test_metadata.py",
    "tests/test_samplers.py",
    "tests/test_hub.py",
    "tests/test_knowledge.py",
    "tests/test_sweeps_and_grids.py",
    "tests/test_widgets.py",
    "tests/test_batch.py",
    "tests/test_inpaint.py",
    "tests/test_inpaint_widgets.py",
    "tests/test_controlnet.py",
    "tests/test_controlnet_widgets.py",
    "tests/test_finetune.py",  # peft's floor with diffusers' adapter API
    "notebooks/01_text_to_image.ipynb",
]


def floors() -> list[str]:
    """`name==floor` for every dependency declared as `name>=floor` (torch excepted, see the docstring)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for spec in project["dependencies"]:
        name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", spec).groups()
        pins.append(TORCH if name == "torch" else f"{name}=={floor}")
    return pins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(ROOT / ".venv-lowest"))
    args = parser.parse_args()
    venv = Path(args.venv)
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    test_tools = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    subprocess.run([*pip, *floors(), *test_tools, "-e", str(ROOT)], check=True)  # one resolution: the pins hold
    versions = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True).stdout
    wanted = {p.split("==")[0].lower() for p in floors()}
    print("lowest versions:", ", ".join(line for line in versions.split() if line.split("==")[0].lower() in wanted))
    # The ipywidgets-7 rerun is for the main venv; this one holds ipywidgets 7.7 (the floor) already.
    skip = ["--deselect", "tests/test_widgets.py::test_widget_tests_pass_with_colabs_ipywidgets_7"]
    env_tests = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", *skip, *TESTS]
    return subprocess.run(env_tests, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
