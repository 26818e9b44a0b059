"""A linear probe as a row of an experiment, beside the LOSO runs of MPT and its variants.

The probe (:func:`mpt_utils.data.probe_model`: a logistic regression on a 16 x 16 grid of one pixel input) is scored
on the same held-out subjects as a run of ``config`` (:func:`~mpt_utils.train.folds_to_run`), with the same pooled
metrics, so its row and MPT's can share a table. It takes seconds, so it always runs in the calling process,
whichever executor trains the other rows. Its folder holds ``config.json`` (checked like a LOSO run's),
``probe.json`` (the probe's settings), ``predictions.csv``, ``results.json`` and ``summary.md``, each written
atomically; a finished probe is read back, never refitted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..data import PROBE_INPUTS, Sample, probe_predictions
from ..data.checks import PROBE_C, PROBE_GRID, PROBE_SIZE, loso_probe
from ..io import atomic_write, atomic_write_json, atomic_write_text
from ..metrics import compute_metrics
from .loso import LOSOResult, folds_to_run, open_run, summary_markdown

#: What a probe folder's ``probe.json`` records; a folder that records other settings is refused.
PROBE_FILE = "probe.json"


def probe_done(out_dir: str | Path) -> bool:
    """True when the probe in ``out_dir`` has written its results (its last file, ``results.json``)."""
    return (Path(out_dir) / "results.json").is_file() and (Path(out_dir) / PROBE_FILE).is_file()


def run_probe(samples: Sequence[Sample], config: TrainConfig, input_name: str, out_dir: str | Path,
              grid: int = PROBE_GRID, C: float = PROBE_C) -> LOSOResult:
    """Fit and score the linear probe on ``input_name`` (one of :data:`~mpt_utils.data.PROBE_INPUTS`) on the
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
    atomic_write_json(saved, settings)
    atomic_write(out_dir / "predictions.csv", lambda p: predictions.to_csv(p, index=False))
    result = _result(samples, config, out_dir, predictions, seconds)
    atomic_write_text(out_dir / "summary.md", summary_markdown(result.metrics, config).replace(
        f"# LOSO results: {config.variant}", f"# LOSO results: linear probe on the {input_name}"))
    atomic_write_json(out_dir / "results.json", result.metrics)  # last: it marks the probe done
    return result


def load_probe(samples: Sequence[Sample], config: TrainConfig, out_dir: str | Path) -> LOSOResult:
    """The finished probe of ``out_dir`` (:func:`run_probe` wrote it), pooled again from its predictions."""
    import pandas as pd

    out_dir = Path(out_dir)
    if not probe_done(out_dir):
        raise FileNotFoundError(f"{out_dir} holds no finished probe: run it with run_probe")
    predictions = pd.read_csv(out_dir / "predictions.csv", dtype={"subject": str, "label": str, "prediction": str})
    seconds = json.loads((out_dir / "results.json").read_text()).get("seconds", 0.0)
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
    are the same whichever fold computed them; :func:`~mpt_utils.data.probe_model` reads them under the same
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
