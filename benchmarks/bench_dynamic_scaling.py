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

from mpt_utils.data import load_dataset, make_synthetic
from mpt_utils.profiles import get_profile
from mpt_utils.train import dynamic_scaling_table


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
        start = time.perf_counter()
        table = dynamic_scaling_table(samples, config.image_size, config.num_frames)
        print(f"{len(samples)} clips, {args.subjects} subjects, seed {args.seed}: measured in "
              f"{time.perf_counter() - start:.0f} s; chance F1 {1 / len(set(s.label for s in samples)):.2f}")
        if args.train:
            from mpt_utils.run import resolve_run
            from mpt_utils.train import run_loso

            for method in table.index:
                run = resolve_run("quick", dataset="synthetic", data_root=root, progress=False,
                                  dynamic_scaling=method)
                run.prepare_backbone(progress=False)
                start = time.perf_counter()
                m = run_loso(run.samples, run.config, base / f"runs-{method}", progress=False).metrics
                table.loc[method, ["quick MPT F1", "quick MPT UAR", "train s"]] = [
                    m["f1"], m["uar"], time.perf_counter() - start]
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
