"""The tested pins and the installs that use them: the lock, this environment, Colab's own torch, the newest releases.

The lock (requirements/lock.txt, written by ``python scripts/pins.py lock``) holds the versions CI passed with; the
README's commands install through it. Colab installs without it, keeping the torch built for its GPU.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mpt_utils.runtime import REPO_ROOT, REPO_URL

_spec = importlib.util.spec_from_file_location("pins", REPO_ROOT / "scripts" / "pins.py")
pins = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pins)

#: A torch in pyproject's range that is not the lock's, standing for the one Colab brings (built for its GPU). On
#: this project's CI machine its CPU wheel lies on disk (pip's find-links), so installing it downloads nothing big.
COLAB_TORCH = "2.13.0"


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_the_lock_pins_every_dependency_inside_pyprojects_ranges():
    lock = pins.read_lock()
    project = _project()
    for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in lock, f"{wanted.name} is a dependency but not in the lock: python scripts/pins.py lock"
        pinned = next(iter(lock[name].specifier)).version
        assert wanted.specifier.contains(pinned, prereleases=True), f"{name}=={pinned} is outside {wanted.specifier}"
    header = pins.LOCK.read_text().splitlines()[:3]
    assert any("python scripts/pins.py lock" in line for line in header), "the lock must say how to refresh it"


def test_read_lock_keeps_the_pins_for_this_platform_and_refuses_ranges(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# made by hand\nalpha==1.0\n    # via beta\nbeta==2.0 ; python_version < '3'\nGamma_x==3\n")
    assert sorted(pins.read_lock(lock)) == ["alpha", "gamma-x"]  # beta is for Python 2 only
    assert pins.mismatches({"alpha": "1.0", "gamma-x": "2"}, pins.read_lock(lock)) == {"gamma-x": ("3", "2")}
    assert pins.mismatches({"alpha": "1.0"}, pins.read_lock(lock)) == {"gamma-x": ("3", None)}
    lock.write_text("alpha>=1.0\n")
    with pytest.raises(ValueError, match="not an exact pin"):
        pins.read_lock(lock)
    with pytest.raises(FileNotFoundError, match="pins.py lock"):
        pins.read_lock(tmp_path / "missing.txt")


@pytest.mark.pinned
def test_this_environment_holds_exactly_the_pinned_versions():
    """CI installs with the README's command, through the lock: every pin that applies here is what got installed
    (a fresh install of the README's quick start gives exactly these versions)."""
    wrong = pins.mismatches(pins.installed_versions(), pins.read_lock())
    assert not wrong, (f"{len(wrong)} packages differ from requirements/lock.txt (pinned, installed): {wrong}; "
                       "install with the README's command (pip install -e \".[dev]\" -c requirements/lock.txt)")


def _colab_install_lines() -> str:
    """The Colab cell's own lines up to the one that builds the pip command (not the install, not Google Drive)."""
    notebook = json.loads((REPO_ROOT / "notebooks" / "00_overview.ipynb").read_text())
    cell = "".join(notebook["cells"][1]["source"])
    guard = next(node for node in ast.parse(cell).body if isinstance(node, ast.If))
    end = next(i for i, node in enumerate(guard.body)
               if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "install")
    return "import sys\n" + "\n".join(ast.unparse(node) for node in guard.body[: end + 1])


def _planned(command: list[str], tmp_path: Path, name: str) -> dict[str, dict]:
    """What ``command`` (a pip install) would install: name -> its metadata, from pip's own dry-run report."""
    report = tmp_path / f"{name}.json"
    result = subprocess.run([*command, "--dry-run", "--report", str(report)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]
            for item in json.loads(report.read_text())["install"]}


@pytest.mark.install
def test_the_colab_cell_keeps_the_torch_colab_brings(tmp_path):
    """As on Colab: a torch is already installed; the cell's install would leave it alone. The control shows the test
    can see a replacement: through the lock, the same install would swap it for the lock's torch."""
    env_dir = tmp_path / "colab"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # Colab's pip is recent; the newest also resolves about twice as fast as the one venv brings (pip 23)
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True, env=pip_env)
    subprocess.run([python, "-m", "pip", "install", "-q", f"torch=={COLAB_TORCH}"], check=True, env=pip_env)

    built = subprocess.run([python, "-c", _colab_install_lines() + "\nprint(__import__('json').dumps(install))"],
                           capture_output=True, text=True, check=True)
    install = json.loads(built.stdout)
    assert install[0] == str(python) and f"git+{REPO_URL}" in install
    assert any(item.startswith(f"torch=={COLAB_TORCH}") for item in install), install  # asks for the installed one
    install[install.index(f"git+{REPO_URL}")] = str(REPO_ROOT)  # this checkout instead of GitHub

    planned = _planned(install, tmp_path, "colab")
    assert "mpt-tutorial" in planned and "timm" in planned
    assert "torch" not in planned, f"the Colab cell would replace the installed torch by {planned['torch']['version']}"
    torch_pins = [r for r in planned["torchvision"].get("requires_dist", []) if r.startswith("torch")]
    assert torch_pins and all(COLAB_TORCH in r for r in torch_pins), torch_pins

    control = [str(python), "-m", "pip", "install", str(REPO_ROOT), "-c", str(pins.LOCK)]
    lock_torch = next(iter(pins.read_lock()["torch"].specifier)).version
    assert _planned(control, tmp_path, "lock")["torch"]["version"] == lock_torch != COLAB_TORCH


@pytest.mark.latest
def test_the_newest_releases_pass_the_unit_tests():
    """`python scripts/pins.py latest`: the newest releases in a scratch venv, the unit tests there, a report of what
    moved. Not run by default (it installs a few GB and takes about ten minutes): `pytest --latest -m latest`."""
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "pins.py"), "latest"],
                            capture_output=True, text=True)
    print(result.stdout)
    assert "packages differ from the lock" in result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
