"""The linear probe: a logistic regression on a few hundred downsampled pixels, under leave-one-subject-out.

It answers, for a dataset, whether the class is in single frames or in the motion. :func:`pixel_baselines` fits
it on (a) the apex frame alone, (b) the onset-to-apex difference and (c) the dynamic image of the
onset-to-offset clip, all downsampled. On CASME II-like data (a) is near chance (identity dominates a single
frame) while (b) and (c) carry some of the class, about as much as hand-crafted features do on CASME II (macro F1
about 0.35-0.55), not all of it: that is what makes MER a motion problem worth a model, and what the synthetic
generator is calibrated to reproduce. :func:`dynamic_scaling_table` scores the ways of scaling a dynamic image.

As a **row of an experiment** (:func:`run_probe`), beside the LOSO runs of MPT and its variants, the probe is
scored on the same held-out subjects as a run of ``config`` (:func:`~mpt_utils.train.folds_to_run`), with the
same pooled metrics, so its row and MPT's can share a table. It takes seconds, so it always runs in the calling
process, whichever executor trains the other rows. Its folder holds ``config.json`` (checked like a LOSO run's),
``probe.json`` (the probe's settings), ``predictions.csv``, ``results.json`` and ``summary.md``, each written
atomically; a finished probe is read back, never refitted. :func:`frozen_feature_probe` fits it on a run's
frozen features.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..config import TrainConfig
from ..data import Sample, read_clip, read_key_frame
from ..io import atomic_write, atomic_write_json, atomic_write_text
from ..metrics import compute_metrics
from ..motion import rank_pool
from .loso import LOSOResult, folds_to_run, open_run, summary_markdown
from .run_folder import RunFolder

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


#: What a probe folder's ``probe.json`` records; a folder that records other settings is refused.
PROBE_FILE = "probe.json"


def probe_done(out_dir: str | Path) -> bool:
    """True when the probe in ``out_dir`` has written its results (its last file, ``results.json``)."""
    return RunFolder(out_dir).results.is_file() and (Path(out_dir) / PROBE_FILE).is_file()


def run_probe(samples: Sequence[Sample], config: TrainConfig, input_name: str, out_dir: str | Path,
              grid: int = PROBE_GRID, C: float = PROBE_C) -> LOSOResult:
    """Fit and score the linear probe on ``input_name`` (one of :data:`PROBE_INPUTS`) on the
    held-out subjects of a run of ``config``; or read it back when ``out_dir`` already holds it.

    Returns a :class:`LOSOResult` like a LOSO run's: pooled metrics, one prediction per held-out clip, one row per
    fold (the fit's seconds shared evenly); ``features`` has no columns (a probe learns no features to show).
    """
    if input_name not in PROBE_INPUTS:
        raise ValueError(f"unknown probe input {input_name!r}; choose from {list(PROBE_INPUTS)}")
    out_dir = Path(out_dir)
    config = open_run(samples, config, out_dir)  # refuses a folder of another run or dataset
    settings = {"input": input_name, "grid": int(grid), "C": float(C), "size": PROBE_SIZE,
                "num_frames": config.num_frames}
    saved = out_dir / PROBE_FILE
    if saved.is_file() and json.loads(saved.read_text()) != settings:
        raise ValueError(f"{out_dir} holds a probe with other settings ({saved.read_text().strip()}); "
                         f"use another folder for {settings}")
    if probe_done(out_dir):
        return load_probe(samples, config, out_dir)
    subjects = [subject for subject, _, _ in folds_to_run(samples, config)]
    start = time.perf_counter()
    indices, predicted = probe_predictions(samples, input_name, subjects, grid=grid, C=C, size=PROBE_SIZE,
                                           num_frames=config.num_frames)
    seconds = time.perf_counter() - start
    import pandas as pd

    predictions = pd.DataFrame({"index": indices, "key": [samples[i].key for i in indices],
                                "dataset": [samples[i].dataset for i in indices],
                                "subject": [samples[i].group for i in indices],
                                "label": [samples[i].label for i in indices], "prediction": predicted})
    folder = RunFolder(out_dir)  # a probe's folder holds a run folder's config and pooled files, and no folds
    atomic_write_json(saved, settings)
    atomic_write(folder.predictions, lambda p: predictions.to_csv(p, index=False))
    result = _result(samples, config, out_dir, predictions, seconds)
    atomic_write_text(folder.summary, summary_markdown(result.metrics, config).replace(
        f"# LOSO results: {config.variant}", f"# LOSO results: linear probe on the {input_name}"))
    atomic_write_json(folder.results, result.metrics)  # last: it marks the probe done
    return result


def load_probe(samples: Sequence[Sample], config: TrainConfig, out_dir: str | Path) -> LOSOResult:
    """The finished probe of ``out_dir`` (:func:`run_probe` wrote it), pooled again from its predictions."""
    import pandas as pd

    out_dir = Path(out_dir)
    if not probe_done(out_dir):
        raise FileNotFoundError(f"{out_dir} holds no finished probe: run it with run_probe")
    folder = RunFolder(out_dir)
    predictions = pd.read_csv(folder.predictions, dtype={"subject": str, "label": str, "prediction": str})
    seconds = json.loads(folder.results.read_text()).get("seconds", 0.0)
    return _result(samples, config, out_dir, predictions, seconds)


def _result(samples: Sequence[Sample], config: TrainConfig, out_dir: Path, predictions, seconds: float) -> LOSOResult:
    import pandas as pd

    classes = list(config.classes)
    metrics = compute_metrics(predictions["label"], predictions["prediction"], classes,
                              groups=predictions["subject"])
    n_folds = len({s.group for s in samples})
    folds_run = predictions["subject"].nunique()
    metrics.update({"folds_run": folds_run, "folds_total": n_folds, "complete": folds_run == n_folds,
                    "label": config.label, "variant": "linear probe", "random_backbone": False,
                    "seconds": float(seconds)})
    folds = pd.DataFrame([{"subject": subject, "n_train": len(samples) - len(part), "n_test": len(part),
                           "accuracy": float((part["label"] == part["prediction"]).mean()),
                           "seconds": seconds / folds_run}
                          for subject, part in predictions.groupby("subject", sort=False)])
    no_features = np.zeros((len(predictions), 0), np.float32)  # a probe has no learnt features to show
    return LOSOResult(metrics, predictions, folds, no_features, config, out_dir, bool(metrics["complete"]))


def frozen_feature_probe(result: LOSOResult, C: float = PROBE_C) -> dict:
    """The linear probe on the frozen backbone's own features: does the backbone see what the pixel probe sees?

    ``result``: a finished head-only LOSO run (:func:`~mpt_utils.train.run_loso` with ``variant="head_only"``).
    Its held-out CLS features come from the frozen backbone alone (only the head is trained, after them), so they
    are the same whichever fold computed them; :func:`probe_model` reads them under the same
    leave-one-subject-out folds. Another variant's features change with each fold's tuned prompts and adapters,
    and are refused. Returns :func:`~mpt_utils.metrics.compute_metrics` of the pooled predictions.
    """
    if result.config.variant != "head_only":
        raise ValueError(f"only a head-only run's features are the frozen backbone's; got a {result.config.variant!r} "
                         "run, whose features change with each fold's tuned parts")
    p = result.predictions
    groups, labels = p["subject"].to_numpy(), p["label"].to_numpy()
    _, predicted = loso_probe(result.features, labels, groups, list(dict.fromkeys(groups)), C)  # every row, in order
    return compute_metrics(labels, predicted, list(result.config.classes), groups=groups)
