"""The backbone that ships with the package: the quick profile's checkpoint, its card, and how to rebuild it.

Pre-training the quick profile's backbone takes many minutes on two CPU cores, too long for the main job and the
tests, so it is built once, by the command below, and shipped in ``mpt_utils/weights/`` (package data, so that an
editable install, a wheel, a Colab runtime and any ``MPT_HOME`` find it: :data:`~.pretrain.SHIPPED_DIR`). Beside
each ``<name>.safetensors`` lies its **card** ``<name>.json``: the pre-training report (config, loss per epoch)
extended with

================ ====================================================================================
``profile``      the profile whose runs use it
``objective``    the pre-training objective (:data:`~.objectives.OBJECTIVES`)
``corpus``       the synthetic corpus: preset, seed, clips, subjects, amplitudes (pixels at 224 px)
``schedule``     epochs, batch size, learning rate, weight decay
``built``        seconds, threads, device, machine, torch version, date
``sha256``       the hex digest of the ``.safetensors`` file
``commit``       the code's git commit (``+dirty`` when the work tree had changes)
``command``      the command that rebuilds it, bit for bit on the same machine with the same threads
``development``  the frozen-feature linear probe (CLS and mean patch token) on development sets
================ ====================================================================================

Rebuild::

    python -m mpt_utils.train.shipped --profile quick --threads 2                    # the ViT backbone
    python -m mpt_utils.train.shipped --profile quick --threads 2 --network action   # the two-branch action branch

The second is the macro-to-micro pre-trained action branch of MA2MI's two-branch network
(:func:`~.pretrain.action_pretraining`), read by the ``"two-branch (MA2MI pre-trained)"`` row; its card has no
development probe (the probe reads a ViT's frozen CLS token) but the held-out prediction loss of its pre-training.

The development sets are the default preset at CASME II's size (26 subjects), seeds 1 and 2: never the report
seed 0, so nothing here is chosen on the subjects the notebooks report.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import PRESETS, load_dataset, make_synthetic
from ..io import atomic_write_json
from ..metrics import bootstrap_interval, compute_metrics
from ..model import create_backbone, normalisation
from ..profiles import get_profile
from ..runtime import quiet, work_dir
from .inputs import dynamic_images
from .objectives import READS_LABELS
from .pretrain import SHIPPED_DIR, PretrainConfig, action_pretraining, checkpoint_name, pretrain_backbone
from .probe import loso_probe

#: The development sets: default preset, CASME II's 26 subjects, never the report seed 0.
DEV_SEEDS = (1, 2)
DEV_SUBJECTS = 26

#: The command that rebuilds a profile's shipped checkpoint (``{profile}``, ``{threads}`` filled in); the action
#: branch's adds ``--network action`` (:data:`NETWORKS`).
REBUILD_COMMAND = "python -m mpt_utils.train.shipped --profile {profile} --threads {threads}"

#: What a shipped checkpoint holds: the profile's ViT backbone, or the two-branch network's action branch.
NETWORKS = ("backbone", "action")


def rebuild_command(profile: str, threads: int, network: str = "backbone") -> str:
    """The command that rebuilds ``profile``'s shipped ``network`` with ``threads`` threads."""
    return REBUILD_COMMAND.format(profile=profile, threads=threads) + (" --network action" if network == "action"
                                                                         else "")


def profile_pretraining(profile: str, network: str = "backbone") -> PretrainConfig:
    """The :class:`PretrainConfig` of ``profile``'s synthetic backbone, or (``network="action"``) of its two-branch
    network's action branch, as :func:`mpt_utils.run.resolve_run` makes it for a run with the profile's settings."""
    p = get_profile(profile)
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {list(NETWORKS)}, got {network!r}")
    if network == "action":
        return action_pretraining(p, p.train_config())
    if not p.synthetic_backbone:
        raise ValueError(f"profile {profile!r} pre-trains no synthetic backbone (its weights come from the hub)")
    return PretrainConfig.for_run(p.train_config(), p.pretrain_clips, p.pretrain_epochs, **p.pretrain_settings)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_problems(weights: str | Path, expected: PretrainConfig) -> list[str]:
    """What is wrong with a shipped checkpoint and its card (an empty list: nothing): the files exist, the card's
    hash is the file's, and the card's config is ``expected``'s (the device it was built on aside)."""
    weights = Path(weights)
    card_file = weights.with_suffix(".json")
    if not weights.is_file() or not card_file.is_file():
        return [f"{weights.name} or its card {card_file.name} is missing"]
    card = json.loads(card_file.read_text())
    problems = []
    if card.get("sha256") != file_sha256(weights):
        problems.append(f"the card's sha256 {card.get('sha256')} is not the file's {file_sha256(weights)}")
    built = {k: v for k, v in card.get("config", {}).items() if k != "device"}
    wanted = {k: v for k, v in expected.as_dict().items() if k != "device"}
    if built != wanted:
        changed = sorted(k for k in set(built) | set(wanted) if built.get(k) != wanted.get(k))
        problems.append(f"the card's config differs from the profile's in {changed}")
    return problems


def development_sets(config: PretrainConfig, seeds: Sequence[int] = DEV_SEEDS, subjects: int = DEV_SUBJECTS,
                     root: str | Path | None = None) -> dict[int, tuple[list, torch.Tensor]]:
    """The development sets (generated once under ``<work_dir>/data/``, or ``root``): for each seed, its samples
    and their dynamic images ``(N, 3, S, S)`` at the backbone's input size."""
    root = Path(root) if root is not None else work_dir() / "data"
    sets = {}
    for seed in seeds:
        folder = make_synthetic(root / f"synthetic-dev-default-{subjects}-seed{seed}", n_subjects=subjects, seed=seed,
                                progress=False)
        with quiet():
            samples = load_dataset("synthetic", folder)
        sets[seed] = (samples, dynamic_images(samples, config.image_size, config.num_frames, progress=False))
    return sets


@torch.no_grad()
def frozen_features(weights: str | Path | None, images: torch.Tensor,
                    config: PretrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The frozen backbone's CLS and mean patch tokens ``(N, D)`` on dynamic images ``(N, 3, S, S)`` in [0, 1];
    ``weights`` None: a random backbone (seeded), the baseline every pre-training must beat."""
    torch.manual_seed(0)
    backbone = create_backbone(config.backbone, pretrained=weights is not None, weights=weights,
                               img_size=config.image_size, **config.backbone_kwargs).eval()
    mean, std = (t.view(1, 3, 1, 1) for t in normalisation(backbone))
    tokens = torch.cat([backbone.forward_features((images[i:i + 64] - mean) / std)
                        for i in range(0, len(images), 64)])
    return tokens[:, 0].numpy(), tokens[:, backbone.num_prefix_tokens:].mean(1).numpy()


def probe_f1(x: np.ndarray, samples) -> tuple[float, list[float]]:
    """Pooled F1 of the linear probe on features ``x`` ``(N, D)`` (standardised), every subject held out once, and
    its 90 % subject-bootstrap interval ``[low, high]``."""
    groups = np.array([s.group for s in samples])
    labels = np.array([s.label for s in samples])
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    _, predicted = loso_probe(x, labels, groups, list(dict.fromkeys(groups)))  # every row, in row order
    classes = sorted(set(labels))
    low, high = bootstrap_interval(labels, predicted, classes, groups=groups)
    return float(compute_metrics(labels, predicted, classes)["f1"]), [low, high]


def development_probe(weights: str | Path | None, config: PretrainConfig,
                      sets: dict[int, tuple[list, torch.Tensor]]) -> dict[str, Any]:
    """``cls_f1_seed<s>`` and ``patch_f1_seed<s>``: the frozen-feature probe on each development set, with its
    90 % subject-bootstrap interval under the same key plus ``"_ci"``."""
    scores: dict[str, Any] = {}
    for seed, (samples, images) in sets.items():
        cls, patches = frozen_features(weights, images, config)
        scores[f"cls_f1_seed{seed}"], scores[f"cls_f1_seed{seed}_ci"] = probe_f1(cls, samples)
        scores[f"patch_f1_seed{seed}"], scores[f"patch_f1_seed{seed}_ci"] = probe_f1(patches, samples)
    return scores


#: The rows the benchmark also trains on each candidate backbone (``bench_backbones.py --tuned``), on development
#: sets of the report set's size (the quick profile's subjects and clips, :data:`DEV_SEEDS`).
TUNED_ROWS = ("head only", "motion prompts only", "MPT")


def tuned_key(row: str, seed: int) -> str:
    """The backbone table's key of a tuned row's pooled F1 on a development seed, e.g. ``"mpt_f1_seed1"``; its
    90 % subject-bootstrap interval is under the same key plus ``"_ci"``."""
    return f"{row.lower().replace(' ', '_')}_f1_seed{seed}"


#: The benchmark's table of candidate backbones (``benchmarks/bench_backbones.py`` writes it; it ships here).
BACKBONE_TABLE = SHIPPED_DIR / "backbones.json"


def backbone_table(path: str | Path = BACKBONE_TABLE):
    """The candidate backbones side by side (a pandas table, one row each): how each was pre-trained and how much
    of the emotion a linear probe reads in its frozen features on the development sets (pooled F1, chance 0.20, each
    beside its 90 % subject-bootstrap interval where measured), beside the same probe on the dynamic image's pixels.
    Measured by ``benchmarks/bench_backbones.py``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run python benchmarks/bench_backbones.py --out {path}")
    rows = json.loads(path.read_text())
    probes = [name for name, row in rows.items() if row.get("objective") is None and name != "random"]
    rows = {name: rows[name] for name in ["random", *(n for n in rows if n != "random" and n not in probes), *probes]
            if name in rows}  # no pre-training first, the backbones, then the probes on pixels
    columns = {"shipped": "shipped", "objective": "objective", "clips": "corpus clips", "epochs": "epochs",
               "pretrain_min": "pre-training (min)", "val_au_auc": "held-out AU AUC",
               "held_out_loss": "held-out prediction loss", "held_out_copy_loss": "held-out, copying the early prefix"}
    for kind, name in (("cls", "CLS"), ("patch", "mean-patch")):  # each F1 beside its 90 % interval over subjects
        for seed in DEV_SEEDS:
            columns[f"{kind}_f1_seed{seed}"] = f"{name} probe F1, seed {seed}"
            columns[f"{kind}_f1_seed{seed}_ci"] = f"{name} 90 % interval, seed {seed}"
    lines = [{columns[k]: (f"{v[0]:.2f}-{v[1]:.2f}" if k.endswith("_ci") else v) for k, v in row.items()
              if k in columns} for row in rows.values()]
    table = pd.DataFrame(lines, index=list(rows), columns=list(columns.values())).dropna(axis=1, how="all")
    table["shipped"] = table["shipped"].fillna(False).astype(bool)  # the pixel probe's row is no backbone
    table[["corpus clips", "epochs"]] = table[["corpus clips", "epochs"]].astype("Int64")
    table.insert(2, "reads labels", [READS_LABELS.get(o) if isinstance(o, str) else None for o in table["objective"]])
    table.index.name = "backbone"
    return table


def tuned_table(path: str | Path = BACKBONE_TABLE):
    """The rows tuned on each candidate backbone (:data:`TUNED_ROWS`), one line per backbone and development seed:
    each row's pooled F1 (``"<row> F1"``) and its 90 % subject-bootstrap interval (``"<row> low"``, ``"<row> high"``);
    a pandas table, backbones not yet tuned left out. Measured by ``benchmarks/bench_backbones.py --tuned``."""
    import pandas as pd

    lines = {}
    for name, row in json.loads(Path(path).read_text()).items():
        for seed in DEV_SEEDS:
            if tuned_key(TUNED_ROWS[0], seed) not in row:
                continue
            line = {}
            for tuned in TUNED_ROWS:
                line[f"{tuned} F1"] = row[tuned_key(tuned, seed)]
                line[f"{tuned} low"], line[f"{tuned} high"] = row[tuned_key(tuned, seed) + "_ci"]
            lines[(name, seed)] = line
    table = pd.DataFrame.from_dict(lines, orient="index")
    table.index.names = ["backbone", "development seed"]
    return table


def corpus_description(config: PretrainConfig) -> dict[str, Any]:
    """The synthetic corpus a pre-training reads, as the card records it."""
    preset = config.corpus_preset
    amplitude = config.amplitude if preset == "default" else PRESETS[preset].amplitude
    return {"preset": preset, "seed": config.seed, "clips": config.n_clips, "subjects": config.n_subjects,
            "held_out_subjects": config.val_subjects, "amplitude_px_at_224": list(amplitude)}


def _commit() -> str | None:
    """The package's git commit, ``+dirty`` when its work tree has changes; None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "mpt_utils"], cwd=here.parents[1],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def build_shipped(profile: str = "quick", folder: str | Path = SHIPPED_DIR, threads: int = 2,
                  dev_seeds: Sequence[int] = DEV_SEEDS, corpus_root: str | Path | None = None,
                  config: PretrainConfig | None = None, progress: bool = True, network: str = "backbone") -> Path:
    """Pre-train ``profile``'s ``network`` (or ``config``) with ``threads`` CPU threads, write it to ``folder`` with
    its card, and return the checkpoint's path. ``dev_seeds`` () skips the development-set probe (the action
    branch has none: the probe reads a ViT's tokens)."""
    config = config or profile_pretraining(profile, network)
    torch.set_num_threads(threads)
    out = Path(folder) / checkpoint_name(config)
    start = time.perf_counter()
    pretrain_backbone(config, out, corpus_root=corpus_root, progress=progress)
    seconds = time.perf_counter() - start
    card = json.loads(out.with_suffix(".json").read_text())
    card.update(
        profile=profile, objective=config.objective, corpus=corpus_description(config),
        schedule={"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
                  "weight_decay": config.weight_decay, "optimiser": "AdamW, one-cycle"},
        built={"seconds": round(seconds, 1), "threads": threads, "device": config.device,
               "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
               "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
               "date": datetime.date.today().isoformat()},
        sha256=file_sha256(out), commit=_commit(), command=rebuild_command(profile, threads, network),
    )
    if dev_seeds and network == "backbone":
        card["development"] = {
            "sets": f"default preset, {DEV_SUBJECTS} subjects, seeds {list(dev_seeds)}",
            "probe": "logistic regression, leave one subject out, pooled F1 (chance 0.20)",
            "shipped": development_probe(out, config, development_sets(config, dev_seeds)),
        }
    atomic_write_json(out.with_suffix(".json"), card)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpt_utils.train.shipped",
                                     description="Rebuild a profile's shipped backbone and its card.")
    parser.add_argument("--profile", default="quick", help="the profile whose backbone to build (default: quick)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the same count rebuilds the same bytes)")
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR, help=f"folder to write to (default: {SHIPPED_DIR})")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="keep the generated corpus in this folder (default: a temporary one, deleted)")
    parser.add_argument("--no-development", action="store_true",
                        help="skip the development-set probe (minutes; the card then records none)")
    parser.add_argument("--check", action="store_true", help="only check the shipped file against its card")
    parser.add_argument("--network", choices=NETWORKS, default="backbone",
                        help="the ViT backbone (default) or the two-branch network's action branch")
    args = parser.parse_args(argv)
    config = profile_pretraining(args.profile, args.network)
    if args.check:
        problems = card_problems(args.out / checkpoint_name(config), config)
        print("\n".join(problems) or f"{checkpoint_name(config)}: the card matches the file and the profile")
        return 1 if problems else 0
    out = build_shipped(args.profile, args.out, args.threads, dev_seeds=() if args.no_development else DEV_SEEDS,
                        corpus_root=args.corpus, network=args.network)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and its card {out.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
