"""Every ``python -m mpt_utils ...`` command of the README runs, as a new user would type it.

Each command is taken from the README's code blocks and run in a subprocess on the tiny ``ci`` profile, with:

- a small fixture in the real layout wherever the README names a dataset folder (``/data/CASME2`` ...);
- a temporary ``--out`` / ``--output``, and ``--max-folds 1 --epochs 1`` (training) or ``--only 00``
  (the notebook runner, when it names no notebook) to keep it fast;
- ``export`` lines of the same block applied to the commands after them.

A command documented as failing (a comment ``# stops: "<message>"``) must exit 2 with that message, and one
documented with another exit status (``# exit 1: "<message>"``) that status and message. Commands that
need what a test machine lacks (:data:`NEEDS`: the ``paper`` profile's hub weights, GPUs, a SLURM cluster) must stop
at once with the message that says so, exit 2, and run a second time in their local form (:data:`LOCAL`: the
``ci`` profile, CPU workers). ``collect`` runs on a tiny experiment made in its folder first.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_casme2, make_samm, make_smic

from mpt_utils.runtime import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def truncated_casme2(folder: Path) -> Path:
    """CASME II with the onset frame of its first clip cut in half (a download that stopped early)."""
    make_casme2(folder)
    frame = folder / "Cropped" / "sub01" / "EP02_01f" / "reg_img46.jpg"
    frame.write_bytes(frame.read_bytes()[: frame.stat().st_size // 2])
    return folder


def casme2_without_an_apex(folder: Path) -> Path:
    make_casme2(folder)
    (folder / "Cropped" / "sub02" / "EP01_01" / "reg_img20.jpg").unlink()
    return folder


def swapped_casme2(folder: Path) -> Path:
    """CASME II with one more clip, whose sheet row has its onset and offset swapped (16 and 1)."""
    import shutil

    make_casme2(folder, csv=True)
    shutil.copytree(folder / "Cropped" / "sub03" / "EP07_01", folder / "Cropped" / "sub03" / "EP07_02")
    with open(folder / "CASME2-coding-20140508.csv", "a") as sheet:
        sheet.write("3,EP07_02,16,8,1,R4,others\n")
    return folder


#: Folders made immutable for the commands that must refuse them (made writable again at the end).
_IMMUTABLE: list[Path] = []


def read_only(folder: Path) -> Path:
    """A folder nobody may write in, root included."""
    folder.mkdir(parents=True)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        _IMMUTABLE.append(folder)
    else:
        folder.chmod(0o555)
    return folder


@pytest.fixture(scope="module", autouse=True)
def _writable_again():
    yield
    for folder in _IMMUTABLE:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


#: The README's example folders and what stands in for them.
FOLDERS = {"/data/CASME2": make_casme2, "/data/SAMM": make_samm, "/data/SMIC": make_smic,
           "/data/empty": lambda folder: folder.mkdir(parents=True) or folder,
           "/data/CASME2-truncated": truncated_casme2, "/data/CASME2-no-apex": casme2_without_an_apex,
           "/data/CASME2-swapped": swapped_casme2, "/data/read-only": read_only,
           "/data/a-file.txt": lambda path: (path.parent.mkdir(parents=True, exist_ok=True), path.write_text("x"),
                                             path)[-1]}

#: Commands that need what a test machine lacks, first match first: (a pattern of the command, the exact command's
#: exit status and a regular expression its message matches). The hub is unreachable in tests (HF_HUB_OFFLINE),
#: like on this project's machines; there is no GPU; a SLURM cluster may be there (CI) or not.
NEEDS = [
    (r"--gpus [0-9]", 2, r"no CUDA device"),
    (r"--executor slurm", 2, r"SLURM is not reachable|no such partition"),
    (r"--ablation all", 2, r"huggingface"),  # Table IX's backbones come from the hub, on every profile
    (r"--profile paper", 2, r"--weights"),
]

#: The local form of such a command, run after the exact one (and expected to succeed unless a need above is
#: still unmet in it, as for ``--ablation all``): the tiny profile, CPU workers instead of GPUs or a cluster.
LOCAL = [
    (r"--profile paper", "--profile ci"),
    (r"--gpus \S+", "--gpus cpu:2"),
    (r"--executor slurm( --slurm-[a-z-]+ \S+| --wait)*", "--executor local --gpus cpu:2"),
]


def readme_commands() -> list[tuple[str, dict[str, str], str | None]]:
    """``(command, exported environment, documented failure message)`` of every mpt_utils command."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        env: dict[str, str] = {}
        for line in block.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition("#")
            command = command.strip().split("&&")[-1].strip()
            if command.startswith("export "):
                name, _, value = command[len("export "):].partition("=")
                env[name] = shlex.split(value)[0] if value else value  # as the shell reads it: quotes removed
            elif re.search(r"python -m mpt_utils\.", command):
                stops = re.search(r'stops[^"]*"([^"]+)"', comment)
                exits = re.search(r'exit (\d+): "([^"]+)"', comment)
                failure = (2, stops.group(1)) if stops else (int(exits.group(1)), exits.group(2)) if exits else None
                found.append((command, dict(env), failure))
    return found


COMMANDS = readme_commands()


def test_the_readme_has_the_commands_this_test_expects():
    assert len(COMMANDS) >= 10
    assert any("--classes megc2019" in c or "--scheme megc2019" in c for c, _, _ in COMMANDS)
    assert any("--dataset megc2019" in c for c, _, _ in COMMANDS)
    assert sum(failure is not None for _, _, failure in COMMANDS) >= 3
    assert {failure[0] for _, _, failure in COMMANDS if failure} >= {1, 2, 130}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """One working folder for every command (the ci backbone is pre-trained once), with the README's folders."""
    return tmp_path_factory.mktemp("readme_home")


def local_form(command: str, home: Path, out: Path) -> list[str]:
    """The command as this test runs it: fixtures for folders, a temporary output, the fast settings."""
    args = shlex.split(command)
    args[0] = sys.executable  # "python" or ".venv/bin/python"
    for i, arg in enumerate(args):
        named = next((f for f in FOLDERS if arg.rstrip("/") == f or arg.startswith(f + "/")), None)
        if named:  # a README folder (or a path inside one): its stand-in
            args[i] = str(folder(home, named)) + arg.rstrip("/")[len(named):]
        elif i and args[i - 1] in ("--out", "--output"):
            args[i] = str(out)
    if "mpt_utils.train.shipped" in args and "--check" not in args:  # a rebuild takes many minutes: ci's, no probe
        args = [a for a in args if a not in ("--profile", "quick")] + ["--profile", "ci", "--out", str(out),
                                                                         "--no-development"]
    elif "mpt_utils.train" in args and "collect" not in args:
        args += [a for flag in ("--max-folds", "--epochs") if flag not in args for a in (flag, "1")] + ["--quiet"]
    elif "mpt_utils.notebooks" in args and "--only" not in args:
        args += ["--only", "00"]
    if "mpt_utils.notebooks" in args and "--output" not in args:
        args += ["--output", str(out)]
    if "--profile" not in args and "collect" not in args:
        args += ["--profile", "ci"]  # the default profile (quick) trains for minutes: the same code on tiny sizes
    return args


def folder(home: Path, name: str) -> Path:
    target = home / "folders" / name.strip("/").replace("/", "_")
    if not target.exists():
        FOLDERS[name](target)
    return target


def run(args: list[str], env: dict[str, str], home: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MPT_HOME": str(home), "MPT_CACHE_DIR": str(home / "cache"),
                   "HF_HUB_OFFLINE": "1"}
    environment.pop("MPT_DATA_ROOT", None)
    environment.update({k: str(folder(home, v)) if v in FOLDERS else v for k, v in env.items()})
    return subprocess.run(args, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900)


#: Results of the commands run so far, by :func:`same_command`: the README repeats a few commands, and several
#: reduce to one local form (``--only 00 --output X`` and ``--output X --only 00``); each runs once.
_RESULTS: dict[tuple, subprocess.CompletedProcess] = {}


def same_command(args: list[str], env: dict[str, str]) -> tuple:
    """What makes two runs the same: the program, its options in any order (the output folder left out) and the
    environment."""
    options: list[list[str]] = []
    for arg in args[3:]:
        if arg.startswith("--") or not options:
            options.append([arg])
        else:
            options[-1].append(arg)
    # the output folder is left out, unless it is one of the README's stand-in folders (a file, a read-only one)
    options = [[o[0], "OUT"] if o[0] in ("--out", "--output") and "/folders/" not in o[-1] else o for o in options]
    return tuple(args[1:3]), tuple(sorted(map(tuple, options))), tuple(sorted(env.items()))


def run_once(args: list[str], env: dict[str, str], home: Path) -> subprocess.CompletedProcess:
    key = same_command(args, env)
    if key not in _RESULTS:
        _RESULTS[key] = run(args, env, home)
    return _RESULTS[key]


def need_of(command: str):
    """The first unmet need of a command (see :data:`NEEDS`), or None."""
    own_weights = "--weights" in command or "--no-pretrained" in command  # the hub is not needed then
    return next((n for n in NEEDS if re.search(n[0], command) and not (own_weights and "paper" in n[0])), None)


@pytest.mark.parametrize("command, env, failure", COMMANDS, ids=[c for c, _, _ in COMMANDS])
def test_a_readme_command_runs(command, env, failure, home, tmp_path):
    args = local_form(command, home, tmp_path / "out")
    need = need_of(command)
    if failure is not None:
        expected = [(args, failure[0], re.escape(failure[1]))]
    elif need is not None:
        expected = [(args, need[1], need[2])]
        local = command
        for pattern, replacement in LOCAL:
            local = re.sub(pattern, replacement, local)
        still = need_of(local)  # e.g. --ablation all: the hub's backbones, on the tiny profile too
        expected.append((local_form(local, home, tmp_path / "local"), *((still[1], still[2]) if still else (0, None))))
    else:
        expected = [(args, 0, None)]
    if "collect" in args:  # collect reads an experiment: make a tiny one in that folder first
        out = args[args.index("--out") + 1]
        made = run([sys.executable, "-m", "mpt_utils.train", "--profile", "ci", "--out", out, "--max-folds", "1",
                    "--epochs", "1", "--quiet"], env, home)
        assert made.returncode == 0, made.stderr[-3000:]
    for argv, code, message in expected:
        result = run(argv, env, home) if "collect" in argv else run_once(argv, env, home)
        shown = f"{shlex.join(argv)}\nexit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        assert result.returncode == code, shown
        if message is not None:
            assert re.search(message, result.stderr), shown
            assert "Traceback" not in result.stderr, shown
        if code == 2 and argv is args:
            assert not (tmp_path / "out").exists(), "a refused command wrote its output folder"
