"""``python -m mpt_utils.train``: LOSO runs and the paper's tables from the command line.

::

    python -m mpt_utils.train --dataset casme2 --root /data/CASME2 --profile paper --out runs/casme2
    python -m mpt_utils.train --dataset smic --root /data/SMIC --profile paper --out runs/smic --ablation all
    python -m mpt_utils.train --profile quick --out runs/quick          # synthetic data, CPU

Each run is resumable: run the same command again after an interruption. Results: ``results.json``,
``predictions.csv`` and ``summary.md`` per run, and for the main run or each ablation a CSV and a
Markdown table with the paper's figures beside ours.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from ..io import atomic_write, atomic_write_text
from ..model import PretrainedWeightsError
from ..profiles import PROFILES, get_profile
from .ablations import ABLATIONS
from .config import TrainConfig
from .loso import run_loso
from .pretrain import backbone_weights

#: The paper's main results (LOSO accuracy / F1, %).
PAPER_MAIN = {"casme2": (87.85, 86.04), "samm": (87.50, 85.04), "smic": (86.59, 86.01)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mpt_utils.train", description=__doc__.split("::")[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic", choices=["casme2", "samm", "smic", "synthetic"])
    p.add_argument("--root", default=None, help="the dataset's folder (default: $MPT_DATA_ROOT; "
                   "synthetic: generated under data/)")
    p.add_argument("--classes", default=None, choices=["casme2", "samm", "smic", "megc2019"],
                   help="class scheme (default: the dataset's own)")
    p.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    p.add_argument("--out", type=Path, required=True, help="results folder (resumable)")
    p.add_argument("--ablation", nargs="+", choices=sorted(ABLATIONS) + ["all"], default=None,
                   help="run the paper's ablation tables instead of one run")
    p.add_argument("--variant", default="mpt", help="model variant of a single run (see mpt_utils.model.VARIANTS)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per fold (default: the profile's)")
    p.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--fs", default=None, help="magnification sampling rate in Hz, or per_clip")
    p.add_argument("--weights", default=None, help="local checkpoint of the profile's backbone")
    p.add_argument("--no-pretrained", action="store_true",
                   help="random backbone (with --profile paper: a timing run, labelled as such everywhere)")
    p.add_argument("--device", default=None, help="auto, cuda, mps or cpu (default: the profile's)")
    p.add_argument("--precision", default=None, choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--cache-dir", default=None, help="preprocessed-clip cache (default: data/cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def write_table(rows: list[dict], out_stem: Path, title: str, caveat: str) -> str:
    """Write ``rows`` as ``<stem>.csv`` and ``<stem>.md``; return the Markdown."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    atomic_write(out_stem.with_suffix(".csv"), lambda p: frame.to_csv(p, index=False))
    lines = [f"## {title}", "", caveat, "",
             "| row | ours Acc (%) | ours F1 (%) | ours UAR (%) | paper Acc (%) | paper F1 (%) | folds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['row']} | {_fmt(r['acc'])} | {_fmt(r['f1'])} | {_fmt(r['uar'])} | "
                     f"{_fmt(r['paper_acc'])} | {_fmt(r['paper_f1'])} | {r['folds']} |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(out_stem.with_suffix(".md"), text)
    return text


def _row(name: str, result, paper_acc, paper_f1, seconds: float) -> dict:
    m = result.metrics
    return {"row": name, "acc": 100 * m["accuracy"], "f1": 100 * m["f1"], "uar": 100 * m["uar"],
            "paper_acc": paper_acc, "paper_f1": paper_f1, "folds": f"{m['folds_run']}/{m['folds_total']}",
            "seconds": seconds}


def _train(args: argparse.Namespace, samples, base: TrainConfig, dataset: str, caveat: str) -> int:
    """The single run, or every row of the asked ablations; writes and prints the tables."""
    progress = not args.quiet
    if not args.ablation:
        start = time.perf_counter()
        result = run_loso(samples, base, args.out, cache_dir=args.cache_dir, progress=progress)
        paper = PAPER_MAIN.get(dataset, (None, None))
        text = write_table([_row(f"{args.variant} on {dataset}", result, *paper, time.perf_counter() - start)],
                           args.out / "table", f"LOSO on {dataset}", caveat)
        print(text)
        return 0
    names = sorted(ABLATIONS) if "all" in args.ablation else args.ablation
    report = []
    for name in names:
        ablation = ABLATIONS[name]
        rows = []
        for row in ablation.rows:
            config = base.replace(**row.changes)
            if config.backbone != base.backbone:  # --weights belongs to the profile's own backbone
                config = dataclasses.replace(config, weights=None)
            start = time.perf_counter()
            print(f"[{name}] {row.name}")
            result = run_loso(samples, config, args.out / name / row.folder, cache_dir=args.cache_dir,
                              progress=progress)
            rows.append(_row(row.name, result, row.paper_acc, row.paper_f1, time.perf_counter() - start))
        report.append(write_table(rows, args.out / name, ablation.title, caveat))
        print(report[-1])
    atomic_write_text(args.out / "tables.md", "\n".join(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..data import resolve_dataset

    if args.weights and args.no_pretrained:
        print("error: --weights and --no-pretrained contradict each other", file=sys.stderr)
        return 2
    profile = get_profile(args.profile, pretrained=False if args.no_pretrained else None)
    try:
        samples, root, dataset = resolve_dataset(profile, args.dataset, args.root, args.classes,
                                                 progress=not args.quiet)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    random_backbone = not profile.pretrained
    weights = backbone_weights(profile, args.weights, progress=not args.quiet)
    synthetic_backbone = profile.synthetic_backbone and not args.weights
    label = f"profile {profile.name} · {dataset} ({root})" + (
        " · RANDOM backbone: a timing run, not the paper's experiment" if random_backbone else "") + (
        " · backbone pre-trained on synthetic AUs, not the paper's ImageNet ViT" if synthetic_backbone else "")
    fs = None if args.fs is None else (args.fs if args.fs == "per_clip" else float(args.fs))
    base = TrainConfig.from_profile(
        profile, variant=args.variant, epochs=args.epochs, max_folds=args.max_folds, alpha=args.alpha, fs=fs,
        weights=weights, device=args.device, precision=args.precision, seed=args.seed, label=label,
    )
    caveat = (f"Ours: {label}. "
              + ("Random backbone weights: timings only, accuracy is meaningless. " if random_backbone else "")
              + ("Synthetic data: not comparable with the paper. " if dataset == "synthetic" else "")
              + "Paper figures as published; ablation rows are the paper's SMIC results.")
    print(caveat)
    try:
        return _train(args, samples, base, dataset, caveat)
    except PretrainedWeightsError as exc:  # e.g. a backbone ablation row offline: say what to do
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
