"""The environment report: the stack's versions, the device, the precision, the threads."""

from __future__ import annotations

import importlib
import platform

from .devices import select_device, select_precision
from .kernel import in_colab


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
