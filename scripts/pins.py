"""The tested pins: make the lock, check an environment against it, try the newest releases.

``requirements/lock.txt`` holds the exact version of every package that CI passed with, for every platform and
Python it supports (uv's universal resolution: lines carry environment markers). The README's commands and
``.ci/run`` install through it as pip constraints (``pip install -e ".[dev]" -c requirements/lock.txt``);
``pyproject.toml`` keeps compatible ranges, as a library must.

    python scripts/pins.py lock               # re-resolve after pyproject.toml changed, keeping today's pins
    python scripts/pins.py lock --upgrade     # move every pin to its newest release (then run CI)
    python scripts/pins.py check              # does this environment hold exactly the pinned versions?
    python scripts/pins.py latest             # the newest releases in a scratch venv: what moved, do the tests pass?

``lock`` runs uv (``pip install uv``; it is not a dependency of the project). ``latest`` needs no uv: it installs
the project (editable) without the lock in a new virtual environment under a temporary folder, runs the unit tests
there (not the notebooks, the browser or SLURM) and prints every package whose newest release differs from its pin.
It leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import venv
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK = REPO_ROOT / "requirements" / "lock.txt"
#: The oldest Python the lock is resolved for (pyproject's requires-python; uv's universal lock covers newer ones).
PYTHON_VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"].lstrip(">=")
#: The unit tests that ``latest`` runs: everything but the notebooks, the browser and SLURM (which need the
#: machine's services and take most of CI's time; a release that breaks them breaks the unit tests too), and the
#: test that this environment holds the pins (it does not, there, by design).
UNIT_TESTS = "not notebooks and not browser and not slurm and not pinned"


def compile_command(upgrade: bool = False) -> list[str]:
    """The uv command that writes the lock from pyproject.toml (the dev extra included)."""
    command = ["uv", "pip", "compile", "pyproject.toml", "--extra", "dev", "--universal",
               "--python-version", PYTHON_VERSION, "--custom-compile-command", "python scripts/pins.py lock",
               "--output-file", str(LOCK.relative_to(REPO_ROOT)), "--quiet"]
    return command + (["--upgrade"] if upgrade else [])


def read_lock(path: Path = LOCK) -> dict[str, Requirement]:
    """The lock's pins that apply to this interpreter and platform, by canonical name.

    Lines whose environment marker is false here (another Python, another platform) are left out; every kept
    requirement is an exact ``==`` pin.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no lock file at {path}: run `python scripts/pins.py lock` (needs uv)")
    pins: dict[str, Requirement] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise ValueError(f"{path}:{number}: {line!r} is not an exact pin (name==version)")
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = requirement
    return pins


def installed_versions(python: str | Path = sys.executable) -> dict[str, str]:
    """Every distribution installed for ``python``, canonical name -> version (``pip list``'s view)."""
    script = ("import json, importlib.metadata as m; "
              "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    out = subprocess.run([str(python), "-c", script], check=True, capture_output=True, text=True).stdout
    return {canonicalize_name(name): version for name, version in json.loads(out).items()}


def mismatches(installed: dict[str, str], pins: dict[str, Requirement]) -> dict[str, tuple[str, str | None]]:
    """Pins the environment does not hold: name -> (pinned version, installed version or None)."""
    wrong = {}
    for name, requirement in pins.items():
        pinned = next(iter(requirement.specifier)).version
        have = installed.get(name)
        if have is None or have != pinned:
            wrong[name] = (pinned, have)
    return wrong


def lock(upgrade: bool) -> int:
    if shutil.which("uv") is None:
        print("error: uv is not on PATH: `pip install uv`, then run this again", file=sys.stderr)
        return 1
    before = LOCK.read_text() if LOCK.is_file() else ""
    subprocess.run(compile_command(upgrade), cwd=REPO_ROOT, check=True)
    print("lock unchanged" if LOCK.read_text() == before else f"wrote {LOCK}; run CI (bash .ci/run) before committing")
    return 0


def check() -> int:
    pins = read_lock()
    wrong = mismatches(installed_versions(), pins)
    for name, (pinned, have) in sorted(wrong.items()):
        print(f"{name}: pinned {pinned}, installed {have or 'nothing'}")
    print(f"{len(wrong)} of {len(pins)} pins not held by {sys.executable}" if wrong
          else f"all {len(pins)} pins held by {sys.executable}")
    return 1 if wrong else 0


def latest(keep: Path | None) -> int:
    """Install the newest releases in a scratch venv, run the unit tests there, report what moved."""
    scratch = Path(tempfile.mkdtemp(prefix="mpt-latest-")) if keep is None else keep
    try:
        env_dir = scratch / "venv"
        start = time.monotonic()
        venv.create(env_dir, with_pip=True)
        python = env_dir / "bin" / "python"
        subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "-e", f"{REPO_ROOT}[dev]"], check=True)
        print(f"installed the newest releases in {time.monotonic() - start:.0f} s")
        moved = mismatches(installed_versions(python), read_lock())
        for name, (pinned, have) in sorted(moved.items()):
            print(f"  {name}: pinned {pinned}, newest here {have or 'not installed'}")
        print(f"{len(moved)} packages differ from the lock")
        tests = subprocess.run([python, "-m", "pytest", str(REPO_ROOT / "tests"), "-m", UNIT_TESTS, "-q",
                                "-p", "no:cacheprovider", "--rootdir", str(REPO_ROOT)], cwd=scratch)
        verdict = "pass" if tests.returncode == 0 else "FAIL"
        print(f"unit tests on the newest releases: {verdict} ({time.monotonic() - start:.0f} s in all)")
        if tests.returncode == 0 and moved:
            print("to move the pins: python scripts/pins.py lock --upgrade, then bash .ci/run")
        return tests.returncode
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("lock", help="write requirements/lock.txt with uv")
    make.add_argument("--upgrade", action="store_true", help="move every pin to its newest release")
    commands.add_parser("check", help="compare this environment with the lock")
    newest = commands.add_parser("latest", help="the newest releases in a scratch venv, with the unit tests")
    newest.add_argument("--keep", type=Path, help="use (and keep) this folder instead of a temporary one")
    args = parser.parse_args(argv)
    if args.command == "lock":
        return lock(args.upgrade)
    if args.command == "check":
        return check()
    return latest(args.keep)


if __name__ == "__main__":
    sys.exit(main())
