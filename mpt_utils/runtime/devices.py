"""Seeds, the device and the precision: the rules every notebook and command line follows.

- device: CUDA first, then Apple's MPS, then the CPU;
- precision: automatic mixed precision on CUDA (bfloat16 where the GPU supports it, float16 with
  a gradient scaler otherwise), float32 elsewhere;
- a fold runs with the CPU thread count its configuration names (:func:`intra_op_threads`).
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


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
