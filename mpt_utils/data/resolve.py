"""Where the data comes from: a real dataset the user points at, or the synthetic default.

Notebooks and command lines call :func:`resolve_dataset` with what the user gave (a root, or
nothing): an explicit ``data_root`` wins, then the ``MPT_DATA_ROOT`` environment variable, and
otherwise the synthetic set for the profile is generated (once) under ``data/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..profiles import Profile
from ..runtime import DATA_ROOT_ENV, work_dir
from .samples import Sample


def default_synthetic_root(profile: Profile, base: str | Path | None = None) -> Path:
    """``data/synthetic-<profile>`` in the working folder (or under ``base``)."""
    base = Path(base) if base is not None else work_dir() / "data"
    return base / f"synthetic-{profile.name}"


def resolve_dataset(
    profile: Profile,
    dataset: str = "synthetic",
    data_root: str | Path | None = None,
    classes: str | None = None,
    progress: bool = True,
) -> tuple[list[Sample], Path, str]:
    """Load the dataset a run should use.

    Returns ``(samples, root, dataset)``. For ``dataset="synthetic"`` with no root given, the
    profile's synthetic set is generated (deterministically, once) and loaded.
    """
    from .loaders import load_dataset
    from .synthetic import make_synthetic

    root = data_root or os.environ.get(DATA_ROOT_ENV) or None
    if dataset == "synthetic":
        root = Path(root) if root else default_synthetic_root(profile)
        make_synthetic(
            root,
            n_subjects=profile.synthetic_subjects,
            n_clips=profile.synthetic_clips,
            seed=0,
            progress=progress,
        )
    elif root is None:
        raise ValueError(
            f"dataset {dataset!r} needs its folder: pass data_root=... (or --data-root) or set "
            f"{DATA_ROOT_ENV}; see the README section 'Using the real datasets'"
        )
    samples = load_dataset(dataset, root, classes=classes)
    return samples, Path(root), dataset
