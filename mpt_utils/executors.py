"""Where the folds run: in this process, on local workers (one per GPU, or CPU workers), or as a SLURM job array.

A run, or an ablation grid, expands to **tasks**: one per (row, left-out subject) whose fold is not finished yet.
Every task is :func:`mpt_utils.train.run_task`: it claims its fold (two workers never train the same one, a dead
worker's fold is taken over; :mod:`mpt_utils.train.claims`), trains it with the run's seed and thread count, and
renames the finished fold folder into place. So every executor writes the same run folders, gives the same bits
on the same machine, and rerunning (or resubmitting) does only what is unfinished.

An **executor** is an object with one method, ``run(tasks, samples, out)``, which returns an :class:`Outcome`:

- :class:`InProcess` (the default): here, one fold after another, each row's inputs and untrained model made
  once (:func:`mpt_utils.train.run_folds`);
- :class:`LocalWorkers`: one worker process per device (``("cuda:0", "cuda:1")``, or ``("cpu", "cpu")``), each
  pulling the next unclaimed task; blocks until all are done;
- :class:`Slurm`: one SLURM job array through submitit; a preempted or timed-out task is requeued by submitit's
  checkpointing and redoes its fold from the start. Making one checks that the cluster answers.

The command line picks one from its options (``mpt_utils.cli``); a new executor is one more class here.
"""

from __future__ import annotations

import multiprocessing
import re
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from submitit.helpers import Checkpointable

from .config import TrainConfig
from .data import Sample
from .runtime import progress_bar
from .train import RunFolder, claims, fold_done, run_folds, run_task

#: How often a waiting command looks at the fold folders, in seconds.
POLL_S = 2.0


class ExecutorError(RuntimeError):
    """An executor cannot start (no such device, SLURM unreachable, an unknown partition); nothing was submitted."""


@dataclass(frozen=True)
class Task:
    """One fold of one row: train ``config`` leaving ``subject`` out, into the run folder ``folder``."""

    row: str
    config: TrainConfig
    folder: Path
    subject: str

    @property
    def done(self) -> bool:
        return fold_done(self.folder, self.subject)

    @property
    def claimed(self) -> bool:
        """True while a live worker holds the fold."""
        info = claims.read(RunFolder(self.folder).claim(self.subject))
        return info is not None and claims.stale_reason(info) is None


def counts(tasks: Sequence[Task]) -> dict[str, int]:
    """``{"done", "running", "pending"}`` over ``tasks``, read from the run folders."""
    done = sum(t.done for t in tasks)
    running = sum(t.claimed for t in tasks if not t.done)
    return {"done": done, "running": running, "pending": len(tasks) - done - running}


@dataclass(frozen=True)
class Outcome:
    """What an executor reports when it returns: ``why`` a task it was given may be unfinished (said only when one
    is), and for a job array left running (``Slurm(wait=False)``) ``follow``: how to follow it and collect it."""

    why: str
    follow: str | None = None


class Executor(ABC):
    """Runs tasks somewhere; see the module's docstring for the three kinds."""

    @abstractmethod
    def run(self, tasks: Sequence[Task], samples: Sequence[Sample], out: Path,
            cache_dir: str | Path | None = None, progress: bool = True) -> Outcome:
        """Run ``tasks`` (folds of run folders under the experiment folder ``out``) on ``samples``; return once
        they are done or can go no further (or, detached, once submitted)."""


@dataclass(frozen=True)
class InProcess(Executor):
    """Every task here, one fold after another, row by row (each row's inputs and model are made once)."""

    def run(self, tasks, samples, out, cache_dir=None, progress=True) -> Outcome:
        rows: dict[Path, list[Task]] = {}
        for task in tasks:
            rows.setdefault(task.folder, []).append(task)
        held = []
        for folder, row in rows.items():
            if len(rows) > 1 and progress:
                print(f"[{folder.relative_to(out)}] {row[0].row}")
            outcomes = run_folds(samples, row[0].config, folder, [t.subject for t in row], cache_dir, progress)
            held += [f"{row[0].row}: fold {subject} is {what}" for subject, what in outcomes.items()
                     if what.startswith("held by")]
        return Outcome("; ".join(held) or "the run stopped early")


# --- local workers -----------------------------------------------------------------------------------


def parse_devices(spec: str) -> list[str]:
    """``"0,1,3"`` -> ``["cuda:0", "cuda:1", "cuda:3"]``; ``"cpu:2"`` -> two CPU workers. Checks the GPUs exist."""
    spec = spec.strip()
    match = re.fullmatch(r"cpu(?::(\d+))?", spec)
    if match:
        workers = int(match.group(1) or 1)
        if workers < 1:
            raise ExecutorError(f"--gpus {spec}: at least one CPU worker")
        return ["cpu"] * workers
    try:
        ids = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ExecutorError(f"--gpus {spec!r}: expected GPU numbers such as 0,1,2,3, or cpu:N") from None
    if not ids or len(set(ids)) != len(ids):
        raise ExecutorError(f"--gpus {spec!r}: name each GPU once, e.g. 0,1,2,3")
    import torch

    available = torch.cuda.device_count()
    missing = [i for i in ids if not 0 <= i < available]
    if missing:
        raise ExecutorError(f"--gpus {spec}: no CUDA device {missing} here ({available} visible); "
                            "list the GPUs of this machine (nvidia-smi), or use cpu:N")
    return [f"cuda:{i}" for i in ids]


def _worker(tasks: list[Task], samples: list[Sample], device: str, cache_dir: str | None) -> None:
    """A local worker: take every task no one holds, in order, until none is left (runs in its own process)."""
    for task in tasks:
        if not task.done:
            run_task(samples, task.config.replace(device=device), task.folder, task.subject, cache_dir=cache_dir)


@dataclass(frozen=True)
class LocalWorkers(Executor):
    """One worker process per device (``("cuda:0", "cuda:1")``, or ``("cpu", "cpu")``: see :func:`parse_devices`),
    each taking every task no one holds, in order; ``run`` blocks until they have all stopped."""

    devices: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.devices:
            raise ExecutorError("local workers need at least one device: the GPUs (0,1,2,3) or cpu:N")

    def run(self, tasks, samples, out, cache_dir=None, progress=True) -> Outcome:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: no forked CUDA state
        workers = [context.Process(target=_worker, args=(list(tasks), list(samples), device,
                                                           None if cache_dir is None else str(cache_dir)),
                                   name=f"mpt-worker-{i}-{device}") for i, device in enumerate(self.devices)]
        for w in workers:
            w.start()
        with _progress(tasks, progress) as bar:
            while any(w.is_alive() for w in workers):
                _refresh(bar, tasks)
                time.sleep(POLL_S)
            _refresh(bar, tasks)
        failures = [f"{w.name} exited with status {w.exitcode}" for w in workers if w.exitcode != 0]
        return Outcome("; ".join(failures) or "the workers stopped early")


# --- SLURM ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmOptions:
    """What a job array asks the cluster for. None: the cluster's default (partition), or none (GPUs)."""

    partition: str | None = None
    gpus_per_task: int | None = None
    time_min: int = 120
    array_parallelism: int | None = None
    cpus_per_task: int | None = None
    extra: tuple[tuple[str, str], ...] = ()


def parse_time(text: str) -> int:
    """``--slurm-time``: minutes (``90``), ``HH:MM:SS`` or ``D-HH:MM:SS`` -> whole minutes (at least 1)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d\d):(\d\d)", text.strip())
    if match:
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return max(1, days * 1440 + hours * 60 + minutes + (seconds > 0))
    if text.strip().isdigit() and int(text) > 0:
        return int(text)
    raise ExecutorError(f"--slurm-time {text!r}: give minutes (90), HH:MM:SS or D-HH:MM:SS")


def parse_extra(options: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--slurm-option KEY=VALUE`` (repeatable) -> pairs passed to sbatch as ``--KEY=VALUE``."""
    pairs = []
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise ExecutorError(f"--slurm-option {option!r}: expected KEY=VALUE, e.g. qos=high or constraint=a100")
        pairs.append((key, value))
    return tuple(pairs)


def check_slurm(partition: str | None) -> None:
    """Raise :class:`ExecutorError` unless ``sinfo`` answers and knows ``partition`` (when one is named)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ExecutorError(f"SLURM is not reachable from here ({type(exc).__name__}: {exc}); run on a login node "
                            "of your cluster, or try --executor local") from None
    if out.returncode != 0:
        raise ExecutorError(f"SLURM is not reachable from here: sinfo says {out.stderr.strip() or out.returncode}")
    partitions = sorted(set(out.stdout.split()))
    if partition is not None and partition not in partitions:
        raise ExecutorError(f"--slurm-partition {partition}: the cluster has no such partition; it has {partitions}")


def submit_slurm(tasks: Sequence[Task], samples: Sequence[Sample], folder: str | Path, options: SlurmOptions,
                 cache_dir: str | Path | None = None) -> str:
    """Submit ``tasks`` as one SLURM job array (submitit), its logs in ``folder``; return the array's job id."""
    import submitit

    executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster="slurm")
    params = {"name": "mpt-loso", "timeout_min": options.time_min}
    if options.partition:
        params["slurm_partition"] = options.partition
    if options.gpus_per_task:
        params["slurm_gpus_per_task"] = options.gpus_per_task
    if options.cpus_per_task:
        params["cpus_per_task"] = options.cpus_per_task
    if options.array_parallelism:
        params["slurm_array_parallelism"] = options.array_parallelism
    if options.extra:
        params["slurm_additional_parameters"] = dict(options.extra)
    executor.update_parameters(**params)
    jobs = []
    try:
        with executor.batch():
            for task in tasks:
                jobs.append(executor.submit(FoldTask(list(samples), task.config, task.folder, task.subject,
                                                     None if cache_dir is None else str(cache_dir))))
    except Exception as exc:  # sbatch refused the array (a bad option, a limit): say so, nothing is queued
        raise ExecutorError(f"sbatch refused the job array: {exc}") from None
    return jobs[0].job_id.split("_")[0]


@dataclass(frozen=True)
class Slurm(Executor):
    """One SLURM job array, one task per fold, with ``options``; its logs in ``<out>/slurm``. With ``wait``,
    ``run`` follows it with a progress bar until it leaves the queue; without, it returns once submitted, with
    :attr:`Outcome.follow` saying how to follow and collect it. Making one checks that SLURM answers and knows the
    partition (:class:`ExecutorError`): before any data work, nothing submitted."""

    options: SlurmOptions = SlurmOptions()
    wait: bool = True

    def __post_init__(self) -> None:
        check_slurm(self.options.partition)

    def run(self, tasks, samples, out, cache_dir=None, progress=True) -> Outcome:
        logs = Path(out) / "slurm"
        job = submit_slurm(tasks, samples, logs, self.options, cache_dir=cache_dir)
        print(f"submitted SLURM job array {job}: {len(tasks)} fold(s); logs in {logs}")
        if not self.wait:
            return Outcome(f"the job array {job} is still running", follow=(
                f"Follow it with `squeue -j {job}`; when it has finished (or at any time, for what is done), "
                f"write the tables with `python -m mpt_utils.train collect --out {out}`."))
        wait(tasks, job, progress=progress)
        return Outcome(f"the job array {job} ended; its logs are in {logs}")


class FoldTask(Checkpointable):
    """A SLURM array task: one fold. Requeued after a timeout or preemption (submitit's checkpointing), it is
    submitted again as it is and redoes its fold from the start; its earlier claim counts as stale."""

    def __init__(self, samples: list[Sample], config: TrainConfig, folder: Path, subject: str,
                 cache_dir: str | None):
        self.samples, self.config, self.folder, self.subject = samples, config, folder, subject
        self.cache_dir = cache_dir

    def __call__(self) -> str:
        return run_task(self.samples, self.config, self.folder, self.subject, cache_dir=self.cache_dir)


def slurm_alive(job: str) -> bool:
    """True while ``squeue`` lists any task of the array ``job``."""
    return claims.slurm_job_alive(job) is not False


def wait(tasks: Sequence[Task], job: str | None = None, progress: bool = True) -> None:
    """Block until every task is done, or (with a SLURM ``job``) until the array has left the queue."""
    with _progress(tasks, progress) as bar:
        while True:
            _refresh(bar, tasks)
            if all(t.done for t in tasks) or (job is not None and not slurm_alive(job)):
                break
            time.sleep(POLL_S)
        _refresh(bar, tasks)


def _progress(tasks: Sequence[Task], enabled: bool):
    return progress_bar(total=len(tasks), desc="folds", unit="fold", disable=not enabled)


def _refresh(bar, tasks: Sequence[Task]) -> None:
    now = counts(tasks)
    bar.n = now["done"]
    bar.set_postfix(now, refresh=False)
    bar.refresh()
