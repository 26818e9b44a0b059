"""A stand-in for ImageNet pre-training: a small ViT pre-trained offline on synthetic faces.

MPT adapts a *pretrained* backbone; a randomly initialised one has nothing to recognise faces with,
and its near-uniform attention averages every patch into the CLS token. Pretrained weights cannot
be downloaded offline, so the ``quick`` and ``ci`` profiles use their own, made by this module with one
of the objectives of :mod:`.objectives`:

::

    "au":    AU corpus (default preset, larger motions, every AU combination for every emotion)
             clip --rank pooling--> dynamic image --ViT--> CLS --Linear--> AU logits; binary cross-entropy
    "ma2mi": macro corpus (preset "macro": macro-expressions), reading no label
             prefix dynamic images d_j, d_k of one episode --ViT, predictor--> d_k from d_j (future prediction)
    saved:   the ViT without its heads, as safetensors, loaded through ``weights=PATH`` like a hub file

The quick profile's backbone (``"ma2mi"``) takes many CPU minutes, so it ships with the package
(:data:`SHIPPED_DIR`, rebuilt by :mod:`.shipped`); the ci profile's tiny one (``"au"``) is made here in
seconds, once, into ``<work_dir>/data/weights/``.

Why this is honest for the LOSO runs that follow: the corpus has its own seed (its own identities,
none of them a subject of an evaluation set), and no emotion label is ever read (the AU corpus draws
its AU combinations independently of the emotion column). It plays the part of a backbone pre-trained
on unlabelled face video (or a facial-action dataset); it is **not** the paper's ImageNet-21k ViT-B/16,
and every figure made with it says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.data import IMAGENET_DEFAULT_STD
from torch import nn

from ..config import TrainConfig
from ..data import load_dataset, loso_splits, make_synthetic
from ..data.synthetic import ACTION_UNITS, CASME2_COUNTS, action_unit_set
from ..io import atomic_save_safetensors, atomic_write_json
from ..model import build_two_branch, create_backbone, normalisation
from ..profiles import Profile, get_profile
from ..runtime import progress_bar, quiet, seed_everything, select_device, work_dir
from .inputs import dynamic_images
from .objectives import OBJECTIVES, prefix_differences, prefix_dynamic_images, train_future_prediction

log = logging.getLogger("mpt_utils.train")

#: The corpus draws every single AU, each on one side only, and every pair of AUs (both sides).
CORPUS_COMBINATIONS: tuple[str, ...] = (
    ACTION_UNITS
    + tuple(f"{side}{au}" for au in ACTION_UNITS for side in "LR")
    + tuple(f"{a}+{b}" for a, b in itertools.combinations(ACTION_UNITS, 2))
)


#: The ``backbone`` of a :class:`PretrainConfig` that pre-trains the two-branch network's action branch (its
#: ``backbone_kwargs``: ``{"size": <a TWO_BRANCH_SIZES name>}``) instead of a ViT.
ACTION_BRANCH = "two_branch_action"


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines the pre-trained checkpoint (its file name holds a hash of it).

    backbone, backbone_kwargs, image_size, num_frames: the ViT and its dynamic-image input, as in
        the profile that will use the checkpoint; or :data:`ACTION_BRANCH` with ``{"size": ...}``: the two-branch
        network's action branch (:meth:`for_action_branch`).
    n_subjects, n_clips, amplitude, seed: the synthetic corpus (seed differs from the evaluation
        sets' 0, 1 and 2, so no identity is shared); amplitude (``"au"`` only; the macro preset has its
        own) in pixels at 224 px, larger than a micro-expression's.
    epochs, batch_size, lr, weight_decay: AdamW with a one-cycle schedule.
    val_subjects: corpus subjects held out, never trained on: AU detection (``"au"``) or the future-prediction
        loss beside that of copying the early prefix (``"ma2mi"``) is reported on their clips.
    device: where to train (``"auto"``, ``"cpu"``, ``"cuda"``).
    objective: ``"au"`` (action-unit detection on an AU corpus) or ``"ma2mi"`` (macro-to-micro future
        prediction on a corpus of the ``macro`` preset, reading no label: :mod:`.objectives`).
    ema_start, target: ``"ma2mi"`` only: the moving target's first momentum, and what is predicted (the later
        prefix's tokens under the moving copy, or its pixels: :data:`~.objectives.TARGETS`).
    """

    backbone: str
    backbone_kwargs: dict[str, Any]
    image_size: int
    num_frames: int
    n_subjects: int = 24
    n_clips: int = 480
    amplitude: tuple[float, float] = (1.0, 6.0)
    seed: int = 101
    epochs: int = 15
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    val_subjects: int = 4
    device: str = "cpu"
    objective: str = "au"
    ema_start: float = 0.99
    target: str = "latent"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if self.backbone == ACTION_BRANCH and self.objective != "ma2mi":
            raise ValueError(f"the two-branch network's action branch is pre-trained by 'ma2mi' only (it reads no "
                             f"label), got objective {self.objective!r}")

    @property
    def corpus_preset(self) -> str:
        """The synthetic preset of the corpus: ``"default"`` (at ``amplitude``) for ``"au"``, else ``"macro"``."""
        return "default" if self.objective == "au" else "macro"

    @classmethod
    def for_run(cls, config: TrainConfig, clips: int, epochs: int, **settings: Any) -> PretrainConfig:
        """The pre-training a run's backbone needs: the run's ViT and input size, ``clips`` corpus clips, then
        ``settings`` (a profile's ``pretrain_settings``: the objective, the corpus, the schedule)."""
        if clips <= 0:
            raise ValueError(f"a synthetic pre-training needs clips > 0, got {clips}")
        subjects = max(4, min(24, clips // 20))
        config = cls(
            backbone=config.backbone,
            backbone_kwargs=dict(config.backbone_kwargs),
            image_size=config.image_size,
            num_frames=config.num_frames,
            n_subjects=subjects,
            n_clips=clips,
            epochs=epochs,
            val_subjects=max(1, subjects // 6),
            device=config.device,
        )
        return dataclasses.replace(config, **settings)

    @classmethod
    def for_action_branch(cls, config: TrainConfig, clips: int, epochs: int, **settings: Any) -> PretrainConfig:
        """The macro-to-micro pre-training of the two-branch network's action branch for a run: its size
        (``config.two_branch_size``) at the run's ``image_size``, ``clips`` macro clips, predicting the pixels of
        the later prefix's difference from the early one's; ``settings`` as :meth:`for_run`'s (the objective and
        target are fixed)."""
        made = cls.for_run(config, clips, epochs, **settings)
        return dataclasses.replace(made, backbone=ACTION_BRANCH, backbone_kwargs={"size": config.two_branch_size},
                                   objective="ma2mi", target="pixels")

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["amplitude"] = list(self.amplitude)
        return d

    def fingerprint(self) -> str:
        """A short hash of the settings that change the weights (device excluded; the objective's settings only
        when it is not ``"au"``, so that AU checkpoints keep the names they had before objectives existed)."""
        fields = {k: v for k, v in self.as_dict().items() if k != "device"}
        if self.objective == "au":
            fields = {k: v for k, v in fields.items() if k not in ("objective", "ema_start", "target")}
        elif self.target == "latent":  # the first MA2MI checkpoints, made before targets could be chosen
            fields.pop("target")
        return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


def action_pretraining(profile: Profile, config: TrainConfig) -> PretrainConfig:
    """The pre-training of the two-branch network's action branch for a run of ``profile`` with ``config``: on the
    profile's synthetic macro corpus and schedule (its ``pretrain_settings``, then ``action_pretrain_settings``),
    or, for a profile that makes no corpus (paper), on the quick profile's, at the run's size."""
    source = profile if profile.synthetic_backbone else get_profile("quick")
    settings = {k: v for k, v in {**source.pretrain_settings, **source.action_pretrain_settings}.items()
                if k not in ("objective", "target")}  # the action branch is pre-trained by "ma2mi" on pixels
    return PretrainConfig.for_action_branch(config, source.pretrain_clips, source.pretrain_epochs, **settings)


def au_targets(samples, action_units: tuple[str, ...] = ACTION_UNITS) -> np.ndarray:
    """Multi-label AU targets ``(N, A)`` float32: 1 where the clip's coded AUs contain the AU."""
    if not samples:
        raise ValueError("no samples to make AU targets from")
    coded = [action_unit_set(s.action_units) for s in samples]
    if not any(coded):
        raise ValueError("these samples carry no action units; AU pre-training needs an AU-coded corpus")
    return np.array([[float(au in c) for au in action_units] for c in coded], dtype=np.float32)


def make_au_corpus(config: PretrainConfig, root: str | Path, progress: bool = True) -> list:
    """Generate (once) and load the synthetic pre-training corpus; every emotion draws from every combination.

    ``"au"``: the default preset at ``config.amplitude``; ``"ma2mi"``: the ``macro`` preset (macro-expressions,
    its own amplitudes and durations)."""
    recipes = {emotion: CORPUS_COMBINATIONS for emotion in CASME2_COUNTS}
    world = dict(amplitude=config.amplitude) if config.corpus_preset == "default" else dict(preset="macro")
    make_synthetic(root, n_subjects=config.n_subjects, seed=config.seed, n_clips=config.n_clips, recipes=recipes,
                   progress=progress, **world)
    with quiet():  # the corpus' emotion column means nothing: no need to report the clips its scheme leaves out
        return load_dataset("synthetic", root)


def _mean_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    """Macro ROC-AUC over the AUs that occur and are absent at least once in ``targets``."""
    from sklearn.metrics import roc_auc_score

    usable = [j for j in range(targets.shape[1]) if 0 < targets[:, j].sum() < len(targets)]
    return float(np.mean([roc_auc_score(targets[:, j], scores[:, j]) for j in usable])) if usable else float("nan")


def pretrain_backbone(
    config: PretrainConfig,
    out_file: str | Path,
    corpus_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Pre-train ``config.backbone`` with ``config.objective``; write ``out_file`` and its ``.json``.

    The checkpoint holds the ViT's tensors only (no AU head), in safetensors, so that
    ``create_backbone(name, weights=out_file)`` loads it through timm's own hub code path. The
    ``.json`` beside it records the config, the loss per epoch and (``"au"``) the AU detection ROC-AUC on
    held-out corpus subjects (0.5 is chance). Both files are written atomically.

    The corpus' frames go to ``corpus_root`` and stay there; without one they go to a folder beside
    ``out_file`` that is deleted once the checkpoint is written (about 330 MB for the quick profile's
    480 clips). Nothing is lost: the corpus is regenerated bit for bit from ``config.seed``.
    """
    out_file = Path(out_file)
    keep_corpus = corpus_root is not None
    corpus_root = Path(corpus_root or out_file.parent / f"au-corpus-{config.fingerprint()}")
    start = time.perf_counter()
    samples = make_au_corpus(config, corpus_root, progress=progress)
    if config.objective != "au":
        return _pretrain_ma2mi(config, samples, out_file, corpus_root, keep_corpus, start, cache_dir, progress)
    targets = torch.from_numpy(au_targets(samples))
    dynamic = dynamic_images(samples, config.image_size, config.num_frames, cache_dir=cache_dir, progress=progress)

    val = _held_out(samples, config.val_subjects)
    train_idx, val_idx = np.flatnonzero(~val), np.flatnonzero(val)

    backbone, device = _fresh_backbone(config)
    head = nn.Linear(backbone.embed_dim, targets.shape[1]).to(device)
    mean, std = (t.to(device).view(1, 3, 1, 1) for t in normalisation(backbone))  # as MPT normalises its input
    params = list(backbone.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train_idx) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)

    def logits_of(idx: np.ndarray) -> torch.Tensor:
        images = dynamic[torch.as_tensor(idx)].to(device)
        return head(backbone((images - mean) / std))

    losses = []
    desc = "pre-training the backbone (synthetic AU detection)"
    for _ in progress_bar(range(config.epochs), desc=desc, disable=not progress):
        backbone.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total = 0.0
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(logits_of(idx), targets[idx].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        losses.append(total / len(order))

    backbone.eval()
    # n_generated clips are made; those whose (meaningless) emotion is outside the CASME II scheme are not loaded;
    # the loaded ones split into n_train and n_val (the clips of val_subjects subjects, for the AU ROC-AUC)
    report: dict[str, Any] = {"config": config.as_dict(), "train_loss": losses, "n_generated": config.n_clips,
                              "n_train": len(train_idx), "n_val": len(val_idx), "seconds": None}
    if len(val_idx):
        with torch.no_grad():
            scores = torch.sigmoid(logits_of(val_idx)).cpu().numpy()
        report["val_au_auc"] = _mean_auc(targets[val_idx].numpy(), scores)
    _save(backbone, report, start, out_file, corpus_root, keep_corpus)
    log.info("pre-trained %s on %d synthetic AU clips in %.0f s: final loss %.3f, held-out AU AUC %s",
             config.backbone, len(train_idx), report["seconds"], losses[-1], report.get("val_au_auc"))
    return out_file


def _held_out(samples, val_subjects: int) -> np.ndarray:
    """``(N,)`` bool: the clips of the first ``val_subjects`` corpus subjects (LOSO order), never trained on."""
    held_out = {g for g, _, _ in loso_splits(samples)[:val_subjects]} if val_subjects else set()
    return np.array([s.group in held_out for s in samples])


def _fresh_backbone(config: PretrainConfig) -> tuple[nn.Module, torch.device]:
    """The randomly initialised network to pre-train (the ViT, or the two-branch network's action branch), seeded
    with ``config.seed``, on its device."""
    seed_everything(config.seed)
    device = select_device(config.device)
    if config.backbone == ACTION_BRANCH:
        network = build_two_branch(config.backbone_kwargs["size"], 2, image_size=config.image_size)
        return network.action.to(device), device
    backbone = create_backbone(config.backbone, pretrained=False, img_size=config.image_size,
                               **config.backbone_kwargs).to(device)
    return backbone, device


def _save(backbone: nn.Module, report: dict[str, Any], start: float, out_file: Path, corpus_root: Path,
          keep_corpus: bool) -> None:
    """Write the backbone's tensors and the report beside them (atomically); drop a corpus nobody asked to keep."""
    report["seconds"] = time.perf_counter() - start
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    atomic_save_safetensors(out_file, state)
    atomic_write_json(out_file.with_suffix(".json"), report)
    if not keep_corpus:
        shutil.rmtree(corpus_root)


def _pretrain_ma2mi(config: PretrainConfig, samples, out_file: Path, corpus_root: Path, keep_corpus: bool,
                    start: float, cache_dir, progress: bool) -> Path:
    """The ``"ma2mi"`` objective (:func:`~.objectives.train_future_prediction`) on the macro corpus' clips of
    every subject but the first ``val_subjects`` (held out unseen, as the AU objective holds them out).

    The ViT reads each prefix's dynamic image, normalised as MPT normalises its input; the two-branch network's
    action branch reads each prefix's last frame minus its onset, divided by the standard deviation its network
    divides by (the mean cancels in a difference), as it reads apex minus onset."""
    val = _held_out(samples, config.val_subjects)
    labels = torch.from_numpy(au_targets(samples))[~val] if config.objective == "ma2mi+au" else None
    backbone, device = _fresh_backbone(config)
    if config.backbone == ACTION_BRANCH:
        differences = prefix_differences(samples, config.image_size, cache_dir=cache_dir, progress=progress)
        normalised = differences / torch.tensor(IMAGENET_DEFAULT_STD).view(1, 1, 3, 1, 1)
        encode = _call
    else:
        prefixes = prefix_dynamic_images(samples, config.image_size, config.num_frames, cache_dir=cache_dir,
                                         progress=progress)
        mean, std = (t.view(1, 1, 3, 1, 1) for t in normalisation(backbone))  # as MPT normalises its input
        normalised = (prefixes - mean) / std
        encode = _forward_features
    history = train_future_prediction(
        backbone, encode, normalised[~val], config.epochs, config.batch_size,
        config.lr, config.weight_decay, config.seed, config.ema_start, target=config.target, labels=labels,
        held_out=normalised[val] if val.any() else None, device=device, progress=progress,
    )
    backbone.eval()
    report: dict[str, Any] = {"config": config.as_dict(), "objective": config.objective, **history,
                              "n_generated": config.n_clips, "n_train": int((~val).sum()), "n_val": int(val.sum()),
                              "seconds": None}
    _save(backbone, report, start, out_file, corpus_root, keep_corpus)
    log.info("pre-trained %s by macro-to-micro future prediction on %d clips in %.0f s: final loss %.3f, held-out "
             "%s (copying the early prefix: %s)", config.backbone, int((~val).sum()), report["seconds"],
             history["train_loss"][-1], history.get("held_out_loss", [None])[-1], history.get("held_out_copy_loss"))
    return out_file


def _call(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net(x)


def _forward_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net.forward_features(x)


def pretraining_report(weights: str | Path | None) -> dict[str, Any] | None:
    """The ``.json`` report written beside a synthetic checkpoint (config, losses, held-out AU AUC);
    None for any other checkpoint (a hub or user file) or none at all."""
    if weights is None:
        return None
    path = Path(weights).with_suffix(".json")
    return json.loads(path.read_text()) if path.is_file() else None


#: What the loss measures: AU detection's, or future prediction's for each target (:data:`~.objectives.TARGETS`).
LOSS_NAMES = {
    "au": "AU binary cross-entropy",
    "latent": "1 - cosine to the later prefix's latent",
    "pixels": "MSE to the later prefix's pixels",
}


def pretraining_figure(report: dict[str, Any]):
    """The loss per epoch of a synthetic pre-training (its :func:`pretraining_report`), titled with the objective,
    the corpus, the time it took and what it scores on held-out faces: AU detection's ROC-AUC (``"au"``), or
    (``"ma2mi"``) the prediction loss per epoch, drawn beside the loss of copying the early prefix."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    objective = report.get("objective", "au")  # reports made before objectives existed are AU detection
    target = report["config"].get("target", "latent")
    loss_name = LOSS_NAMES["au" if objective == "au" else target] + (" + AU BCE" if objective == "ma2mi+au" else "")
    what = objective if objective == "au" else f"{objective} ({target} target)"
    if report["config"].get("backbone") == ACTION_BRANCH:  # it reads and predicts frame differences
        loss_name = loss_name.replace("prefix's", "difference's")
        what = f"{what}, the two-branch network's action branch"
    losses = report["train_loss"]
    epochs = range(1, len(losses) + 1)
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.plot(epochs, losses, marker="o", label="training clips")
    held_out, copy = report.get("held_out_loss"), report.get("held_out_copy_loss")
    if held_out:  # future prediction on unseen faces, and the forecast "nothing changes" it must beat
        ax.plot(epochs, held_out, marker="s", linestyle="--", label="held-out faces (prediction term)")
        ax.axhline(copy, color="grey", linestyle=":", label="held-out, copying the early prefix")
        ax.legend(fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylabel(loss_name, fontsize=8)
    auc = report.get("val_au_auc")
    unseen = f"; AU ROC-AUC on unseen faces {auc:.2f} (chance 0.50)" if auc is not None else ""
    if held_out:
        unseen = f"; held out {held_out[-1]:.2f} vs copying {copy:.2f}"
    ax.set_title(f"pre-training by {what}: {report['n_train']} clips, {report['seconds'] / 60:.0f} min"
                 f"{unseen}", fontsize=8)
    return fig


#: Part of every synthetic checkpoint's file name, followed by its objective, for a reader of the folder
#: (``vit_tiny_patch16_224-synthetic-au-<hash>``, ``...-synthetic-ma2mi-au-<hash>``); the code tells a checkpoint's
#: origin from its card, not its name (:func:`checkpoint_objective`).
SYNTHETIC_MARK = "-synthetic-"

#: The checkpoints that ship inside the package (package data), with their cards: found before any made here.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"


def checkpoint_name(config: PretrainConfig) -> str:
    """The file name of the checkpoint of ``config``: backbone, objective and a hash of every setting."""
    return f"{config.backbone}{SYNTHETIC_MARK}{config.objective.replace('+', '-')}-{config.fingerprint()}.safetensors"


def synthetic_checkpoint(config: PretrainConfig, folder: str | Path | None = None) -> Path:
    """Where the checkpoint of ``config`` lives (whether or not it has been made yet).

    The package's own :data:`SHIPPED_DIR` when it ships there (the quick profile's backbone); otherwise
    ``<work_dir>/data/weights/`` (or ``folder``). The name holds a hash of the :class:`PretrainConfig`, so a changed
    setting makes a new file instead of reusing a stale one.
    """
    name = checkpoint_name(config)
    if folder is None and (SHIPPED_DIR / name).is_file():
        return SHIPPED_DIR / name
    folder = Path(folder) if folder is not None else work_dir() / "data" / "weights"
    return folder / name


def ensure_pretrained(config: PretrainConfig, out_file: str | Path, progress: bool = True) -> Path:
    """``out_file``, made by :func:`pretrain_backbone` on first use (seconds for ci; quick's ships), then reused."""
    out_file = Path(out_file)
    if out_file.is_file() and out_file.with_suffix(".json").is_file():
        return out_file
    print(f"pre-training {config.backbone} on {OBJECTIVE_NOTES[config.objective]} once ({config.n_clips} clips, "
          f"{config.epochs} epochs) -> {out_file}")
    return pretrain_backbone(config, out_file, progress=progress)


#: What each objective pre-trains on, in the words of every caption and message.
OBJECTIVE_NOTES = {
    "au": "synthetic facial actions (AU detection)",
    "ma2mi": "synthetic macro-expressions (MA2MI future prediction)",
    "ma2mi+au": "synthetic macro-expressions (MA2MI future prediction + AU detection)",
}

#: Where a run's backbone weights come from, in the one wording every caption, table and summary uses.
BACKBONE_NOTES = {
    "random": "{backbone} with RANDOM weights: a timing run, not the paper's experiment",
    "synthetic": "{backbone} pre-trained on {objective}, not the paper's ImageNet ViT",
    "file": "{backbone}, weights from {weights}",
    "hub": "{backbone}, pretrained weights from the hub",
}


def checkpoint_objective(weights: str | Path | None) -> str | None:
    """The objective a synthetic checkpoint was made with, read from its card (the ``.json`` that
    :func:`pretrain_backbone` writes beside it); None for a file without such a card (a user's or a hub
    checkpoint) or no file."""
    objective = ((pretraining_report(weights) or {}).get("config") or {}).get("objective")
    return objective if objective in OBJECTIVES else None


def _origin(config: TrainConfig, pretraining: PretrainConfig | None) -> tuple[str, str | None]:
    """``(source, objective)`` of the run's backbone: see :func:`backbone_source`; the objective only for a
    synthetic one (from ``pretraining`` or the checkpoint's card, read once)."""
    if not config.pretrained:
        return "random", None
    if config.weights is None:
        return "hub", None
    objective = pretraining.objective if pretraining is not None else checkpoint_objective(config.weights)
    return ("synthetic", objective) if objective else ("file", None)


def backbone_source(config: TrainConfig, pretraining: PretrainConfig | None = None) -> str:
    """``"random"``, ``"synthetic"`` (a checkpoint made by this module), ``"file"`` or ``"hub"``.

    A checkpoint is synthetic when the run is to make it (``pretraining``: :attr:`mpt_utils.run.Run.pretraining`,
    known before the file exists) or when its card says how it was made (:func:`checkpoint_objective`), whatever
    the file is called."""
    return _origin(config, pretraining)[0]


def backbone_note(config: TrainConfig, pretraining: PretrainConfig | None = None) -> str:
    """Which backbone, and where its weights come from, in the words of :data:`BACKBONE_NOTES` (``pretraining``:
    as for :func:`backbone_source`)."""
    depth = config.backbone_kwargs.get("depth")
    backbone = config.backbone + (f" ({depth} blocks)" if depth else "")
    source, made_with = _origin(config, pretraining)
    objective = OBJECTIVE_NOTES[made_with] if made_with else None
    return BACKBONE_NOTES[source].format(weights=config.weights, backbone=backbone, objective=objective)
