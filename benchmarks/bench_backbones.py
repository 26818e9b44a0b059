"""Which pre-training makes a backbone that sees micro-expressions? Frozen features on development sets.

For each candidate backbone of the quick profile (6-block ViT-Tiny, 112 px, T = 16) this builds it (once; the
checkpoints are cached in ``data/weights/``, the shipped one is read from ``mpt_utils/weights/``) and scores a linear
probe, leave-one-subject-out, on its frozen features of the dynamic images of development sets (default preset,
CASME II's size of 26 subjects; seeds 1 and 2, never the report seed 0): the CLS token and the mean patch token,
beside the same probe on the dynamic image's pixels. Prints one row per candidate and merges them into the table
that ships beside the checkpoint (``mpt_utils/weights/backbones.json``, shown by notebook 04). Each row also records
what its pre-training scored on the corpus people it held out: AU detection's ROC-AUC, or for the MA2MI rows the
final prediction loss beside that of copying the early prefix (the forecast "nothing changes").

    python benchmarks/bench_backbones.py                         # every row (hours on 2 CPU cores)
    python benchmarks/bench_backbones.py --only random au        # some rows; the others are kept
    python benchmarks/bench_backbones.py --tuned --only random au 'ma2mi-pixels 30 epochs lr 2e-4'

``--tuned`` also trains head only, motion prompts only and MPT on each chosen backbone, leave-one-subject-out, on
development sets of the report set's size (the quick profile's 12 subjects and 144 clips; seeds 1 and 2), and records
each row's pooled F1 with its 90 % subject-bootstrap interval (about 8 minutes per backbone and seed on 2 cores; a
26-subject set would take four times as long per row). The runs resume from ``<work_dir>/outputs/runs/backbones/``.

Rows: ``random`` (no pre-training); ``au`` (AU detection, 480 clips, 15 epochs, lr 1e-3: the recipe before
macro-to-micro pre-training), ``au-long`` (1,920 clips of 96 people, 0.3-6 px, 16 epochs) and ``au-long lr 3e-4``;
``ma2mi`` (macro-to-micro future prediction of the later prefix's latent, :mod:`mpt_utils.train.objectives`),
``ma2mi-pixels`` (of its pixels), ``ma2mi+au`` (pixels plus AU detection from the early prefix; reads AU labels),
``ma2mi-pixels 30 epochs`` with lr 5e-4 and 2e-4 (one of them the quick profile's shipped backbone).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from mpt_utils.data import make_synthetic
from mpt_utils.experiments import plan, row_result
from mpt_utils.io import atomic_write_json
from mpt_utils.profiles import get_profile
from mpt_utils.run import resolve_run
from mpt_utils.runtime import work_dir
from mpt_utils.train import PretrainConfig, pretrain_backbone, run_loso, synthetic_checkpoint
from mpt_utils.train.pretrain import checkpoint_name
from mpt_utils.train.shipped import (
    BACKBONE_TABLE,
    DEV_SEEDS,
    TUNED_ROWS,
    development_probe,
    development_sets,
    probe_f1,
    profile_pretraining,
    tuned_key,
)


def candidates(args) -> dict[str, PretrainConfig | None]:
    config = get_profile("quick").train_config()
    au = PretrainConfig.for_run(config, 480, 15)
    ma2mi = dataclasses.replace(PretrainConfig.for_run(config, args.ma2mi_clips, args.ma2mi_epochs),
                                objective="ma2mi", seed=202, lr=args.ma2mi_lr, batch_size=args.ma2mi_batch)
    au_long = dataclasses.replace(au, n_clips=1920, n_subjects=96, val_subjects=8, amplitude=(0.3, 6.0), epochs=16)
    pixels = dataclasses.replace(ma2mi, target="pixels")
    return {"random": None, "au": au, "au-long": au_long, "ma2mi": ma2mi, "ma2mi-pixels": pixels,
            "ma2mi+au": dataclasses.replace(pixels, objective="ma2mi+au"),
            "au-long lr 3e-4": dataclasses.replace(au_long, lr=3e-4),
            "ma2mi-pixels 30 epochs": dataclasses.replace(pixels, epochs=30),
            "ma2mi-pixels 30 epochs lr 2e-4": dataclasses.replace(pixels, epochs=30, lr=2e-4)}


def tuned_rows(name: str, weights: Path | None) -> dict[str, object]:
    """Head only, motion prompts only and MPT (:data:`TUNED_ROWS`) on the frozen backbone ``weights`` (None: random),
    leave-one-subject-out on development sets of the report set's size: each row's pooled F1 and 90 % interval."""
    quick = get_profile("quick")
    scores: dict[str, object] = {}
    for seed in DEV_SEEDS:
        folder = work_dir() / "data" / f"synthetic-dev-default-{quick.synthetic_subjects}-seed{seed}"
        make_synthetic(folder, n_subjects=quick.synthetic_subjects, n_clips=quick.synthetic_clips, seed=seed,
                       progress=False)
        run = resolve_run(quick, dataset="synthetic", data_root=folder, weights=weights,
                          pretrained=weights is not None, progress=False)
        out = work_dir() / "outputs" / "runs" / "backbones" / name.replace(" ", "_") / f"seed{seed}"
        for row in plan(run, out, ["baselines"])["baselines"]:
            if row.name not in TUNED_ROWS:
                continue
            start = time.perf_counter()
            run_loso(run.samples, row.config, row.folder, progress=False)  # resumes: finished folds are read back
            result = row_result(run, row)
            f1, (low, high) = result.metrics["f1"], result.interval(run.classes)
            scores[tuned_key(row.name, seed)] = f1
            scores[tuned_key(row.name, seed) + "_ci"] = [low, high]
            print(f"  {name}, seed {seed}, {row.name}: F1 {f1:.3f} ({low:.2f}-{high:.2f}), "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ma2mi-clips", type=int, default=960)
    parser.add_argument("--ma2mi-epochs", type=int, default=12)
    parser.add_argument("--ma2mi-lr", type=float, default=5e-4)
    parser.add_argument("--ma2mi-batch", type=int, default=64)
    parser.add_argument("--only", nargs="+", default=None, help="rows to run (default: all)")
    parser.add_argument("--tuned", action="store_true",
                        help=f"also train {', '.join(TUNED_ROWS)} on each backbone (minutes per backbone)")
    parser.add_argument("--out", type=Path, default=BACKBONE_TABLE, help=f"default: {BACKBONE_TABLE}")
    args = parser.parse_args()
    quick = profile_pretraining("quick")
    sets = development_sets(quick)
    shipped = checkpoint_name(quick)
    rows = json.loads(args.out.read_text()) if args.out.is_file() else {}  # --only updates its rows, keeps the rest
    kept = {tuned_key(r, seed) + end for r in TUNED_ROWS for seed in DEV_SEEDS for end in ("", "_ci")}
    for name, pretraining in candidates(args).items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        weights = None
        if pretraining is not None:  # the corpus is kept, so that another setting of the same corpus reuses it
            weights = synthetic_checkpoint(pretraining)
            # one corpus per preset and size (the macro corpus serves every MA2MI row); names as first made
            kind = {"default": "au", "macro": "ma2mi"}[pretraining.corpus_preset]
            corpus = work_dir() / "data" / f"synthetic-corpus-{kind}-{pretraining.n_clips}"
            if not weights.is_file():
                pretrain_backbone(pretraining, weights, corpus_root=corpus, progress=False)
        built = time.perf_counter() - start
        row = {"build_s": built, "objective": None, "checkpoint": weights.name if weights is not None else None}
        if weights is not None:
            report = json.loads(weights.with_suffix(".json").read_text())
            row.update(objective=pretraining.objective, clips=pretraining.n_clips, epochs=pretraining.epochs,
                       pretrain_min=round(report["seconds"] / 60, 1), final_loss=report["train_loss"][-1],
                       val_au_auc=report.get("val_au_auc"), held_out_loss=report.get("held_out_loss", [None])[-1],
                       held_out_copy_loss=report.get("held_out_copy_loss"))
        row.update(development_probe(weights, quick, sets))
        row.update({k: v for k, v in rows.get(name, {}).items() if k in kept})  # earlier --tuned figures stay
        if args.tuned:
            row.update(tuned_rows(name, weights))
        rows[name] = row
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    for seed, (samples, images) in sets.items():
        pixels = torch.nn.functional.adaptive_avg_pool2d(images, 16).flatten(1).numpy()
        pixel_row = rows.setdefault("pixel probe (dynamic image, 16 px)", {})
        pixel_row[f"cls_f1_seed{seed}"], pixel_row[f"cls_f1_seed{seed}_ci"] = probe_f1(pixels, samples)
    for row in rows.values():  # which row the quick profile ships, as it is now
        row["shipped"] = row.get("checkpoint") == shipped
    print(json.dumps(rows, indent=1))
    atomic_write_json(args.out, rows)


if __name__ == "__main__":
    main()
