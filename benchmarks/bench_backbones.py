"""Which pre-training makes a backbone that sees micro-expressions? Frozen features on development sets.

For each candidate backbone of the quick profile (6-block ViT-Tiny, 112 px, T = 16) this builds it (once; the
checkpoints are cached in ``data/weights/``) and scores a linear probe, leave-one-subject-out, on its frozen
features of the dynamic images of development sets (default preset, CASME II's size of 26 subjects; seeds 1 and
2, never the report seed 0): the CLS token and the mean patch token, beside the same probe on the dynamic image's
pixels. Prints one table, side by side, and writes it as JSON.

    python benchmarks/bench_backbones.py                      # random, AU (today's recipe), MA2MI
    python benchmarks/bench_backbones.py --ma2mi-clips 960 --ma2mi-epochs 12 --out bench_backbones.json

Rows: ``random`` (no pre-training), ``au`` (the quick profile's AU detection, 480 clips, 15 epochs) and
``ma2mi`` (macro-to-micro future prediction on a macro corpus, :mod:`mpt_utils.train.objectives`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from mpt_utils.data import load_dataset, make_synthetic
from mpt_utils.data.checks import loso_probe
from mpt_utils.io import atomic_write_json
from mpt_utils.metrics import compute_metrics
from mpt_utils.model import create_backbone, normalisation
from mpt_utils.profiles import get_profile
from mpt_utils.runtime import quiet, work_dir
from mpt_utils.train import PretrainConfig, pretrain_backbone, synthetic_checkpoint
from mpt_utils.train.inputs import dynamic_images

DEV_SEEDS = (1, 2)


def candidates(args) -> dict[str, PretrainConfig | None]:
    config = get_profile("quick").train_config()
    au = PretrainConfig.for_run(config, 480, 15)
    ma2mi = dataclasses.replace(PretrainConfig.for_run(config, args.ma2mi_clips, args.ma2mi_epochs),
                                objective="ma2mi", seed=202, lr=args.ma2mi_lr, batch_size=args.ma2mi_batch)
    return {"random": None, "au": au, "ma2mi": ma2mi, "ma2mi-pixels": dataclasses.replace(ma2mi, target="pixels")}


@torch.no_grad()
def features(weights: Path | None, images: torch.Tensor, config) -> tuple[np.ndarray, np.ndarray]:
    """CLS and mean patch tokens ``(N, D)`` of the frozen backbone on dynamic images ``(N, 3, S, S)``."""
    torch.manual_seed(0)
    backbone = create_backbone(config.backbone, pretrained=weights is not None, weights=weights,
                               img_size=config.image_size, **config.backbone_kwargs).eval()
    mean, std = (t.view(1, 3, 1, 1) for t in normalisation(backbone))
    tokens = torch.cat([backbone.forward_features((images[i:i + 64] - mean) / std) for i in range(0, len(images), 64)])
    return tokens[:, 0].numpy(), tokens[:, backbone.num_prefix_tokens:].mean(1).numpy()


def probe(x: np.ndarray, samples) -> float:
    groups = np.array([s.group for s in samples])
    labels = np.array([s.label for s in samples])
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    _, predicted = loso_probe(x, labels, groups, list(dict.fromkeys(groups)))  # every row, in row order
    return compute_metrics(labels, predicted, sorted(set(labels)))["f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ma2mi-clips", type=int, default=960)
    parser.add_argument("--ma2mi-epochs", type=int, default=12)
    parser.add_argument("--ma2mi-lr", type=float, default=5e-4)
    parser.add_argument("--ma2mi-batch", type=int, default=64)
    parser.add_argument("--only", nargs="+", default=None, help="rows to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("bench_backbones.json"))
    args = parser.parse_args()
    config = get_profile("quick").train_config()
    sets = {}
    for seed in DEV_SEEDS:
        root = make_synthetic(work_dir() / "data" / f"synthetic-dev-default-26-seed{seed}", n_subjects=26, seed=seed,
                              progress=False)
        with quiet():
            samples = load_dataset("synthetic", root)
        sets[seed] = (samples, dynamic_images(samples, config.image_size, config.num_frames, progress=False))
    rows = {}
    for name, pretraining in candidates(args).items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        weights = None
        if pretraining is not None:  # the corpus is kept, so that another setting of the same corpus reuses it
            weights = synthetic_checkpoint(pretraining)
            corpus = work_dir() / "data" / f"synthetic-corpus-{pretraining.objective}-{pretraining.n_clips}"
            if not weights.is_file():
                pretrain_backbone(pretraining, weights, corpus_root=corpus, progress=False)
        built = time.perf_counter() - start
        row = {"build_s": built}
        if weights is not None:
            report = json.loads(weights.with_suffix(".json").read_text())
            row.update(pretrain_s=report["seconds"], final_loss=report["train_loss"][-1],
                       val_au_auc=report.get("val_au_auc"))
        for seed, (samples, images) in sets.items():
            cls, patches = features(weights, images, config)
            row[f"cls_f1_seed{seed}"] = probe(cls, samples)
            row[f"patch_f1_seed{seed}"] = probe(patches, samples)
        rows[name] = row
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    for seed, (samples, images) in sets.items():
        pixels = torch.nn.functional.adaptive_avg_pool2d(images, 16).flatten(1).numpy()
        rows.setdefault("pixel probe (dynamic image, 16 px)", {})[f"cls_f1_seed{seed}"] = probe(pixels, samples)
    print(json.dumps(rows, indent=1))
    atomic_write_json(args.out, rows)


if __name__ == "__main__":
    main()
