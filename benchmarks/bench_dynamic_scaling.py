"""Min-max or zero-centred: how should a dynamic image become the model's [0, 1] input?

On the development set (default preset, seed 1: never the set the tutorial reports on), each clip is read as the
quick profile reads it (16 frames, 112 px), rank-pooled, and scaled both ways (``scale_dynamic_image``). Printed
side by side:

- where "no change" (d = 0) lands: its grey level's mean and spread over clips (zero-centred: always 0.5);
- the LOSO linear probe (``probe_model``, the same folds) on each scaled image, at grids 16 and 32: how much of the
  class each scaling leaves for a linear reader;
- with ``--train``: the quick MPT pipeline under LOSO with each scaling (``--dynamic-scaling``), pooled F1 and UAR
  (about 3 minutes each on 2 cores; the backbone's synthetic pre-training saw min-max images).

    python benchmarks/bench_dynamic_scaling.py [--seed 1] [--subjects 12] [--clips 144] [--train] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mpt_utils.data import load_dataset, make_synthetic, probe_model, read_clip
from mpt_utils.metrics import compute_metrics
from mpt_utils.motion import DYNAMIC_SCALINGS, rank_pool, scale_dynamic_image
from mpt_utils.profiles import get_profile


def probe_f1(images: np.ndarray, labels: np.ndarray, groups: np.ndarray, grid: int, classes: list[str]) -> float:
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict

    x = np.array([cv2.resize(im, (grid, grid), interpolation=cv2.INTER_AREA).ravel() for im in images])
    pred = cross_val_predict(probe_model(), x, labels, groups=groups, cv=LeaveOneGroupOut())
    return compute_metrics(labels, pred, classes)["f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="1: the development set (default)")
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--clips", type=int, default=144)
    parser.add_argument("--train", action="store_true", help="also train the quick MPT with each scaling")
    parser.add_argument("--out", type=Path, default=None, help="keep the set and runs here (default: temporary)")
    args = parser.parse_args()
    config = get_profile("quick").train_config()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or Path(tmp)
        root = make_synthetic(base / f"default-seed{args.seed}", n_subjects=args.subjects, n_clips=args.clips,
                              seed=args.seed, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples = load_dataset("synthetic", root)
        labels = np.array([s.label for s in samples])
        groups = np.array([s.group for s in samples])
        classes = sorted(set(labels))
        start = time.perf_counter()
        pooled = [rank_pool(read_clip(s, config.num_frames, config.image_size)) for s in samples]
        rows = []
        for method in DYNAMIC_SCALINGS:
            scaled = [scale_dynamic_image(d, method) for d in pooled]
            # where d = 0 lands: min-max scales each image as a whole, so at -min / (max - min); zero-centred at 0.5
            zero = [float(-d.min() / (d.max() - d.min())) if method == "minmax" else 0.5 for d in pooled]
            grey = np.array([im.mean(-1) for im in scaled])
            rows.append({"scaling": method, "no-change grey: mean": np.mean(zero), "no-change grey: std": np.std(zero),
                         "probe F1 (grid 16)": probe_f1(grey, labels, groups, 16, classes),
                         "probe F1 (grid 32)": probe_f1(grey, labels, groups, 32, classes)})
        print(f"{len(samples)} clips, {args.subjects} subjects, seed {args.seed}; read and pooled in "
              f"{time.perf_counter() - start:.0f} s; chance F1 {1 / len(classes):.2f}")
        if args.train:
            from mpt_utils.run import resolve_run
            from mpt_utils.train import run_loso

            for row in rows:
                run = resolve_run("quick", dataset="synthetic", data_root=root, progress=False,
                                  dynamic_scaling=row["scaling"])
                run.prepare_backbone(progress=False)
                start = time.perf_counter()
                m = run_loso(run.samples, run.config, base / f"runs-{row['scaling']}", progress=False).metrics
                row.update({"quick MPT F1": m["f1"], "quick MPT UAR": m["uar"],
                            "train s": time.perf_counter() - start})
        print(pd.DataFrame(rows).set_index("scaling").round(3).to_string())


if __name__ == "__main__":
    main()
