"""Where the code runs (Colab, a headless notebook runner) and the progress bars that suit it."""

from __future__ import annotations

import os
import subprocess
import sys


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


#: Programs that execute notebooks without a front end (no browser renders widgets there).
HEADLESS_RUNNERS = ("papermill", "nbclient", "nbconvert", "mpt_utils.notebooks")


def _process_line(pid: int) -> tuple[int, str] | None:
    """``(parent pid, command line)`` of a process, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:  # Linux
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return ppid, f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        pass
    try:  # macOS and other POSIX systems
        out = subprocess.run(["ps", "-o", "ppid=,command=", "-p", str(pid)], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        ppid, command = out.split(None, 1)
        return int(ppid), command
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


#: Set to "1" by whatever executes notebooks without a front end (this project's runner and its notebook tests);
#: kernels inherit it from the process that starts them.
HEADLESS_ENV = "MPT_HEADLESS"


def headless_kernel() -> bool:
    """True when this kernel is executed by papermill, nbclient or nbconvert (or this project's runner): when
    ``MPT_HEADLESS=1``, or else when one of the processes that started it is one of those programs. No browser
    front end will render widgets here."""
    if os.environ.get(HEADLESS_ENV) == "1":
        return True
    pid = os.getppid()
    for _ in range(4):  # the kernel's parent and a few of its ancestors
        found = _process_line(pid)
        if found is None:
            return False
        pid, command = found
        if any(runner in command for runner in HEADLESS_RUNNERS):
            return True
        if pid <= 1:
            return False
    return False


def progress_bar(iterable=None, **kwargs):
    """A tqdm progress bar that reads well live *and* saved: ``tqdm.auto`` (a widget in Jupyter, text in a
    terminal), but plain text when the kernel runs headless (:func:`headless_kernel`), where a saved widget would
    show its first state ("0%") for ever. The text bar redraws at most once a minute and ends on its final state,
    which is what an executed notebook shows once its stream outputs are merged (as JupyterLab does); an inner bar
    (``leave=False``) is not drawn there at all. Arguments as for ``tqdm.tqdm``."""
    if headless_kernel():
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 60.0)
        if kwargs.get("leave") is False:  # an inner bar that vanishes when done has no final state to keep
            kwargs["disable"] = True
        kwargs.setdefault("file", sys.stderr)
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)
