"""Sanity checks of a dataset: is the class in single frames, or in the motion?

:func:`pixel_baselines` trains a linear classifier under LOSO on (a) the apex frame alone and (b)
the onset-to-apex difference, both downsampled. On CASME II-like data (a) should be near chance
(identity dominates a single frame) while (b) carries the class: that is what makes MER a
motion problem, and what the synthetic generator is built to reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..metrics import compute_metrics
from .clips import read_key_frame
from .samples import Sample


def _features(samples: Sequence[Sample], size: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    apex, diff = [], []
    for s in samples:
        onset = read_key_frame(s, "onset", size).astype(np.float32).mean(-1)
        peak = read_key_frame(s, "apex", size).astype(np.float32).mean(-1)
        shrink = (grid, grid)
        apex.append(cv2.resize(peak, shrink, interpolation=cv2.INTER_AREA).ravel())
        diff.append(cv2.resize(peak - onset, shrink, interpolation=cv2.INTER_AREA).ravel())
    return np.array(apex), np.array(diff)


def pixel_baselines(samples: Sequence[Sample], size: int = 112, grid: int = 16, classes: Sequence[str] | None = None):
    """LOSO macro F1, UAR and accuracy of a logistic regression on apex pixels vs onset-to-apex change.

    Returns a pandas table with one row per input (``apex frame``, ``onset-to-apex difference``)
    and a chance row (F1 and UAR of always answering one class are at most 1 / classes).
    """
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.array([s.label for s in samples])
    groups = np.array([s.group for s in samples])
    classes = list(classes) if classes is not None else sorted(set(y))
    apex, diff = _features(samples, size, grid)
    rows = []
    for name, x in [("apex frame", apex), ("onset-to-apex difference", diff)]:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced"))
        pred = cross_val_predict(model, x, y, groups=groups, cv=LeaveOneGroupOut())
        m = compute_metrics(y, pred, classes)
        rows.append({"input": name, "macro F1": m["f1"], "UAR": m["uar"], "accuracy": m["accuracy"]})
    rows.append({"input": "chance (F1/UAR)", "macro F1": 1 / len(classes), "UAR": 1 / len(classes),
                 "accuracy": float(np.max([np.mean(y == c) for c in classes]))})
    return pd.DataFrame(rows).set_index("input")
