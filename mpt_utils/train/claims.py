"""Claims: two workers never train the same LOSO fold, and a dead worker's fold is taken over.

A worker that is about to train a fold creates ``folds/.claim-<fold>.json`` with ``O_EXCL`` (atomic on POSIX
file systems, shared ones included), holding who it is: host, process id, SLURM job (if any), a random token
and a heartbeat time that it refreshes after every epoch. Another worker that finds the file skips the fold,
unless the claim is **stale**, by the first of these rules that applies:

1. its heartbeat is older than ``stale_after_s`` (default 30 minutes: a worker that stopped refreshing it);
2. it was made on this host by a process that no longer exists (an interrupted run resumes at once);
3. it was made by this very process and is not held any more (an exception unwound through the fold);
4. it names a SLURM job that ``squeue`` no longer lists, or the job this worker runs in (a requeued job's
   earlier life).

A stale claim is replaced atomically (write, then ``os.replace``) and read back: of two workers taking it over
at once, the one whose token is in the file wins. The fold's temporary folders of the dead worker are then
discarded by the winner (:func:`mpt_utils.train.loso.run_fold`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Seconds without a heartbeat after which a claim counts as abandoned (rule 1).
STALE_AFTER_S = 1800.0

#: Tokens of the claims this process holds (rule 3).
_HELD: set[str] = set()


def current_job() -> str | None:
    """This process's SLURM job as ``squeue`` names it (``<array>_<index>`` for an array task), or None."""
    array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and index:
        return f"{array}_{index}"
    return os.environ.get("SLURM_JOB_ID") or None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


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
    same_host = info.get("host") == socket.gethostname()
    if same_host and not _pid_alive(int(info.get("pid", 0))):
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
        return {"host": socket.gethostname(), "pid": os.getpid(), "job": current_job(), "token": self.token,
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
    tmp = path.with_name(f"{path.name}.{info['token']}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def acquire(path: str | Path, stale_after_s: float = STALE_AFTER_S) -> tuple[Claim | None, str]:
    """Try to claim ``path``: ``(claim, "")`` on success, ``(None, who holds it)`` when a live worker does.

    A stale claim is taken over (the returned message then says whose it was and why it was stale).
    """
    path = Path(path)
    claim = Claim(path, uuid.uuid4().hex)
    info = claim.info()
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        current = read(path)
        if current is None:  # being rewritten by its holder right now
            return None, "a claim being refreshed"
        reason = stale_reason(current, stale_after_s)
        who = f"{current.get('host')}:{current.get('pid')}" + (f" (job {current['job']})" if current.get("job") else "")
        if reason is None:
            return None, who
        _write(path, info)
        if not claim.held():  # another worker took it over at the same moment, and won
            return None, "a worker that took it over at the same moment"
        _HELD.add(claim.token)
        return claim, f"took over the claim of {who}: {reason}"
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(info))
    _HELD.add(claim.token)
    return claim, ""
