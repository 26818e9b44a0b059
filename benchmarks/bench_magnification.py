"""How much of a magnified clip is expression, and how much nuisance, for each magnification setting.

On a CASME II-sized default synthetic set (26 subjects) and its nuisance-free twin (the same clips rendered with
every nuisance at 0), every clip is read as the quick profile reads it (16 frames, 112 px) and magnified with each
setting of ``MAGNIFICATION_SETTINGS``; the table gives the mean expression and nuisance energy (grey levels RMS
of the change from the first frame) and the expression's share. Seed 1 is the development set on which the
tutorial's magnification defaults are chosen; seed 0 is the set its tables report on. Both are printed, side by
side, in one run:

    python benchmarks/bench_magnification.py [--seeds 1 0] [--subjects 26] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from mpt_utils.data import MAGNIFICATION_SETTINGS, clean_twin, load_dataset, magnification_table, make_synthetic
from mpt_utils.profiles import get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 0])
    parser.add_argument("--subjects", type=int, default=26)
    parser.add_argument("--out", type=Path, default=None, help="keep the sets here (default: a temporary folder)")
    args = parser.parse_args()
    config = get_profile("quick").train_config()
    settings = {name: {**config.magnify_kwargs(), **changes} for name, changes in MAGNIFICATION_SETTINGS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or Path(tmp)
        tables = {}
        for seed in args.seeds:
            root = make_synthetic(base / f"default-seed{seed}", n_subjects=args.subjects, seed=seed, progress=False)
            twin = clean_twin(root, progress=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples, clean = load_dataset("casme2", root), load_dataset("casme2", twin)
            start = time.perf_counter()
            tables[f"seed {seed}"] = magnification_table(samples, clean, settings, size=config.image_size,
                                                         num_frames=config.num_frames, progress=False)
            print(f"seed {seed}: {len(samples)} clips scored in {time.perf_counter() - start:.0f} s")
    pd.set_option("display.width", 200)
    print(pd.concat(tables, axis=1).round(3).to_string())


if __name__ == "__main__":
    main()
