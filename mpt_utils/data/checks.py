"""Sanity checks of a dataset: is the class in single frames, or in the motion?

:func:`pixel_baselines` trains a linear probe (a logistic regression) under LOSO on (a) the apex frame alone,
(b) the onset-to-apex difference and (c) the dynamic image of the onset-to-offset clip, all downsampled. On CASME
II-like data (a) is near chance (identity dominates a single frame) while (b) and (c) carry some of the class,
about as much as hand-crafted features do on CASME II (macro F1 about 0.35-0.55), not all of it: that is what
makes MER a motion problem worth a model, and what the synthetic generator is calibrated to reproduce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from ..metrics import compute_metrics
from ..motion import magnification_energy, rank_pool
from .clips import read_clip, read_key_frame
from .samples import Sample

#: The magnification settings that notebook 03 and ``benchmarks/bench_magnification.py`` score with
#: :func:`magnification_table`: the paper's alpha and its neighbours, then at alpha 20 each remedy of Wu et al.'s
#: code (MIT's spatial cut-off lambda_c, the finest level left alone, chroma amplified ten times less) and all three.
MAGNIFICATION_SETTINGS: dict[str, dict[str, Any]] = {
    "alpha 0 (as recorded)": {"alpha": 0.0},
    "alpha 10": {"alpha": 10.0},
    "alpha 20 (paper)": {"alpha": 20.0},
    "alpha 30": {"alpha": 30.0},
    "alpha 50": {"alpha": 50.0},
    "alpha 20, lambda_c 16 px": {"alpha": 20.0, "lambda_c": 16.0},
    "alpha 20, finest level skipped": {"alpha": 20.0, "skip_finest": True},
    "alpha 20, YIQ, chroma x0.1": {"alpha": 20.0, "color": "yiq", "chroma_attenuation": 0.1},
    "alpha 20, all three": {"alpha": 20.0, "lambda_c": 16.0, "skip_finest": True, "color": "yiq",
                            "chroma_attenuation": 0.1},
}

#: The probe's inputs, in the order of :func:`pixel_baselines`' rows.
PROBE_INPUTS = ("apex frame", "onset-to-apex difference", "dynamic image")

#: The probe's settings where a caller gives none: frames read at 112 px, area-averaged to a 16 x 16 grid, inverse
#: regularisation strength C 0.1 (notebook 01 and ``benchmarks/bench_synthetic.py`` show other grids and C).
PROBE_SIZE, PROBE_GRID, PROBE_C = 112, 16, 0.1


def probe_model(C: float = PROBE_C):
    """The linear probe: standardise, rotate onto the training clips' span, balanced logistic regression.

    PCA keeping every component is a rotation onto the training clips' span, where an L2-regularised logistic
    regression's weights lie anyway: the same model, fitted in far fewer dimensions.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), PCA(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced"))


def probe_predictions(samples: Sequence[Sample], input_name: str, subjects: Sequence[str] | None = None,
                      grid: int = PROBE_GRID, C: float = PROBE_C, size: int = PROBE_SIZE,
                      num_frames: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-subject-out predictions of the linear probe on one input, for the clips of ``subjects``.

    input_name: one of :data:`PROBE_INPUTS`. subjects: the held-out subjects (default: every subject); each one's
    clips are predicted by a probe fitted on all other subjects' clips. Returns ``(indices, predicted labels)``:
    the held-out clips' positions in ``samples``, in order, and the label predicted for each.
    """
    if input_name not in PROBE_INPUTS:
        raise ValueError(f"unknown probe input {input_name!r}; choose from {list(PROBE_INPUTS)}")
    groups = np.array([s.group for s in samples])
    subjects = list(dict.fromkeys(groups)) if subjects is None else list(subjects)
    unknown = sorted(set(subjects) - set(groups))
    if unknown:
        raise ValueError(f"subjects {unknown} have no clips among the samples")
    if len(set(groups)) < 2:
        raise ValueError("the probe is evaluated leave-one-subject-out: the samples need at least 2 subjects")
    y = np.array([s.label for s in samples])
    x = _shrink(probe_images(samples, size, num_frames, inputs=(input_name,))[input_name], grid)
    return loso_probe(x, y, groups, subjects, C)


def loso_probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, subjects: Sequence[str],
               C: float = PROBE_C) -> tuple[np.ndarray, np.ndarray]:
    """The probe's leave-one-subject-out loop on features ``x`` ``(N, D)``: each subject of ``subjects`` predicted
    by a :func:`probe_model` fitted on every other subject's rows. Returns ``(indices, predicted labels)`` of the
    held-out rows, in row order."""
    indices, predictions = [], []
    for subject in subjects:
        held_out = groups == subject
        if held_out.all():
            raise ValueError("the probe is evaluated leave-one-subject-out: it needs at least 2 subjects")
        model = probe_model(C).fit(x[~held_out], y[~held_out])
        indices.append(np.flatnonzero(held_out))
        predictions.append(model.predict(x[held_out]))
    order = np.argsort(np.concatenate(indices), kind="stable")
    return np.concatenate(indices)[order], np.concatenate(predictions)[order]


def probe_images(samples: Sequence[Sample], size: int = PROBE_SIZE, num_frames: int = 16,
                 inputs: Sequence[str] = PROBE_INPUTS) -> dict[str, np.ndarray]:
    """Each probe input as (N, size, size) float32 grey levels: apex frame, apex minus onset, dynamic image
    (only those named in ``inputs``: the dynamic image reads every clip whole)."""
    rows: dict[str, list[np.ndarray]] = {name: [] for name in inputs}
    for s in samples:
        if "apex frame" in rows or "onset-to-apex difference" in rows:
            onset = read_key_frame(s, "onset", size).astype(np.float32).mean(-1)
            peak = read_key_frame(s, "apex", size).astype(np.float32).mean(-1)
            rows.get("apex frame", []).append(peak)
            rows.get("onset-to-apex difference", []).append(peak - onset)
        if "dynamic image" in rows:
            rows["dynamic image"].append(rank_pool(read_clip(s, num_frames=num_frames, size=size)).mean(-1))
    return {name: np.array(values, np.float32) for name, values in rows.items()}


def _shrink(images: np.ndarray, grid: int) -> np.ndarray:
    """(N, S, S) -> (N, grid * grid), area-averaged."""
    return np.array([cv2.resize(im, (grid, grid), interpolation=cv2.INTER_AREA).ravel() for im in images])


def pixel_baselines(samples: Sequence[Sample], size: int = PROBE_SIZE, grid: int | Sequence[int] = PROBE_GRID,
                    C: float | Sequence[float] = PROBE_C, classes: Sequence[str] | None = None,
                    num_frames: int = 16, n_jobs: int | None = None):
    """LOSO macro F1, UAR and accuracy of a linear probe on apex pixels, onset-to-apex change and dynamic image.

    Parameters
    ----------
    samples: the clips (their subjects are the LOSO groups).
    size: the frames are read at ``size`` x ``size`` pixels, then area-averaged to ``grid`` x ``grid``.
    grid, C: the probe's input grid and inverse regularisation strength; give lists to run every
        combination (a table row per input, grid and C), e.g. to show a result does not hang on one setting.
    classes: the class names in order (default: sorted labels).
    num_frames: frames rank-pooled into the dynamic image.
    n_jobs: folds fitted in parallel (scikit-learn's ``n_jobs``; None: one at a time).

    Returns a pandas table indexed by (input, grid, C) with ``macro F1``, ``UAR`` and ``accuracy``, plus a chance
    row (F1 and UAR of always answering one class are at most 1 / classes).
    """
    import pandas as pd
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict

    if len(samples) < 2:
        raise ValueError(f"pixel_baselines needs at least 2 samples, got {len(samples)}")
    y = np.array([s.label for s in samples])
    groups = np.array([s.group for s in samples])
    if len(set(groups)) < 2:
        raise ValueError("pixel_baselines evaluates leave-one-subject-out: the samples need at least 2 subjects")
    classes = list(classes) if classes is not None else sorted(set(y))
    grids = [grid] if np.isscalar(grid) else list(grid)
    strengths = [C] if np.isscalar(C) else list(C)
    images = probe_images(samples, size, num_frames)
    rows = []
    for g in grids:
        for name in PROBE_INPUTS:
            x = _shrink(images[name], int(g))
            for c in strengths:
                pred = cross_val_predict(probe_model(c), x, y, groups=groups, cv=LeaveOneGroupOut(), n_jobs=n_jobs)
                m = compute_metrics(y, pred, classes)
                rows.append({"input": name, "grid": int(g), "C": float(c), "macro F1": m["f1"], "UAR": m["uar"],
                             "accuracy": m["accuracy"]})
    rows.append({"input": "chance (F1/UAR)", "grid": 0, "C": 0.0, "macro F1": 1 / len(classes),
                 "UAR": 1 / len(classes), "accuracy": float(np.max([np.mean(y == c) for c in classes]))})
    table = pd.DataFrame(rows)
    if len(grids) == 1 and len(strengths) == 1:
        return table.drop(columns=["grid", "C"]).set_index("input")
    return table.set_index(["input", "grid", "C"])


def probe_ranges(table) -> pd.DataFrame:  # noqa: F821  (pandas is imported lazily)
    """The lowest and highest macro F1 of each probe input over the grids and C values of a
    :func:`pixel_baselines` table (one row per input: ``min``, ``max``)."""
    scores = table["macro F1"].drop("chance (F1/UAR)", level=0, errors="ignore")
    return scores.groupby(level=0, sort=False).agg(["min", "max"])


def dynamic_scaling_table(samples: Sequence[Sample], size: int = PROBE_SIZE, num_frames: int = 16,
                          grids: Sequence[int] = (PROBE_GRID, 32), classes: Sequence[str] | None = None):
    """Each way of scaling a dynamic image to [0, 1] (:data:`~mpt_utils.motion.DYNAMIC_SCALINGS`), measured.

    Every clip is read at ``size`` pixels and ``num_frames`` frames, rank-pooled and scaled. Returns a pandas table,
    one row per scaling: where "no change" (d = 0) lands, as the mean and spread (std) of its grey level over the
    clips (min-max puts it at ``-min / (max - min)`` of each image; zero-centred at 0.5), and the LOSO macro F1
    of the linear probe (:func:`probe_model`) on the scaled images' grey levels at each grid of ``grids``.
    """
    import pandas as pd
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict

    from ..motion import DYNAMIC_SCALINGS, scale_dynamic_image

    y = np.array([s.label for s in samples])
    groups = np.array([s.group for s in samples])
    if len(set(groups)) < 2:
        raise ValueError("the probe is evaluated leave-one-subject-out: the samples need at least 2 subjects")
    classes = list(classes) if classes is not None else sorted(set(y))
    pooled = [rank_pool(read_clip(s, num_frames=num_frames, size=size)) for s in samples]
    rows = []
    for method in DYNAMIC_SCALINGS:
        grey = np.array([scale_dynamic_image(d, method).mean(-1) for d in pooled])
        zero = [float(-d.min() / (d.max() - d.min())) if method == "minmax" and d.max() > d.min() else 0.5
                for d in pooled]
        row = {"scaling": method, "no-change grey: mean": float(np.mean(zero)),
               "no-change grey: std": float(np.std(zero))}
        for g in grids:
            pred = cross_val_predict(probe_model(), _shrink(grey, int(g)), y, groups=groups, cv=LeaveOneGroupOut())
            row[f"probe F1 (grid {g})"] = compute_metrics(y, pred, classes)["f1"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("scaling")


def magnification_table(samples: Sequence[Sample], clean_samples: Sequence[Sample],
                        settings: Mapping[str, Mapping[str, Any]], size: int = 112, num_frames: int = 16,
                        progress: bool = True):
    """How much of each magnified clip is expression and how much nuisance, for several magnification settings.

    samples, clean_samples: a synthetic set and its :func:`~mpt_utils.data.clean_twin` (paired by clip key).
    settings: a name per setting, and its :func:`~mpt_utils.motion.magnify` arguments (``{"alpha": 0}``: none).
    size, num_frames: each clip is read as the model reads it, ``num_frames`` frames of ``size`` pixels.

    Returns a pandas table, one row per setting: the mean expression and nuisance energy in grey levels RMS
    (:func:`~mpt_utils.motion.magnification_energy`), the pooled expression share (mean expression over mean
    expression plus mean nuisance) and the median of the clips' shares.
    """
    import pandas as pd

    from ..runtime import progress_bar

    twins = {s.key: s for s in clean_samples}
    missing = [s.key for s in samples if s.key not in twins]
    if missing:
        raise ValueError(f"{len(missing)} clips have no clean twin (first: {missing[0]}); render the twin of this "
                         "very set with clean_twin(root)")
    if not settings:
        raise ValueError("give at least one magnification setting, e.g. {'none': {'alpha': 0}}")
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    for s in progress_bar(samples, desc="magnification energy", disable=not progress):
        clip, clean = read_clip(s, num_frames, size), read_clip(twins[s.key], num_frames, size)
        for name, kwargs in settings.items():
            scores[name].append(magnification_energy(clip, clean, **kwargs))
    rows = []
    for name, values in scores.items():
        expression = float(np.mean([v["expression"] for v in values]))
        nuisance = float(np.mean([v["nuisance"] for v in values]))
        rows.append({"setting": name, "expression (grey levels)": expression, "nuisance (grey levels)": nuisance,
                     "expression share": expression / (expression + nuisance),
                     "median clip share": float(np.nanmedian([v["expression_share"] for v in values]))})
    return pd.DataFrame(rows).set_index("setting")
