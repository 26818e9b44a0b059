"""Atomic file writes: a crash or a dropped Colab session never leaves half a file behind.

Every writer saves to a temporary file in the destination folder and then renames it over the
target with :func:`os.replace`, which is atomic on POSIX and Windows file systems (Google Drive's
FUSE mount included, as far as a single rename goes). :func:`create_exclusive` creates a file that
must not exist yet (a claim) with its content in one step, by a hard link.

A temporary file is named ``.<name>.<pid>@<host>.<random>.tmp``: a process killed between writing it and
renaming it leaves it behind, and :func:`remove_stale_temporaries` recognises it later as abandoned (its
process has ended on this host, or it is older than the heartbeat timeout).

Fault injection, for the crash tests: every write passes a named :func:`fault_point` just before its
temporary file is renamed into place. ``MPT_FAULT_INJECT="<step>=<action>"`` makes the process fail there
as a crash would (``kill``: SIGKILL, ``sigint``: Ctrl-C, ``enospc``: a full disk), and
``MPT_FAULT_TRACE=<file>`` appends every step passed to that file, one per line.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: The environment variables of the fault-injection hook (see the module docstring).
FAULT_ENV = "MPT_FAULT_INJECT"
TRACE_ENV = "MPT_FAULT_TRACE"

#: The actions :func:`fault_point` can take.
FAULT_ACTIONS = ("kill", "sigint", "enospc")

#: Seconds after which a temporary file (or a claim) nobody refreshes counts as abandoned, wherever it was made.
STALE_AFTER_S = 1800.0

#: A temporary file of this module: ``.<name>.<pid>@<host>.<random>.tmp``.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>.+)\.(?P<random>[A-Za-z0-9_]{8})\.tmp$")


def host_name() -> str:
    """This machine's name, as temporary files, claims and fold markers record it."""
    return socket.gethostname()


class OutputFolderError(ValueError):
    """An output folder cannot be written: it is a file, or it (or the folder it would be made in) is read-only."""


def check_output_folder(path: str | os.PathLike, flag: str) -> Path:
    """Check, writing nothing, that ``path`` is a folder this process can write in, or can be created.

    A probe file is created and removed at once in the folder (or in its nearest existing parent), since
    permission bits do not tell the whole story (root ignores them; an immutable folder or a read-only mount
    refuses root too). Raises :class:`OutputFolderError` naming ``flag`` (``"--out"``, ``"--output"``).
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"{flag} {path} is a file, not a folder: name a folder (it is created if missing)")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputFolderError(f"{flag} {path} cannot be created: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        where = "" if existing == path else f" (it would be created in {existing})"
        raise OutputFolderError(f"{flag} {path} cannot be written{where}: {exc.strerror or exc}; "
                                "choose a folder you can write to") from None
    return path


def fault_point(step: str, path: str | os.PathLike | None = None) -> None:
    """A named point of a write sequence where a test can make this process fail (see the module docstring).

    Does nothing unless ``MPT_FAULT_INJECT`` or ``MPT_FAULT_TRACE`` is set. ``step`` names the point
    (``"write metrics.json"``, ``"claim created"``, ``"fold renamed"`` ...); ``path`` is the file concerned,
    named by the simulated full disk's error.
    """
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            f.write(step + "\n")
    wanted, _, action = os.environ.get(FAULT_ENV, "").rpartition("=")
    if not wanted or wanted != step:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # the signal is delivered before this returns
    elif action == "sigint":
        # Ctrl-C as a terminal delivers it: a process started in the background by a shell inherits SIGINT ignored
        # (and Python then keeps it ignored), which no user at a terminal has
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.raise_signal(signal.SIGINT)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))
    else:
        raise ValueError(f"{FAULT_ENV}: unknown action {action!r} (choose one of {list(FAULT_ACTIONS)})")


def _temporary(path: Path) -> Path:
    """A new, empty temporary file beside ``path``, named so that it can be recognised as abandoned later."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{host_name()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def pid_alive(pid: int) -> bool:
    """True while a process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def stale_temporaries(folder: str | os.PathLike, stale_after_s: float = STALE_AFTER_S) -> Iterator[Path]:
    """The temporary files in ``folder`` (not below it) left by a writer that is gone: its process has ended on
    this host, or the file is older than ``stale_after_s`` seconds."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    now = time.time()
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match is None or not entry.is_file():
            continue
        dead = match["host"] == host_name() and not pid_alive(int(match["pid"]))
        try:
            old = now - entry.stat().st_mtime > stale_after_s
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
        if dead or old:
            yield entry


def remove_stale_temporaries(folder: str | os.PathLike, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the abandoned temporary files of ``folder`` (see :func:`stale_temporaries`); return them."""
    removed = []
    for entry in stale_temporaries(folder, stale_after_s):
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically.

    Parameters
    ----------
    path:
        Final destination. Its parent folder is created if needed.
    write:
        A function that writes the complete file to the temporary path it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _temporary(path)
    try:
        write(tmp_path)
        fault_point(f"write {path.name}", path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def create_exclusive(path: str | os.PathLike, text: str, step: str | None = None) -> Path:
    """Create ``path`` holding ``text`` in one step; raise :class:`FileExistsError` when it exists already.

    The text is written to a temporary file first and then hard-linked to ``path`` (a link never replaces an
    existing file), so no reader, and no crash, ever sees the file empty or half written. On a file system
    without hard links (some FUSE mounts) the file is created with ``O_EXCL`` and written at once instead.
    ``step`` names the :func:`fault_point` passed once the text is written (``"<step>"``) and once it is in place
    (``"<step> in place"``).
    """
    path = Path(path)
    tmp = _temporary(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        if step:
            fault_point(step, path)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
    finally:
        tmp.unlink(missing_ok=True)
    if step:
        fault_point(f"{step} in place", path)
    return path


def json_text(obj: Any) -> str:
    """``obj`` as indented, standard JSON: NaN and infinities (which JSON has no words for) are written as null."""
    return json.dumps(_finite(obj), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, standard JSON (:func:`json_text`) to ``path`` atomically."""
    return atomic_write_text(path, json_text(obj))


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save one array as ``.npy`` atomically."""

    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.save(f, array, allow_pickle=False)

    return atomic_write(path, write)


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save several arrays as an uncompressed ``.npz`` atomically."""

    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict) -> Path:
    """Save a ``{name: torch.Tensor}`` dict as ``.safetensors`` atomically."""
    from safetensors.torch import save_file

    return atomic_write(path, lambda p: save_file(tensors, str(p)))


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file's bytes, read in chunks (a ViT-B checkpoint takes about a second)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


#: The time stamp written into generated spreadsheets, so that the same content gives the same bytes.
FIXED_TIMESTAMP = (2000, 1, 1, 0, 0, 0)


def atomic_write_xlsx(path: str | os.PathLike, header: list[str], rows: list[list[Any]]) -> Path:
    """Write a one-sheet ``.xlsx`` atomically and reproducibly: the same rows give the same bytes.

    A spreadsheet is a zip archive that stamps the time twice: in each member's header and in the workbook's
    "created"/"modified" properties. Both are set to :data:`FIXED_TIMESTAMP`.
    """
    import datetime
    import io
    import zipfile

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)  # openpyxl sets "modified" to now while saving: fixed below
    stamp = datetime.datetime(*FIXED_TIMESTAMP).strftime("%Y-%m-%dT%H:%M:%SZ")

    def write(p: Path) -> None:
        with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as dst:
            for member in src.infolist():
                data = src.read(member.filename)
                if member.filename == "docProps/core.xml":
                    text = data.decode("utf-8")
                    for tag in ("dcterms:created", "dcterms:modified"):
                        start = text.find(f"<{tag}")
                        if start >= 0:
                            open_end = text.index(">", start) + 1
                            close = text.index(f"</{tag}>", open_end)
                            text = text[:open_end] + stamp + text[close:]
                    data = text.encode("utf-8")
                info = zipfile.ZipInfo(member.filename, date_time=FIXED_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = member.external_attr
                dst.writestr(info, data)

    return atomic_write(path, write)
