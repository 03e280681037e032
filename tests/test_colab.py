"""The notebooks' Colab install cell: one cell, written from pyproject.toml, that really installs the kit.

The stand-in Colab: a fresh virtual environment that already holds a torch (as Colab's does), a
`google.colab` module in `sys.modules`, IPython running the cell (its `!git` and `%pip` lines
included), and the hosting address pointed at a local clone of this checkout tagged as the release.
"""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402  (scripts/notebooks.py: the cell's one source)

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
TORCH = "torch==2.13.0"  # the stand-in's preinstalled torch (a CPU wheel on the project's machines)


def first_code_cell(path: Path) -> str:
    return "".join(next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")["source"])


def test_every_notebook_opens_with_the_one_install_cell():
    cell = notebooks.install_cell()
    assert f'KIT_REPO = "{PROJECT["urls"]["Repository"]}"' in cell and f'KIT_REF = "v{PROJECT["version"]}"' in cell
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert first_code_cell(path) == cell, f"{path.name}: run `python scripts/notebooks.py install-cell`"


def test_the_release_routine_makes_the_tag_the_install_cell_clones(tmp_path):
    """The README's release routine, done in a clone of its own (a clone of a submission holds no tags, so the
    test makes the release it needs): set the version, write the install cells, update the Colab links, commit,
    tag. The install cell's own `git clone --branch KIT_REF` then finds that tag, and what it clones is that
    release: its notebooks name the tag, its package has the version."""
    release = tmp_path / "release"
    run(["git", "clone", "--quiet", str(ROOT), str(release)])
    old, new = PROJECT["version"], "9.8.7"
    for name, before, after in [
        ("pyproject.toml", f'version = "{old}"', f'version = "{new}"'),
        ("kandinsky_lab/__init__.py", f'__version__ = "{old}"', f'__version__ = "{new}"'),
        ("README.md", f"/blob/v{old}/notebooks/", f"/blob/v{new}/notebooks/"),
    ]:
        path = release / name
        assert before in path.read_text(), f"{name} no longer holds {before!r}: update the release routine and this test"
        path.write_text(path.read_text().replace(before, after))
    run([sys.executable, "scripts/notebooks.py", "install-cell"], cwd=release)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    run([*git, "commit", "--quiet", "-am", f"release {new}"], cwd=release)
    run([*git, "tag", f"v{new}"], cwd=release)
    cell = first_code_cell(release / "notebooks" / "01_text_to_image.ipynb")
    ref = re.search(r'KIT_REF = "([^"]+)"', cell)[1]
    assert ref == f"v{new}"
    clone = tmp_path / "content" / "kandinsky-lab"  # the cell's own command, against the released clone
    run(["git", "clone", "--quiet", "--depth", "1", "--branch", ref, f"file://{release}", str(clone)])
    assert tomllib.loads((clone / "pyproject.toml").read_text())["project"]["version"] == new
    for path in sorted((clone / "notebooks").glob("*.ipynb")):
        assert f'KIT_REF = "v{new}"' in first_code_cell(path), path.name
    assert f"/blob/v{new}/notebooks/01_text_to_image.ipynb" in (clone / "README.md").read_text()


def run(command, **kw):
    out = subprocess.run(command, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.slow
def test_install_cell_installs_the_kit_on_a_stand_in_colab_and_keeps_its_torch(tmp_path):
    host = tmp_path / "host"  # where the kit is "hosted": this checkout's commits, tagged as the release
    run(["git", "clone", "--quiet", str(ROOT), str(host)])
    tag = f"v{PROJECT['version']}"
    if tag not in run(["git", "tag", "--list"], cwd=host).split():
        run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "tag", tag], cwd=host)
    venv = tmp_path / "colab"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    # Colab's base: its torch, numpy (preinstalled there; torch binds to it when imported) and IPython
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", TORCH, "numpy", "ipython"], timeout=900)
    torch_before = run([python, "-c", "import torch, importlib.metadata as m; d = m.distribution('torch'); print(torch.__version__, d._path, (d._path / 'RECORD').stat().st_mtime_ns)"])
    cell = notebooks.install_cell()
    cell = cell.replace(PROJECT["urls"]["Repository"], f"file://{host}").replace("/content/kandinsky-lab", str(tmp_path / "content" / "kit"))
    colab = (
        "import importlib.machinery, sys, types\n"
        "colab = types.ModuleType('google.colab')  # the stand-in, with a spec as a real module has\n"
        "colab.__spec__ = importlib.machinery.ModuleSpec('google.colab', None)\n"
        "sys.modules['google.colab'] = colab\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        f"InteractiveShell.instance().run_cell({cell!r}).raise_error()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    colab += (  # the next cell, in the same kernel: the kit imports without a restart
        "InteractiveShell.instance().run_cell('import kandinsky_lab as kl; print(kl.load(\"nano\"))').raise_error()\n"
    )
    run([python, "-c", colab], cwd=tmp_path, env=env, timeout=1500)
    found = run([python, "-c", "import kandinsky_lab, torch, importlib.metadata as m; print(kandinsky_lab.__file__); d = m.distribution('torch'); print(torch.__version__, d._path, (d._path / 'RECORD').stat().st_mtime_ns)"], cwd=tmp_path, env=env)
    kit_file, torch_after = found.splitlines()[0], found.splitlines()[1]
    assert "site-packages" in kit_file  # the clone of the release, installed
    assert torch_after == torch_before.strip()  # Colab's torch: same version, same files, never reinstalled


def test_readme_colab_links_point_at_the_hosted_release():
    readme = (ROOT / "README.md").read_text()
    base = PROJECT["urls"]["Repository"].removeprefix("https://github.com/")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        link = f"https://colab.research.google.com/github/{base}/blob/v{PROJECT['version']}/notebooks/{path.name}"
        assert link in readme, link


def test_package_version_is_the_declared_version():
    import kandinsky_lab as kl

    assert kl.__version__ == PROJECT["version"]  # the install cell's tag is v{version}: both must move together
