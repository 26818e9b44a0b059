"""Claims: two workers never train the same LOSO fold, and a dead worker's fold is taken over.

A worker that is about to train a fold creates ``folds/.claim-<fold>.json`` holding who it is: host, process id,
SLURM job (if any), a random token and a heartbeat time that it refreshes after every epoch. The file appears with
its content in one step (written aside, then hard-linked into place, which never replaces an existing claim:
:func:`mpt_utils.io.create_exclusive`), so a worker killed at any moment leaves either no claim or a whole one.
Another worker that finds the file skips the fold, unless the claim is **stale**, by the first of these rules
that applies:

1. its heartbeat is older than ``stale_after_s`` (default 30 minutes: a worker that stopped refreshing it);
   a claim that cannot be read (damaged by hand, or half written on a file system without hard links) has no
   owner to ask, so its file's modification time stands for its heartbeat;
2. it was made on this host by a process that no longer exists (an interrupted run resumes at once);
3. it was made by this very process and is not held any more (an exception unwound through the fold);
4. it names a SLURM job that ``squeue`` no longer lists, or the job this worker runs in (a requeued job's
   earlier life).

A stale claim is replaced atomically (write, then ``os.replace``) and read back: of two workers taking it over
at once, the one whose token is in the file wins. The fold's temporary folders of the dead worker are then
discarded by the winner (:func:`mpt_utils.train.loso.claimed_fold`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import STALE_AFTER_S, atomic_write_text, create_exclusive, host_name, pid_alive

#: Tokens of the claims this process holds (rule 3).
_HELD: set[str] = set()


def current_job() -> str | None:
    """This process's SLURM job as ``squeue`` names it (``<array>_<index>`` for an array task), or None."""
    array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and index:
        return f"{array}_{index}"
    return os.environ.get("SLURM_JOB_ID") or None


def slurm_job_alive(job: str) -> bool | None:
    """True while ``squeue`` lists the job (pending, running, requeued), False once it is gone, None when SLURM
    cannot be asked."""
    try:
        out = subprocess.run(["squeue", "-h", "-o", "%i", "-j", job], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return False if "Invalid job id" in out.stderr else None
    return bool(out.stdout.strip())


def stale_reason(info: dict[str, Any], stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why the claim ``info`` no longer protects its fold (see the module docstring), or None while it does."""
    age = time.time() - float(info.get("heartbeat", 0))
    if age > stale_after_s:
        return f"no heartbeat for {age:.0f} s"
    same_host = info.get("host") == host_name()
    if same_host and not pid_alive(int(info.get("pid", 0))):
        return f"its process {info.get('pid')} on this host has ended"
    if same_host and int(info.get("pid", 0)) == os.getpid() and info.get("token") not in _HELD:
        return "this process gave it up"
    job = info.get("job")
    if job and job == current_job() and not (same_host and int(info.get("pid", 0)) == os.getpid()):
        return f"it is an earlier life of this SLURM job ({job})"
    if job and slurm_job_alive(job) is False:
        return f"its SLURM job {job} has ended"
    return None


@dataclass
class Claim:
    """A held claim on one fold: refresh it with :meth:`heartbeat`, end it with :meth:`release`."""

    path: Path
    token: str

    def info(self) -> dict[str, Any]:
        return {"host": host_name(), "pid": os.getpid(), "job": current_job(), "token": self.token,
                "heartbeat": time.time()}

    def held(self) -> bool:
        """True while the claim file still carries this claim's token."""
        return (read(self.path) or {}).get("token") == self.token

    def heartbeat(self) -> None:
        """Refresh the heartbeat (after every epoch), if the claim is still ours."""
        if self.held():
            _write(self.path, self.info())

    def release(self) -> None:
        """Delete the claim file if it is still ours."""
        _HELD.discard(self.token)
        if self.held():
            self.path.unlink(missing_ok=True)


def read(path: Path) -> dict[str, Any] | None:
    """The claim in ``path``, or None when there is none (or it is being rewritten)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, info: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(info))


def unreadable_age(path: Path) -> float | None:
    """Seconds since an unreadable claim file was last written (its stand-in heartbeat), None if it is gone."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def unreadable_stale_reason(age: float, stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Rule 1 for a claim that cannot be read: stale once its file is older than ``stale_after_s``."""
    return f"unreadable and not rewritten for {age:.0f} s" if age > stale_after_s else None


def discard_if_stale(path: str | Path, stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Delete the claim ``path`` if it no longer protects anything (a worker killed after its fold was in place,
    before it could release the claim); return why, or None when it was kept (or is gone)."""
    path = Path(path)
    current = read(path)
    if current is None:
        age = unreadable_age(path)
        reason = None if age is None else unreadable_stale_reason(age, stale_after_s)
    else:
        reason = stale_reason(current, stale_after_s)
    if reason is not None:
        path.unlink(missing_ok=True)
    return reason


def acquire(path: str | Path, stale_after_s: float = STALE_AFTER_S) -> tuple[Claim | None, str]:
    """Try to claim ``path``: ``(claim, "")`` on success, ``(None, who holds it)`` when a live worker does.

    A stale claim is taken over (the returned message then says whose it was and why it was stale).
    """
    path = Path(path)
    claim = Claim(path, uuid.uuid4().hex)
    info = claim.info()
    try:
        create_exclusive(path, json.dumps(info), step="claim written")
    except FileExistsError:
        current = read(path)
        if current is None:
            age = unreadable_age(path)
            if age is None:  # released between our two looks: try once more
                return acquire(path, stale_after_s)
            who, reason = "an unreadable claim", unreadable_stale_reason(age, stale_after_s)
            if reason is None:
                return None, (f"an unreadable claim ({path.name}, last written {age:.0f} s ago; it counts as "
                              f"abandoned after {stale_after_s:.0f} s, or delete it if no worker runs this fold)")
        else:
            reason = stale_reason(current, stale_after_s)
            who = f"{current.get('host')}:{current.get('pid')}" + (f" (job {current['job']})" if current.get("job")
                                                                   else "")
            if reason is None:
                return None, who
        _write(path, info)
        if not claim.held():  # another worker took it over at the same moment, and won
            return None, "a worker that took it over at the same moment"
        _HELD.add(claim.token)
        return claim, f"took over the claim of {who}: {reason}"
    _HELD.add(claim.token)
    return claim, ""
