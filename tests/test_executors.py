"""Many folds, many workers: claims, the local executor and a real single-node SLURM cluster give the in-process bits.

The SLURM tests (marker ``slurm``) need the cluster of ``scripts/local_slurm.sh start``; ``.ci/run`` starts it.
Outside CI they skip with that instruction; under ``CI=true`` a cluster that is not there fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from mpt_utils.cli import main
from mpt_utils.executors import ExecutorError, parse_devices, parse_extra, parse_time
from mpt_utils.train import claims

#: A tiny ablation grid on the ci profile: three rows, two folds each, one epoch.
GRID = ["--profile", "ci", "--ablation", "adapters", "--max-folds", "2", "--epochs", "1", "--quiet"]
ROWS = ("MPT_w_o_adapter", "primitive_adapter", "MPT__group_adapter_")


def fold_bits(out: Path, folds: str = "*/*/folds/*") -> dict[str, bytes]:
    """Every fold's held-out logits and features, and its trained tensors, by its folder under ``out`` (``folds``:
    an experiment's ``<ablation>/<row>/folds/<subject>``, or ``folds/*`` for a single run)."""
    bits = {}
    for fold in sorted(out.glob(folds)):
        if fold.name.startswith("."):
            continue
        with np.load(fold / "predictions.npz") as p:
            bits[str(fold.relative_to(out))] = p["logits"].tobytes() + p["features"].tobytes() + (
                fold / "trainable.safetensors").read_bytes()
    return bits


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """One working folder for the module (one synthetic set, one pre-trained ci backbone, one cache)."""
    return tmp_path_factory.mktemp("executors_home")


@pytest.fixture
def shared_home(home, monkeypatch):
    monkeypatch.setenv("MPT_HOME", str(home))
    monkeypatch.setenv("MPT_CACHE_DIR", str(home / "cache"))
    return home


@pytest.fixture
def sequential(shared_home) -> Path:
    """The grid run in-process, one fold after another: the reference bits."""
    out = shared_home / "sequential"
    if not (out / "tables.md").exists():
        assert main([*GRID, "--out", str(out)]) == 0
    return out


# --- claims ---------------------------------------------------------------------------------------------


def test_a_claim_keeps_other_workers_out_until_released(tmp_path):
    path = tmp_path / ".claim-a.json"
    claim, note = claims.acquire(path)
    assert claim is not None and note == "" and claim.held()
    again, holder = claims.acquire(path)
    assert again is None and str(os.getpid()) in holder  # a live holder: left to it
    claim.heartbeat()
    assert claims.read(path)["token"] == claim.token
    claim.release()
    assert not path.exists()


def test_a_dead_workers_claim_is_taken_over_at_once(tmp_path):
    dead = subprocess.run(["python3", "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / ".claim-b.json"
    path.write_text(json.dumps({"host": __import__("socket").gethostname(), "pid": int(dead.stdout), "job": None,
                                "token": "old", "heartbeat": time.time()}))
    claim, note = claims.acquire(path)
    assert claim is not None and "has ended" in note
    claim.release()


def test_a_claim_without_heartbeat_is_stale_and_one_given_up_by_this_process_too(tmp_path):
    path = tmp_path / ".claim-c.json"
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "job": None, "token": "t",
                                "heartbeat": time.time() - 2 * claims.STALE_AFTER_S}))
    claim, note = claims.acquire(path)
    assert claim is not None and "no heartbeat" in note
    claims._HELD.discard(claim.token)  # as after an exception unwound through the fold without releasing
    second, note = claims.acquire(path)
    assert second is not None and "gave it up" in note
    second.release()


# --- options ---------------------------------------------------------------------------------------------


def test_executor_options_are_checked():
    assert parse_devices("cpu:2") == ["cpu", "cpu"] and parse_devices("cpu") == ["cpu"]
    with pytest.raises(ExecutorError, match="no CUDA device"):
        parse_devices("0,1")
    with pytest.raises(ExecutorError, match="expected GPU numbers"):
        parse_devices("first")
    assert parse_time("90") == 90 and parse_time("01:30:00") == 90 and parse_time("1-00:00:30") == 1441
    with pytest.raises(ExecutorError, match="HH:MM:SS"):
        parse_time("soon")
    assert parse_extra(["qos=high", "--constraint=a100"]) == (("qos", "high"), ("constraint", "a100"))
    with pytest.raises(ExecutorError, match="KEY=VALUE"):
        parse_extra(["qos"])


def test_the_command_line_chooses_one_executor_object():
    from mpt_utils.cli import build_parser, choose_executor
    from mpt_utils.executors import InProcess, LocalWorkers

    def chosen(*args):
        return choose_executor(build_parser().parse_args([*GRID, "--out", "o", *args]))

    assert chosen() == InProcess()
    assert chosen("--gpus", "cpu:2") == chosen("--executor", "local", "--gpus", "cpu:2") == LocalWorkers(("cpu", "cpu"))
    with pytest.raises(ExecutorError, match="at least one device"):
        LocalWorkers(())


@pytest.mark.parametrize("args, message", [
    (["--gpus", "7"], "no CUDA device [7]"),
    (["--executor", "local"], "needs --gpus"),
    (["--gpus", "cpu:2", "--executor", "slurm"], "belongs to --executor local"),
])
def test_bad_executor_input_ends_with_exit_2_before_any_work(args, message, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([*GRID, "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


# --- the local executor ----------------------------------------------------------------------------------


def test_two_local_cpu_workers_give_the_in_process_bits(sequential, shared_home, tmp_path):
    out = tmp_path / "local"
    assert main([*GRID, "--out", str(out), "--executor", "local", "--gpus", "cpu:2"]) == 0
    reference = fold_bits(sequential)
    assert len(reference) == 6 and fold_bits(out) == reference
    assert (out / "tables.md").read_text() == (sequential / "tables.md").read_text()
    assert not list(out.glob("*/*/folds/.claim-*")) and not list(out.glob("*/*/folds/.tmp-*"))


def test_collect_writes_the_tables_of_what_is_done_and_lists_the_rest(sequential, tmp_path, capsys):
    out = tmp_path / "partial"
    shutil.copytree(sequential, out)
    shutil.rmtree(next(out.glob("adapters/primitive_adapter/folds/*")))
    assert main(["collect", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "primitive adapter: 1 fold(s) missing" in printed and "| primitive adapter |" in printed
    assert "1/4" in (out / "adapters.md").read_text()
    assert main(["--collect", "--out", str(tmp_path / "nothing")]) == 2


# --- a real SLURM cluster ---------------------------------------------------------------------------------


def _slurm_trouble(attempts: int = 12) -> str | None:
    """None when the local cluster's node can take jobs; otherwise what ``sinfo`` said at the last of ``attempts``
    tries 5 s apart (right after a cancelled job the controller can be slow to answer, or the node briefly in another
    state, and one unanswered ``sinfo`` once turned CI red)."""
    for attempt in range(attempts):
        try:
            ok = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
        except FileNotFoundError as error:
            return repr(error)  # no sinfo at all: no point in asking again
        except (OSError, subprocess.SubprocessError) as error:
            answer = repr(error)
        else:
            if any(s in ("idle", "mix", "alloc") for s in ok.stdout.split()):
                return None
            answer = f"rc {ok.returncode}: {(ok.stdout + ok.stderr).strip()!r}"
        if attempt + 1 < attempts:
            time.sleep(5)
    return answer


_SLURM_TROUBLE: list[str] = []  # once the cluster did not answer for a minute, later tests fail at once


@pytest.fixture
def slurm(shared_home):
    """The local cluster, or a skip (a failure under CI=true) that says how to start it and what sinfo said."""
    trouble = _SLURM_TROUBLE[0] if _SLURM_TROUBLE else _slurm_trouble()
    if trouble is None:
        return shared_home
    _SLURM_TROUBLE.append(trouble)
    message = (f"no SLURM cluster answers here (sinfo said {trouble}): "
               "start one with `bash scripts/local_slurm.sh start` (root)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _squeue(job: str) -> list[str]:
    return subprocess.run(["squeue", "-h", "-o", "%i %T", "-j", job], capture_output=True, text=True).stdout.split("\n")


def _wait_until(condition, timeout_s: float = 300, what: str = "") -> None:
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.slurm
def test_a_slurm_job_array_gives_the_in_process_bits(sequential, slurm, tmp_path):
    out = slurm / "slurm_grid"
    assert main([*GRID, "--out", str(out), "--executor", "slurm", "--wait"]) == 0
    assert fold_bits(out) == fold_bits(sequential)
    assert (out / "tables.md").read_text() == (sequential / "tables.md").read_text()
    jobs = {json.loads((f / "COMPLETE").read_text())["job"] for f in out.glob("*/*/folds/*") if f.is_dir()
            and not f.name.startswith(".")}
    assert len(jobs) == 6 and all(j and "_" in j for j in jobs)  # six array tasks


#: MA2MI's two-branch network with its pre-trained action branch: one run, two folds, one epoch.
TWO_BRANCH = ["--profile", "ci", "--variant", "two_branch_ma2mi", "--max-folds", "2", "--epochs", "1", "--quiet"]


@pytest.fixture
def two_branch_sequential(shared_home) -> Path:
    """The two-branch run in-process: the reference bits (its action branch pre-trained once, in seconds)."""
    out = shared_home / "two_branch_sequential"
    if not (out / "summary.md").exists():
        assert main([*TWO_BRANCH, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("executor", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_the_two_branch_rows_run_on_every_executor_with_the_in_process_bits(executor, two_branch_sequential,
                                                                            request, tmp_path):
    if executor == "slurm":
        home = request.getfixturevalue("slurm")
        out, extra = home / "two_branch_slurm", ["--executor", "slurm", "--wait"]
    else:
        out, extra = tmp_path / "two_branch_local", ["--executor", "local", "--gpus", "cpu:2"]
    assert main([*TWO_BRANCH, "--out", str(out), *extra]) == 0
    reference = fold_bits(two_branch_sequential, "folds/*")
    assert len(reference) == 2 and fold_bits(out, "folds/*") == reference


@pytest.mark.slurm
def test_cancelled_tasks_leave_no_fold_behind_and_resubmitting_redoes_only_them(slurm, capsys):
    out = slurm / "slurm_cancel"
    grid = [*GRID, "--epochs", "30", "--out", str(out), "--executor", "slurm"]  # folds of a few seconds each
    assert main([*grid, "--slurm-array-parallelism", "1"]) == 0
    job = capsys.readouterr().out.split("submitted SLURM job array ")[1].split(":")[0]

    def first_done_second_running() -> bool:
        done = [f for f in out.glob("*/*/folds/*") if f.is_dir() and not f.name.startswith(".")]
        return len(done) >= 1 and len(list(out.glob("*/*/folds/.claim-*"))) >= 1

    _wait_until(first_done_second_running, what="one finished fold and one in progress")
    subprocess.run(["scancel", job], check=True)  # kills the running task inside its fold
    _wait_until(lambda: not any(line.strip() for line in _squeue(job)), what="the array to leave the queue")
    finished = {f: (f / "COMPLETE").stat().st_mtime_ns for f in out.glob("*/*/folds/*")
                if f.is_dir() and not f.name.startswith(".")}
    assert 1 <= len(finished) < 6
    for fold in out.glob("*/*/folds/*"):  # what the killed task left: dot-files only, never a fold folder
        assert fold.name.startswith(".") or (fold / "COMPLETE").is_file()
    assert main([*grid, "--wait"]) == 0
    assert {f: (f / "COMPLETE").stat().st_mtime_ns for f in finished} == finished  # not redone
    assert len(fold_bits(out)) == 6 and "Still missing" not in capsys.readouterr().out
    assert not list(out.glob("*/*/folds/.tmp-*")) and not list(out.glob("*/*/folds/.claim-*"))


@pytest.mark.slurm
def test_a_task_requeued_inside_its_fold_finishes_it(slurm):
    out = slurm / "slurm_requeue"
    args = ["--profile", "ci", "--max-folds", "1", "--epochs", "400", "--quiet", "--out", str(out)]  # about 25 s
    assert main([*args, "--executor", "slurm"]) == 0
    _wait_until(lambda: list(out.glob("folds/.claim-*.json")), what="the task to claim its fold")
    job = claims.read(next(out.glob("folds/.claim-*.json")))["job"]  # the task's own id, as squeue names it
    subprocess.run(["scontrol", "requeue", job], check=True)
    # SLURM holds a requeued job back for a while (its begin time); let it start again at once
    _wait_until(lambda: "PENDING" in " ".join(_squeue(job)), what="the requeued task to wait in the queue")
    subprocess.run(["scontrol", "update", f"jobid={job}", "starttime=now"], check=True)
    _wait_until(lambda: any(f.is_dir() and not f.name.startswith(".") for f in out.glob("folds/*")),
                timeout_s=600, what="the requeued task to finish its fold")
    fold = next(f for f in out.glob("folds/*") if f.is_dir() and not f.name.startswith("."))
    assert json.loads((fold / "COMPLETE").read_text())["job"] == job
    log = (out / "train.log").read_text()
    assert "took over the claim" in log and "discarding the interrupted fold" not in log.split("took over")[0]
    assert main(["collect", "--out", str(out)]) == 0


def test_bad_slurm_input_ends_with_exit_2_and_submits_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo on the path: SLURM unreachable
    assert main([*GRID, "--out", str(out), "--executor", "slurm"]) == 2
    assert "SLURM is not reachable" in capsys.readouterr().err and not out.exists()


@pytest.mark.slurm
def test_an_unknown_partition_is_refused(slurm, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([*GRID, "--out", str(out), "--executor", "slurm", "--slurm-partition", "gpu-a100"]) == 2
    assert "no such partition" in capsys.readouterr().err and not out.exists()
