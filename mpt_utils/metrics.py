"""Metrics exactly as the paper defines them (eqs. 18-21), on predictions pooled over all folds.

- accuracy = correct / all samples;
- F1 = mean over classes of the per-class F1 ``2 TP / (2 TP + FP + FN)``; this is also MEGC's
  "UF1" (one number, two names);
- UAR = mean over classes of the per-class recall (scikit-learn's balanced accuracy);
- the confusion matrix (rows: true class, columns: predicted class).

A class that is never predicted and never present has F1 0 (scikit-learn's convention).
Per-fold means are computed only when the folds are passed, and are labelled as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def per_class_scores(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of every class ``(C,)`` from a confusion matrix ``(C, C)`` (rows: truth, columns:
    prediction). A class never predicted and never true scores 0, not NaN."""
    tp = np.diag(confusion).astype(float)
    fp = confusion.sum(axis=0) - tp  # predicted as the class, but another
    fn = confusion.sum(axis=1) - tp  # the class, predicted as another
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return precision, recall, f1


def compute_metrics(
    y_true: Sequence,
    y_pred: Sequence,
    labels: Sequence,
    groups: Sequence | None = None,
) -> dict[str, Any]:
    """Pooled accuracy, F1 (= UF1), UAR, per-class scores and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred: labels (class names or indices), same length.
    labels: every class, in display order (classes absent from ``y_true`` still count).
    groups: optional fold of each sample; adds ``per_fold_mean_accuracy``, ``per_fold_mean_f1`` and
        ``per_fold_mean_uar``: means of per-fold scores, *not* the paper's protocol. A fold's F1 and UAR both
        average over the classes present in that fold's truth (a subject without a class is not scored on it).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and the same length, got {y_true.shape} and {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("no predictions to score")
    labels = list(labels)
    index = {c: i for i, c in enumerate(labels)}
    unknown = sorted({str(v) for v in np.concatenate([y_true, y_pred]) if v not in index})
    if unknown:
        raise ValueError(f"labels {unknown} are not among {labels}")
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, ([index[v] for v in y_true], [index[v] for v in y_pred]), 1)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    precision, recall, f1 = per_class_scores(confusion)
    present = support > 0
    result: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(tp.sum() / len(y_true)),
        "f1": float(f1.mean()),
        "uf1": float(f1.mean()),
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "labels": [str(c) for c in labels],
        "confusion": confusion.tolist(),
        "per_class": {
            str(c): {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                     "support": int(support[i])}
            for i, c in enumerate(labels)
        },
    }
    if groups is not None:
        groups = np.asarray(groups)
        folds = [compute_metrics(y_true[groups == g], y_pred[groups == g], labels) for g in np.unique(groups)]
        result["per_fold_mean_accuracy"] = float(np.mean([f["accuracy"] for f in folds]))
        result["per_fold_mean_f1"] = float(np.mean([
            np.mean([m["f1"] for m in f["per_class"].values() if m["support"] > 0]) for f in folds]))
        result["per_fold_mean_uar"] = float(np.mean([f["uar"] for f in folds]))
    return result


def chance_level(labels: Sequence) -> float:
    """F1/UAR of a guess that ignores the input: 1 / number of classes (for UAR exactly)."""
    return 1.0 / len(list(labels))


def _subject_draws(units: np.ndarray, n_boot: int, seed: int):
    """``n_boot`` index arrays, each a draw with replacement of the distinct ``units`` (all rows of a unit)."""
    if n_boot < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot}")
    members = [np.flatnonzero(units == u) for u in np.unique(units)]
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])


def _percentiles(scores: list[float], level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.9), got {level}")
    low, high = np.quantile(scores, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _units(groups: Sequence | None, n: int) -> np.ndarray:
    units = np.asarray(groups) if groups is not None else np.arange(n)
    if units.shape != (n,):
        raise ValueError(f"groups must have one entry per value ({n}), got shape {units.shape}")
    return units


def bootstrap_interval(
    y_true: Sequence,
    y_pred: Sequence,
    labels: Sequence,
    metric: str = "f1",
    groups: Sequence | None = None,
    level: float = 0.9,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """The ``level`` percentile interval of a pooled metric when the held-out set is drawn again.

    Each of ``n_boot`` draws resamples, with replacement, the subjects in ``groups`` (all clips of a drawn subject
    together, since clips of one person are not independent) or, without ``groups``, the clips; the metric is
    computed on the pooled draw. Two runs whose scores both lie inside each other's interval cannot be told apart
    on this many clips. ``metric`` is a key of :func:`compute_metrics` (``"f1"``, ``"uar"`` or ``"accuracy"``).
    """
    if metric not in ("f1", "uf1", "uar", "accuracy"):
        raise ValueError(f"metric must be 'f1', 'uar' or 'accuracy', got {metric!r}")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    units = _units(groups, len(y_true))
    scores = [compute_metrics(y_true[d], y_pred[d], labels)[metric] for d in _subject_draws(units, n_boot, seed)]
    return _percentiles(scores, level)


def mean_interval(
    values: Sequence[float],
    groups: Sequence | None = None,
    level: float = 0.9,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """The ``level`` percentile interval of the mean of ``values``, resampling subjects (``groups``) as
    :func:`bootstrap_interval` does; e.g. of a per-clip score, or of the per-clip difference of two models.

    NaN values (a score that is undefined for a clip, such as :func:`~mpt_utils.analysis.cam_in_mask` of an
    all-zero map) are left out with their subjects' entries; say how many where you report the interval.
    """
    values = np.asarray(values, dtype=np.float64)
    units = _units(groups, len(values))
    defined = ~np.isnan(values)
    if not defined.any():
        raise ValueError(f"all {len(values)} values are NaN: there is no mean to give an interval for")
    values, units = values[defined], units[defined]
    return _percentiles([float(values[d].mean()) for d in _subject_draws(units, n_boot, seed)], level)
