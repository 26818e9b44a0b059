"""Nothing lost, nothing silent: crashes at every write, a full disk, Ctrl-C, and the claims that survive them.

The training command runs in a process forked from a fork server that has imported the package (so a run of the
``ci`` profile with one epoch takes about a second); :func:`mpt_utils.io.fault_point` makes the child fail as a
real crash would at a named step: SIGKILL (``kill``), Ctrl-C (``sigint``) or a write that fails with ENOSPC
(``enospc``). After each, the plain rerun must finish every fold, leave no hidden file, and give the predictions
of an uninterrupted run. One fold, one epoch: every step of a fold's write sequence and of the tables is passed
once (about 1 s a run), so that a kill at every step and its rerun take about half a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mpt_utils import cli
from mpt_utils.io import FAULT_ENV, TRACE_ENV
from mpt_utils.runtime import REPO_ROOT

ARGS = ["--profile", "ci", "--max-folds", "1", "--epochs", "1", "--quiet"]

#: The steps of a run's write sequence that the crash test must find in the trace (a fold's, then the tables').
EXPECTED_STEPS = {
    "write config.json", "write experiment.json", "claim written", "claim written in place",
    "write trainable.safetensors", "write predictions.npz", "write fed_indices.npy", "write metrics.json",
    "write COMPLETE", "fold rename", "fold in place", "write results.json", "write predictions.csv",
    "write summary.md", "write table.csv", "write table.md",
}


#: The working folder every run of this module shares (the ci set, its backbone and cache are made once).
HOME: dict[str, str] = {}

#: The files a child's standard output and error go to (read by :func:`output`).
OUTPUT: dict[str, Path] = {}


def _child(args: list[str], env: dict[str, str], stdout: str, stderr: str) -> None:
    """In the child: send its output to files, run the command, exit with its status (``os._exit``: no cleanup
    that a crash would not do either)."""
    for fd, path in ((1, stdout), (2, stderr)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.environ.update(env)
    code = 70
    try:
        code = cli.main(args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@pytest.fixture(scope="module")
def forkserver():
    """A fresh process that imported the package and never ran torch: each run is forked from it. (Forking the
    test process itself would copy torch's OpenMP thread pool, used by earlier tests, into a child that then hangs.)"""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mpt_utils.cli"])
    return context


def in_child(args: list[str], env: dict[str, str] | None = None, timeout_s: float = 300) -> int:
    """Run ``python -m mpt_utils.train ARGS`` in a process forked from :func:`forkserver` with ``env`` added; its exit
    status (-9: SIGKILL). Its output is in :func:`output`."""
    base = Path(HOME["MPT_HOME"])
    base.mkdir(parents=True, exist_ok=True)
    OUTPUT.update(stdout=base / "stdout.txt", stderr=base / "stderr.txt")
    process = CONTEXT[0].Process(target=_child, args=(args, {**HOME, **(env or {})}, str(OUTPUT["stdout"]),
                                                           str(OUTPUT["stderr"])))
    process.start()
    process.join(timeout_s)
    if process.exitcode is None:
        process.kill()
        process.join()
        pytest.fail(f"the run {args} did not end within {timeout_s} s")
    return process.exitcode


def output() -> str:
    """The standard error of the last :func:`in_child` run."""
    return OUTPUT["stderr"].read_text()


#: The multiprocessing context of :func:`forkserver`, set by :func:`reference`.
CONTEXT: list = []


def hidden(out: Path) -> list[str]:
    """Every hidden file or folder under ``out`` (claims, temporaries, half-written folds)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*"))


def predictions(out: Path) -> dict[str, dict[str, np.ndarray]]:
    found = {}
    for fold in sorted((out / "folds").iterdir()):
        with np.load(fold / "predictions.npz") as p:
            found[fold.name] = {k: p[k] for k in ("indices", "y_pred", "logits")}
    return found


def assert_same_predictions(out: Path, reference: Path) -> None:
    got, want = predictions(out), predictions(reference)
    assert sorted(got) == sorted(want)
    for fold in want:
        for key in want[fold]:
            np.testing.assert_array_equal(got[fold][key], want[fold][key], err_msg=f"{out}: {fold} {key}")
    assert json.loads((out / "results.json").read_text())["f1"] == json.loads(
        (reference / "results.json").read_text())["f1"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, forkserver) -> tuple[Path, list[str]]:
    """An uninterrupted run (after a first one that made the data, the backbone and the cache), with the trace of
    the steps it passed."""
    CONTEXT[:] = [forkserver]
    base = tmp_path_factory.mktemp("faults")
    HOME.update(MPT_HOME=str(base / "home"), MPT_CACHE_DIR=str(base / "home" / "cache"))
    assert in_child(ARGS + ["--out", str(base / "warm")]) == 0
    trace = base / "trace.txt"
    assert in_child(ARGS + ["--out", str(base / "reference")], {TRACE_ENV: str(trace)}) == 0
    return base / "reference", trace.read_text().splitlines()


def test_an_uninterrupted_run_passes_every_step_of_the_write_sequence(reference):
    _, steps = reference
    assert EXPECTED_STEPS <= set(steps), sorted(EXPECTED_STEPS - set(steps))
    assert any(s.startswith("write .claim-") for s in steps)  # the heartbeat after each epoch
    assert steps.index("write COMPLETE") < steps.index("fold rename") < steps.index("fold in place")


def test_killed_at_every_write_the_rerun_finishes_with_the_same_predictions(reference, tmp_path):
    ref, steps = reference
    for i, step in enumerate(dict.fromkeys(steps)):  # each distinct step, at its first occurrence
        out = tmp_path / f"run{i}"
        assert in_child(ARGS + ["--out", str(out)], {FAULT_ENV: f"{step}=kill"}) == -signal.SIGKILL, step
        assert in_child(ARGS + ["--out", str(out)]) == 0, f"the rerun after a kill at {step!r} failed"
        assert hidden(out) == [], f"after a kill at {step!r} and a rerun"
        assert_same_predictions(out, ref)


@pytest.mark.parametrize("step", ["claim written", "write predictions.npz", "fold rename", "write results.json"])
def test_a_full_disk_stops_with_one_line_naming_the_file_and_the_rerun_resumes(step, reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "run"
    assert in_child(ARGS + ["--out", str(out)], {FAULT_ENV: f"{step}=enospc"}) == 1
    err = [line for line in output().splitlines() if line.startswith("error")]
    assert len(err) == 1 and "no space left on device" in err[0] and str(out) in err[0], err
    assert "Traceback" not in output()
    assert hidden(out) == [], "a full disk left a half-written file"
    assert in_child(ARGS + ["--out", str(out)]) == 0
    assert_same_predictions(out, ref)


def test_ctrl_c_during_a_fold_exits_130_with_one_line_and_the_rerun_resumes(reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "run"
    assert in_child(ARGS + ["--out", str(out)], {FAULT_ENV: "write metrics.json=sigint"}) == 130
    err = output()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [line for line in err.splitlines() if "interrupted" in line] == [
        next(line for line in err.splitlines() if line.startswith("interrupted: rerun the same command"))]
    assert hidden(out) == []
    assert in_child(ARGS + ["--out", str(out)]) == 0
    assert_same_predictions(out, ref)


def test_the_real_command_killed_from_outside_and_interrupted_resumes(reference, tmp_path):
    """The installed entry point in its own process: Ctrl-C gives 130 without a traceback; SIGKILL mid-fold."""
    ref, _ = reference
    env = {**os.environ, **HOME, FAULT_ENV: "fold rename=sigint"}
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "mpt_utils.train", *ARGS, "--out", str(out)], env=env,
                            capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "interrupted: rerun the same command" in result.stderr
    assert in_child(ARGS + ["--out", str(out)]) == 0
    assert_same_predictions(out, ref)


# --- claims ---------------------------------------------------------------------------------------------------


def test_an_empty_claim_blocks_its_fold_only_until_the_heartbeat_timeout(reference, tmp_path):
    """The issue's reproduction: a claim file left empty (a crash between create and write, under the old code)."""
    ref, _ = reference
    out = tmp_path / "run"
    one = ["--profile", "ci", "--max-folds", "1", "--epochs", "1", "--quiet", "--out", str(out)]
    assert in_child(one) == 0
    fold = next(p for p in (out / "folds").iterdir())
    reference_logits = predictions(out)[fold.name]["logits"]
    import shutil

    shutil.rmtree(fold)
    (out / "results.json").unlink()
    claim = out / "folds" / f".claim-{fold.name}.json"
    claim.touch()
    assert in_child(one) == 1  # fresh: it may be a live worker's, so the fold is left to it, and the run says so
    err = output()
    assert "unreadable claim" in err and "delete it if no worker runs this fold" in err and "Traceback" not in err
    old = time.time() - 31 * 60
    os.utime(claim, (old, old))  # 31 minutes without a write: abandoned, by the same rule as a readable claim
    assert in_child(one) == 0
    np.testing.assert_array_equal(predictions(out)[fold.name]["logits"], reference_logits)
    assert hidden(out) == []


def test_a_claim_appears_whole_even_where_hard_links_are_not_supported(tmp_path, monkeypatch):
    from mpt_utils.train import claims

    path = tmp_path / ".claim-x.json"
    claim, note = claims.acquire(path)
    assert claim is not None and note == "" and claims.read(path)["token"] == claim.token
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # the temporary is gone
    again, holder = claims.acquire(path)
    assert again is None and str(os.getpid()) in holder
    claim.release()

    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")  # EPERM, as some FUSE mounts answer

    monkeypatch.setattr(os, "link", no_links)
    claim, _ = claims.acquire(path)
    assert claim is not None and claims.read(path)["token"] == claim.token
    assert claims.acquire(path)[0] is None
    claim.release()
