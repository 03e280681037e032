"""The project around the package: dependency lists, README commands, CI entry point, notebooks, the lab."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(specs):
    return sorted(re.split(r"[<>=!~ \[;]", s, maxsplit=1)[0].lower() for s in specs)


CONDA_NAMES = {"pytorch": "torch"}  # conda-forge's name → PyPI's


def test_environment_yml_lists_the_same_packages_as_pyproject():
    """conda-forge packages (under their PyPI names) plus the pip section = pyproject's, with the same floors."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"] + project["optional-dependencies"]["serve"]
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    conda = []
    for line in lines[lines.index("dependencies:") + 1 : start]:
        if line.strip().startswith("- "):
            spec = line.strip()[2:]
            name = re.split(r"[<>=]", spec)[0]
            if name not in ("python", "pip"):
                conda.append(CONDA_NAMES.get(name, name) + spec[len(name) :])
    pip_section = [l.strip()[2:] for l in lines[start + 1 :] if l.strip().startswith("- ")]
    assert sorted(conda + pip_section) == sorted(wanted)  # same names *and* same version bounds
    assert pip_section == ["playwright>=1.40", "ray[serve]>=2.60"]  # pip only for what conda-forge lacks or lags


def test_core_dependencies_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set(requirement_names(project["dependencies"] + project["optional-dependencies"]["test"]))
    core = {"jupyterlab", "ipywidgets", "diffusers", "transformers", "accelerate", "torch", "matplotlib", "pillow", "nbval"}
    assert core <= names


def readme_commands():
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"^\s*(make \w+)\s*$", readme, flags=re.M)


def test_ci_runs_exactly_the_readme_test_command():
    assert "make lab" in readme_commands() and "make test" in readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "make test" in [line.strip() for line in ci]


LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    """No outputs, except the small text that nbval compares in `# NBVAL_CHECK_OUTPUT` cells."""
    assert [p.name[:2] for p in LESSONS] == ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09"]
    for path in LESSONS + SOLUTIONS:
        nb = json.loads(path.read_text())
        checked = 0
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            if "".join(cell["source"]).startswith("# NBVAL_CHECK_OUTPUT"):
                checked += 1
                assert cell["execution_count"] is not None, path.name  # nbval skips cells without one
                kinds = {(o["output_type"], o.get("name")) for o in cell["outputs"]}
                assert kinds <= {("stream", "stdout"), ("execute_result", None)}, path.name
                assert all(set(o.get("data", {"text/plain": ""})) == {"text/plain"} for o in cell["outputs"]), path.name
                assert len(json.dumps(cell["outputs"])) < 2000, path.name
            else:
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
        assert checked >= 1, f"{path.name} checks no output"
        assert "widgets" not in nb["metadata"], path.name


def test_notebooks_follow_the_teaching_skeleton():
    for path in LESSONS:
        cells = json.loads(path.read_text())["cells"]
        text = ["".join(c["source"]) for c in cells]
        assert text[0].startswith("# ") and "What you'll learn" in text[0], path.name
        assert 'if "google.colab" in sys.modules:' in text[1], path.name  # the guarded install cell
        assert any("kl.load(" in t for t in text[:5]), path.name
        assert "## Exercises" in text[-1] and "Where this lives in the package" in text[-1], path.name
        code = [t for c, t in zip(cells, text) if c["cell_type"] == "code"]
        assert max(len(t.splitlines()) for t in code) <= 15, path.name


def exercises(lesson: Path) -> list[str]:
    """The numbers of the exercises listed in a lesson's last cell (before "Where this lives")."""
    last = "".join(json.loads(lesson.read_text())["cells"][-1]["source"])
    listed = last.split("## Exercises", 1)[1].split("**Where this lives", 1)
    assert not re.search(r"^\d+\. ", listed[1], flags=re.M), f"{lesson.name}: an exercise after 'Where this lives'"
    return re.findall(r"^(\d+)\. ", listed[0], flags=re.M)


def test_every_exercise_has_a_worked_solution_that_ci_runs():
    """notebooks/solutions/NN_name_solutions.ipynb answers each of lesson NN's exercises, in the lessons' form."""
    assert [p.name for p in SOLUTIONS] == [p.name.replace(".ipynb", "_solutions.ipynb") for p in LESSONS]
    for lesson, solution in zip(LESSONS, SOLUTIONS):
        cells = json.loads(solution.read_text())["cells"]
        text = ["".join(c["source"]) for c in cells]
        assert text[0].startswith("# Solutions") and f"../{lesson.name}" in text[0], solution.name
        assert 'if "google.colab" in sys.modules:' in text[1] and "kl.load(" in text[2], solution.name
        answered = [t.split("\n", 1)[0].removeprefix("## Exercise ") for t in text if t.startswith("## Exercise ")]
        assert answered == exercises(lesson), solution.name
        answers = [t for t in text if t.startswith("**Answer.**")]
        assert len(answers) == len(answered) and all("TODO" not in t and len(t) > 150 for t in answers), solution.name
        code = [t for c, t in zip(cells, text) if c["cell_type"] == "code"]
        assert max(len(t.splitlines()) for t in code) <= 15, solution.name


def stop_group(proc: subprocess.Popen) -> None:
    """End a command started with start_new_session=True and everything it started (make, jupyter, kernels)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_main_command_serves_the_notebooks_in_jupyterlab(tmp_path):
    port, token = free_port(), "kit-test-token"
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "LAB_NO_BROWSER": "1",
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        listing, deadline = None, time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/contents?token={token}"
                listing = json.load(urllib.request.urlopen(url, timeout=5))
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, proc.stderr.read().decode()[-3000:] if proc.poll() is not None else "no answer"
        names = {item["name"] for item in listing["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= names
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10).read().decode()
        assert "JupyterLab" in page
    finally:
        stop_group(proc)


@pytest.mark.slow
def test_app_command_serves_the_playground_with_voila(tmp_path):
    assert "make app" in readme_commands()
    port = free_port()
    env = {**os.environ, "LAB_NO_BROWSER": "1", "KANDINSKY_LAB_SOURCE": "nano", "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "app", f"APP_PORT={port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        page, deadline = None, time.monotonic() + 120
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, proc.stderr.read().decode()[-3000:] if proc.poll() is not None else "no answer"
        assert "Kandinsky 2.2 playground" in page and "application/vnd.jupyter.widget-view+json" in page
        assert "visitor_app" not in page and "kl.load" not in page  # an app: no code, no coder text
    finally:
        stop_group(proc)


def test_the_readme_picture_is_made_by_its_script(tmp_path):
    """docs/readme.png is the kit's own output on nano (scripts/readme_picture.py), not a hand-made image."""
    import PIL.Image

    assert "![" in (ROOT / "README.md").read_text() and "(docs/readme.png)" in (ROOT / "README.md").read_text()
    out = tmp_path / "readme.png"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_picture.py"), "--out", str(out)], check=True, capture_output=True, timeout=300)
    with PIL.Image.open(out) as made, PIL.Image.open(ROOT / "docs" / "readme.png") as shipped:
        assert made.size == shipped.size and made.mode == shipped.mode
        made_px, shipped_px = np.asarray(made, dtype=float), np.asarray(shipped, dtype=float)
    assert np.abs(made_px - shipped_px).mean() < 8  # the same picture (torch versions differ by a little)
