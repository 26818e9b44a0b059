"""Seeds, device and precision selection, and where we are running (Colab, papermill, CI).

Every notebook and command line calls :func:`seed_everything` and :func:`select_device` from
here, so the rules live in one place:

- device: CUDA first, then Apple's MPS, then the CPU;
- precision: automatic mixed precision on CUDA (bfloat16 where the GPU supports it, float16 with
  a gradient scaler otherwise), float32 elsewhere.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import platform
import random
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The repository's public address: the Colab cells and badges of every notebook use it, and a
#: test checks that they agree with this constant. A fork changes it here (and in the notebooks).
REPO_URL = "https://github.com/mpt-tutorial/mpt-tutorial"

#: Environment variable that points the loaders at the real datasets (see README).
DATA_ROOT_ENV = "MPT_DATA_ROOT"

#: Where the repository lives when it is installed in editable mode (notebooks/, data/ ...).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Environment variable for the working folder that holds outputs/, data/synthetic-*/ and
#: data/cache/ (the Colab cells point it at Google Drive so that nothing is lost on disconnect).
HOME_ENV = "MPT_HOME"


def work_dir() -> Path:
    """The working folder: ``$MPT_HOME``, else the repository (editable install), else ``~/mpt-tutorial``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    if (REPO_ROOT / "notebooks").is_dir() and os.access(REPO_ROOT, os.W_OK):
        return REPO_ROOT
    return Path.home() / "mpt-tutorial"


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) with ``seed``.

    With ``deterministic=True`` PyTorch is asked for deterministic algorithms where they exist
    (``warn_only``: a GPU op without one warns rather than fails), so that a CPU run with a fixed
    seed repeats bit for bit.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def select_device(preference: str = "auto"):
    """Return a :class:`torch.device`: ``"auto"`` picks CUDA, then MPS, then CPU.

    Parameters
    ----------
    preference:
        ``"auto"``, or an explicit ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"cpu"``. An explicit
        device that is not available raises :class:`RuntimeError` instead of silently running
        somewhere else.
    """
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {preference!r} was asked for but CUDA is not available here; "
            "use device='auto' or 'cpu' (on Colab: Runtime > Change runtime type > GPU)."
        )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise RuntimeError(f"device {preference!r} was asked for but MPS is not available here.")
    return device


@contextmanager
def intra_op_threads(threads: int | None):
    """Run the block with ``threads`` CPU threads for tensor operations (None: leave torch's default).

    A fold's numbers can depend on the thread count (the order of floating-point sums), so every executor
    runs a fold with the count its configuration names.
    """
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Precision:
    """How to run the forward pass: ``dtype`` is None for plain float32."""

    dtype: object | None
    use_scaler: bool

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "")


def select_precision(device, preference: str = "auto") -> Precision:
    """Mixed precision policy for ``device``.

    ``"auto"``: bfloat16 autocast on CUDA GPUs that support it, float16 with a gradient scaler on
    older CUDA GPUs, float32 on CPU and MPS. ``"fp32"``, ``"bf16"`` and ``"fp16"`` force a choice, on any
    device: the CPU runs bf16 and fp16 autocast too (fp16 with torch's gradient scaler for the CPU), so every
    code path a GPU takes is exercised without one.
    """
    import torch

    choices = {"auto", "fp32", "bf16", "fp16"}
    if preference not in choices:
        raise ValueError(f"precision must be one of {sorted(choices)}, got {preference!r}")
    if preference == "fp32" or (preference == "auto" and device.type != "cuda"):
        return Precision(None, False)
    if preference == "auto":
        preference = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if preference == "bf16":
        return Precision(torch.bfloat16, False)
    return Precision(torch.float16, True)


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


class _PlainHandler(logging.Handler):
    """Writes a record's message alone to the *current* ``sys.stderr`` (a notebook's, a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


#: The logger of messages meant for the user: expected facts (a class scheme dropped clips, an apex was estimated)
#: in plain words, without the source line a ``UserWarning`` prints (which a learner reads as a bug). The
#: package's other loggers (a run's train.log) are left as they are.
logger = logging.getLogger("mpt_utils.messages")
if not logger.handlers:
    logger.addHandler(_PlainHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


@functools.cache
def say_once(message: str) -> None:
    """Log ``message`` (level INFO on the ``mpt_utils.messages`` logger) the first time this process says it;
    repeats of the same sentence (the same data loaded again by another step) stay quiet.
    ``say_once.cache_clear()`` forgets what was said."""
    logger.info(message)


@contextmanager
def quiet():
    """Within this block the package says nothing (:func:`say_once` included): for data whose facts do not
    matter to the user (the AU corpus' emotion column, which pre-training ignores)."""
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


def _version(module: str) -> str:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception as exc:  # an environment report must never crash
        return f"not importable ({type(exc).__name__}: {exc})"


def environment_report() -> dict[str, str]:
    """Versions of the stack, the selected device and whether a GPU is present.

    Returns a flat ``{name: value}`` dict for printing as a table.
    """
    import torch

    report = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ["torch", "timm", "cv2", "numpy", "scipy", "sklearn", "matplotlib", "papermill"]:
        report[name] = _version(name)
    device = select_device("auto")
    report["device"] = str(device)
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    report["precision"] = select_precision(device).name
    report["torch threads"] = str(torch.get_num_threads())
    report["colab"] = str(in_colab())
    return report
