"""The run folder: where one LOSO run keeps everything, and the one module that knows its layout.

::

    config.json                 the TrainConfig and the dataset's fingerprint (checked on rerun)
    train.log                   the log of every run in this folder
    folds/<subject>/            one folder per finished fold, renamed into place when complete:
        trainable.safetensors     the trained tensors only (the frozen backbone is not copied)
        predictions.npz           held-out indices, labels, predictions, logits, CLS features
        fed_indices.npy           every sample index that was fed to training in this fold
        metrics.json              the fold's metrics, losses per epoch, timing, device, precision, threads
        COMPLETE                  who finished it and when (host, process, SLURM job)
    folds/.claim-<subject>.json the worker training that fold right now (see :mod:`.claims`)
    folds/.tmp-<subject>-<id>/  a fold being written; renamed to folds/<subject>/ when complete
    results.json, predictions.csv, summary.md   pooled results over the finished folds

Every module that reads or writes a run folder asks a :class:`RunFolder` for its paths (the LOSO loop, the
executors, the experiments' tables, the analysis that reloads a fold), so a new fold artefact or a renamed file
is one change here. A fold's subject becomes a folder name with :func:`fold_dir_name`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def fold_dir_name(subject: str) -> str:
    """The folder name of a subject's fold (``synthetic/sub01`` -> ``synthetic_sub01``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", subject)


@dataclass(frozen=True)
class RunFolder:
    """The paths of the run folder ``path`` (nothing is created or read by making one)."""

    path: Path

    #: The files of a finished fold's folder, by what they hold.
    WEIGHTS = "trainable.safetensors"
    PREDICTIONS = "predictions.npz"
    FED = "fed_indices.npy"
    METRICS = "metrics.json"
    COMPLETE = "COMPLETE"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def log(self) -> Path:
        return self.path / "train.log"

    @property
    def folds(self) -> Path:
        return self.path / "folds"

    @property
    def results(self) -> Path:
        return self.path / "results.json"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def summary(self) -> Path:
        return self.path / "summary.md"

    def fold(self, subject: str) -> Path:
        """The finished fold's folder (it exists only once the fold is complete)."""
        return self.folds / fold_dir_name(subject)

    def claim(self, subject: str) -> Path:
        """The claim file of the worker training the fold now (see :mod:`.claims`)."""
        return self.folds / f".claim-{fold_dir_name(subject)}.json"

    def claims(self) -> Iterator[tuple[str, Path]]:
        """``(fold folder name, claim file)`` of every claim in the folder."""
        for path in self.folds.glob(".claim-*.json"):
            yield path.name[len(".claim-"):-len(".json")], path

    def temporary_fold(self, subject: str, token: str) -> Path:
        """Where a worker holding the claim ``token`` writes the fold before renaming it into place."""
        return self.folds / f".tmp-{fold_dir_name(subject)}-{token[:8]}"

    def temporary_folds(self, subject: str) -> Iterator[Path]:
        """The fold's temporary folders (a killed worker's, when the fold is not claimed by a live one)."""
        return self.folds.glob(f".tmp-{fold_dir_name(subject)}-*")

    def fold_done(self, subject: str) -> bool:
        """True when the subject's fold folder is complete (it appears, by one rename, with its ``COMPLETE``
        marker)."""
        final = self.fold(subject)
        return (final / self.COMPLETE).is_file() or (final / self.METRICS).is_file()

    def finished_folds(self) -> list[Path]:
        """The finished folds' folders, sorted by name."""
        return [f for f in sorted(self.folds.iterdir()) if not f.name.startswith(".") and (f / self.METRICS).exists()]
