"""Leave-one-subject-out training with a frozen backbone: honest, resumable, GPU-ready.

A run writes into its run folder (``out_dir``), whose layout :mod:`.run_folder` owns: ``config.json`` (checked on
rerun), ``train.log``, one ``folds/<subject>/`` per finished fold (renamed into place complete), the claims of the
folds being trained, and the pooled ``results.json``, ``predictions.csv`` and ``summary.md``.

Protocol: the left-out subject is used for nothing but the final predictions. Epochs are fixed
in advance; the optional validation split comes from the training subjects only.

Every fold is a task (:func:`run_task`) that any worker may take: in this process (:func:`run_loso` and
:func:`run_folds`, one after another), on local workers or as a SLURM array task (:mod:`mpt_utils.executors`).
Resuming: finished folds are skipped; a fold left by a dead worker (its claim stale, its temporary folder half
written) is taken over and redone from its start.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..data import DEFAULT_SCHEME, Sample, check_classes, class_names, label_indices, loso_splits
from ..io import (
    atomic_save_npy,
    atomic_save_npz,
    atomic_save_safetensors,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    fault_point,
    file_sha256,
    remove_stale_temporaries,
)
from ..metrics import bootstrap_interval, compute_metrics
from ..model import (
    TWO_BRANCH_VARIANTS,
    PretrainedWeightsError,
    action_weights_file,
    build_model,
    check_variant,
    checkpoint_file,
    weights_help,
)
from ..runtime import intra_op_threads, progress_bar, seed_everything, select_device, select_precision
from . import claims
from .inputs import ModelInputs, prepare_inputs
from .pretrain import backbone_note
from .run_folder import RunFolder

log = logging.getLogger("mpt_utils.train")

EpochCallback = Callable[[str, int, float], None]


#: The settings that name a checkpoint's place: a run folder compares the files' contents (:func:`weights_identity`),
#: not their paths, so that it resumes where the same files are found elsewhere.
PATH_FIELDS = ("weights", "action_weights")

#: Settings that shape only the two-branch network: a run of MPT's variants does not compare them, so that its
#: folders written before they existed still resume.
TWO_BRANCH_ONLY = ("two_branch_size",)


class ConfigMismatchError(RuntimeError):
    """``out_dir`` holds results of a different configuration or dataset."""


class NoFinishedFoldsError(RuntimeError):
    """A run folder has no finished fold to pool (every fold it was asked for is held by another worker)."""


@dataclass
class LOSOResult:
    """Pooled results of a LOSO run.

    metrics: :func:`compute_metrics` on the pooled held-out predictions.
    predictions: a pandas table, one row per held-out sample (key, subject, label, prediction).
    folds: a pandas table, one row per fold (subject, n_test, accuracy, seconds ...).
    features: ``(N, D)`` held-out CLS features in sample order (each from its own fold model).
    complete: True when every subject's fold has been run.
    """

    metrics: dict[str, Any]
    predictions: Any
    folds: Any
    features: np.ndarray
    config: TrainConfig
    out_dir: Path
    complete: bool

    def interval(self, classes: Sequence[str], metric: str = "f1") -> tuple[float, float]:
        """The 90 % interval of the pooled ``metric`` over subjects: :func:`~mpt_utils.metrics.bootstrap_interval`
        on the held-out predictions, resampling whole subjects."""
        p = self.predictions
        return bootstrap_interval(p["label"], p["prediction"], classes, metric=metric, groups=p["subject"])


def resolve_classes(samples: Sequence[Sample], config: TrainConfig) -> list[str]:
    """The class order of a run, checked against the samples: ``config.classes``, or without them (a config not
    made by :func:`mpt_utils.run.resolve_run`) the default scheme of the samples' dataset."""
    if config.classes:
        classes = list(config.classes)
    else:
        classes = list(class_names(DEFAULT_SCHEME[samples[0].dataset])) if samples else []
    check_classes(samples, classes)
    return classes


def dataset_fingerprint(samples: Sequence[Sample]) -> list[str]:
    return [f"{s.key}:{s.label}" for s in samples]


def weights_identity(config: TrainConfig) -> str | None:
    """What identifies the run's pre-trained weights: the SHA-256 of ``config.weights`` (the backbone of MPT's
    variants), of ``config.action_weights`` (``"two_branch_ma2mi"``), None without a file (``"two_branch"``).

    A run folder is keyed on the file's *contents*, not its path, so a folder moved to another machine
    (another ``MPT_HOME``, a Drive mount) still resumes with the same checkpoint found elsewhere.
    """
    if config.variant in TWO_BRANCH_VARIANTS:
        return file_sha256(action_weights_file(config)) if config.variant == "two_branch_ma2mi" else None
    if config.weights is None:
        return None
    path = Path(config.weights).expanduser()
    if not path.is_file():  # a checkpoint of your own moved away, or the run's synthetic backbone not made yet
        raise PretrainedWeightsError(
            f"weights file {path} does not exist. {weights_help(config.backbone)} If it is the run's synthetic "
            "backbone, it has not been made yet: call run.prepare_backbone() (mpt_utils.run) first; it pre-trains "
            "the ViT once, on the CPU, and reuses it afterwards"
        )
    return file_sha256(checkpoint_file(config.backbone, config.weights))


def _check_out_dir(out_dir: Path, config: TrainConfig, fingerprint: list[str], digest: str | None) -> None:
    """Write config.json, or check that the one already there describes the same run.

    Settings compare by value, except the checkpoint, which compares by content (``weights_sha256``): a folder
    moved elsewhere resumes with the same file found in its new place, and records that place.
    """
    path = RunFolder(out_dir).config
    wanted = {"config": config.result_fields(), "weights_sha256": digest, "dataset": fingerprint}
    if not path.exists():
        atomic_write_json(path, wanted)
        return
    saved = json.loads(path.read_text())
    if "weights_sha256" not in saved:
        raise ConfigMismatchError(
            f"{out_dir} was written by an older version of this tutorial (its config.json has no checkpoint "
            "digest); start a new --out folder, or delete this one to start over."
        )
    # a setting added to TrainConfig after the folder was written is read as its default there
    defaults = json.loads(json.dumps(TrainConfig().result_fields(), default=str))
    ignored = PATH_FIELDS + (() if config.variant in TWO_BRANCH_VARIANTS else TWO_BRANCH_ONLY)
    saved_config = {k: v for k, v in {**defaults, **(saved.get("config") or {})}.items() if k not in ignored}
    wanted_config = {k: v for k, v in json.loads(json.dumps(wanted["config"], default=str)).items()
                     if k not in ignored}
    diff = sorted(k for k in set(wanted_config) | set(saved_config) if saved_config.get(k) != wanted_config.get(k))
    if saved["weights_sha256"] != wanted["weights_sha256"]:
        diff.append("weights (the checkpoint's contents)")
    if diff or saved.get("dataset") != wanted["dataset"]:
        what = f"settings {diff}" if diff else "dataset (samples or labels)"
        raise ConfigMismatchError(
            f"{out_dir} already holds results of a different run (its {what} differ); refusing to "
            "mix them. Use a new --out folder, or delete the old one to start over."
        )
    moved = {k: getattr(config, k) for k in PATH_FIELDS if saved["config"].get(k) != getattr(config, k)}
    if moved:  # the same checkpoints found in a new place
        log.info("the run's checkpoints are read from %s", moved)
        atomic_write_json(path, {**saved, "config": {**saved["config"], **moved}})


@contextmanager
def logging_to(out_dir: Path) -> Iterator[None]:
    """Write this module's log into ``out_dir/train.log`` for the block; nested blocks on the same folder (a run
    and its folds) write each line once."""
    path = os.path.abspath(RunFolder(out_dir).log)
    if any(getattr(h, "baseFilename", None) == path for h in log.handlers):
        yield
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def _validation_split(samples: Sequence[Sample], train_idx: np.ndarray, n_subjects: int, seed: int):
    """Move ``n_subjects`` whole *training* subjects into a validation split."""
    if n_subjects <= 0:
        return train_idx, np.array([], dtype=np.int64)
    groups = np.array([samples[i].group for i in train_idx])
    subjects = np.unique(groups)
    if n_subjects >= len(subjects):
        raise ValueError(f"val_subjects={n_subjects} leaves no training subject (only {len(subjects)})")
    chosen = np.random.default_rng(seed).choice(subjects, n_subjects, replace=False)
    is_val = np.isin(groups, chosen)
    return train_idx[~is_val], train_idx[is_val]


@torch.no_grad()
def predict(model: nn.Module, inputs: ModelInputs, indices: np.ndarray, batch_size: int, device, precision):
    """Logits ``(n, classes)`` and features ``(n, D)`` (float32, CPU) for ``indices``: MPT's CLS token, the
    two-branch network's pooled map."""
    model.eval()
    logits, features = [], []
    for start in range(0, len(indices), batch_size):
        batch = inputs.batch(indices[start : start + batch_size], device)
        with _autocast(device, precision):
            tokens = model.forward_features(*batch)
            feat = model.forward_head(tokens, pre_logits=True)
            out = model.forward_head(tokens)
        logits.append(out.float().cpu())
        features.append(feat.float().cpu())
    return torch.cat(logits).numpy(), torch.cat(features).numpy()


def class_weights(train_labels: np.ndarray, num_classes: int, mode: str) -> torch.Tensor | None:
    """Cross-entropy class weights from the *training* labels of a fold (None for ``"none"``).

    ``"balanced"``: ``n / (classes * n_c)`` for every class present (scikit-learn's convention); a class
    absent from the fold's training subjects gets weight 0 (it has no term in the loss anyway).
    """
    if mode == "none":
        return None
    if mode != "balanced":
        raise ValueError(f"class_weights must be 'none' or 'balanced', got {mode!r}")
    counts = np.bincount(train_labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(train_labels) / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def _autocast(device, precision):
    if precision.dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision.dtype)


def learning_rate(config: TrainConfig) -> float:
    """The optimiser's learning rate: the run's ``lr`` times its variant's ``lr_scale`` (1 but for the rows that
    train the whole ViT)."""
    return config.lr * check_variant(config.variant).lr_scale


def train_fold(
    template: nn.Module,
    inputs: ModelInputs,
    labels: np.ndarray,
    train_idx: np.ndarray,
    config: TrainConfig,
    device: torch.device,
    seed: int,
    val_idx: np.ndarray | None = None,
    on_epoch_end: EpochCallback | None = None,
    subject: str = "",
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any], np.ndarray]:
    """Train a copy of ``template`` on ``train_idx``; return (model, history, fed indices)."""
    seed_everything(seed)
    model = copy.deepcopy(template).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=learning_rate(config), weight_decay=config.weight_decay)
    precision = select_precision(device, config.precision)
    scaler = torch.amp.GradScaler(device.type) if precision.use_scaler else None
    num_classes = template.head.out_features
    weights = class_weights(labels[train_idx], num_classes, config.class_weights)
    loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))
    generator = torch.Generator().manual_seed(seed)
    y = torch.as_tensor(labels, dtype=torch.long)
    history: dict[str, Any] = {"train_loss": [], "val_uar": []}
    fed: list[np.ndarray] = []
    best = (-1.0, None)
    epochs = progress_bar(range(config.epochs), desc=f"fold {subject}", leave=False, disable=not progress)
    for epoch in epochs:
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        total, count = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            fed.append(batch)
            target = y[batch].to(device)
            with _autocast(device, precision):
                loss = loss_fn(model(*inputs.batch(batch, device)).float(), target)
            optimiser.zero_grad(set_to_none=True)
            if scaler is not None:  # fp16: scale the loss, unscale the gradients, skip a step that overflowed
                scaler.scale(loss).backward()
                scaler.unscale_(optimiser)
                scaler.step(optimiser)
                scaler.update()
            else:
                loss.backward()
                optimiser.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
        history["train_loss"].append(total / max(count, 1))
        if scaler is not None:
            history.setdefault("grad_scale", []).append(float(scaler.get_scale()))
        if val_idx is not None and len(val_idx):
            logits, _ = predict(model, inputs, val_idx, config.batch_size, device, precision)
            val = compute_metrics(labels[val_idx], logits.argmax(1), range(num_classes))
            history["val_uar"].append(val["uar"])
            if config.select_epoch_on_val and val["uar"] > best[0]:
                best = (val["uar"], copy.deepcopy(model.trainable_state_dict()))
        epochs.set_postfix(loss=f"{history['train_loss'][-1]:.3f}")
        if on_epoch_end is not None:
            on_epoch_end(subject, epoch, history["train_loss"][-1])
    if best[1] is not None:
        model.load_state_dict(best[1], strict=False)
        history["selected_epoch"] = int(np.argmax(history["val_uar"]))
    return model, history, np.concatenate(fed) if fed else np.array([], dtype=np.int64)


def fold_done(out_dir: str | Path, subject: str) -> bool:
    """True when the subject's fold folder is complete (it appears, by one rename, with its ``COMPLETE`` marker)."""
    return RunFolder(out_dir).fold_done(subject)


def folds_to_run(samples: Sequence[Sample], config: TrainConfig) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The LOSO folds a run covers: every subject's, or the first ``config.max_folds``."""
    folds = loso_splits(samples)
    return folds if config.max_folds is None else folds[: config.max_folds]


def open_run(samples: Sequence[Sample], config: TrainConfig, out_dir: str | Path) -> TrainConfig:
    """Create (or check) the run folder ``out_dir`` for ``config`` on ``samples``; return the config with its
    classes set. Raises :class:`ConfigMismatchError` for a folder that holds another run (nothing is written)."""
    out_dir = Path(out_dir)
    folder = RunFolder(out_dir)
    config = config.replace(classes=resolve_classes(samples, config))
    digest = weights_identity(config)  # a missing checkpoint fails here, before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    for parent in (out_dir, folder.folds):  # what a writer killed before its rename left behind
        for stale in remove_stale_temporaries(parent):
            log.info("removed %s, left by an interrupted write", stale.name)
    _check_out_dir(out_dir, config, dataset_fingerprint(samples), digest)
    folder.folds.mkdir(exist_ok=True)
    for fold, claim in folder.claims():  # a worker killed after its fold was in place
        if folder.fold_done(fold) and (reason := claims.discard_if_stale(claim)):
            log.info("removed the claim on the finished fold %s: %s", fold, reason)
    return config


def run_template(config: TrainConfig) -> nn.Module:
    """The untrained model every fold of a run starts from: ``config``'s model built right after seeding with the
    run's seed (the frozen backbone's random parts included), so a fold's saved trainable tensors fit it."""
    seed_everything(config.seed)
    return build_model(config, len(config.classes))


@dataclass
class FoldContext:
    """What every fold of one run shares: the inputs of all samples, their labels, the untrained model."""

    samples: Sequence[Sample]
    config: TrainConfig
    labels: np.ndarray
    inputs: ModelInputs
    template: nn.Module

    @classmethod
    def build(cls, samples: Sequence[Sample], config: TrainConfig, cache_dir=None, progress: bool = True):
        """Preprocess (cached) and build the variant with the run's seed: every fold starts from these weights."""
        inputs = prepare_inputs(samples, config, cache_dir, progress=progress)  # batches are pinned on CUDA
        return cls(samples, config, label_indices(samples, config.classes), inputs, run_template(config))


@contextmanager
def claimed_fold(out_dir: Path, subject: str) -> Iterator[tuple[claims.Claim | None, str]]:
    """Hold the claim on a fold for the block: ``(claim, "")``, or ``(None, who holds it)`` when a live worker does.

    On entering, a stale claim is taken over (logged) and the fold's temporary folders left by its dead worker
    are discarded; on leaving, however the block ends, the claim is released.
    """
    folder = RunFolder(out_dir)
    claim, note = claims.acquire(folder.claim(subject))
    if claim is None:
        log.info("fold %s: held by %s, left to it", subject, note)
        yield None, note
        return
    try:
        if note:
            log.info("fold %s: %s", subject, note)
        for stale in folder.temporary_folds(subject):
            log.info("discarding the interrupted fold %s; it is redone from its start", stale.name)
            shutil.rmtree(stale, ignore_errors=True)
        yield claim, ""
    finally:
        claim.release()


def fold_of(samples: Sequence[Sample], subject: str) -> tuple[int, np.ndarray, np.ndarray]:
    """The fold that holds ``subject`` out: ``(fold number, train indices, test indices)``; its number (the
    subject's place in :func:`loso_splits`) seeds the fold's training and validation split."""
    for fold_no, (group, train_idx, test_idx) in enumerate(loso_splits(samples)):
        if group == subject:
            return fold_no, train_idx, test_idx
    raise ValueError(f"unknown fold {subject!r}; the folds are {[g for g, _, _ in loso_splits(samples)]}")


@dataclass
class FittedFold:
    """One fold's trained model, its training history, the indices it was fed (in order) and its split."""

    model: nn.Module
    history: dict[str, Any]
    fed: np.ndarray
    fit_idx: np.ndarray
    val_idx: np.ndarray


def fit_fold(context: FoldContext, fold_no: int, subject: str, train_idx: np.ndarray,
             on_epoch_end: EpochCallback | None = None, progress: bool = True) -> FittedFold:
    """The one fold trainer: the run's validation split (whole training subjects, seeded by the run's seed plus
    the fold number), then :func:`train_fold` from the run's template with that seed. Every way of training a fold
    goes through it: :func:`run_task` (every executor's task, the in-process one included), and
    :func:`mpt_utils.analysis.load_fold_model` when it re-trains a fold whose weights are missing. Call it inside
    ``intra_op_threads(config.threads)`` for the run's own bits."""
    config = context.config
    fit_idx, val_idx = _validation_split(context.samples, train_idx, config.val_subjects, config.seed + fold_no)
    model, history, fed = train_fold(
        context.template, context.inputs, context.labels, fit_idx, config, select_device(config.device),
        config.seed + fold_no, val_idx=val_idx, on_epoch_end=on_epoch_end, subject=subject, progress=progress,
    )
    return FittedFold(model, history, fed, fit_idx, val_idx)


def _train_and_save(context, folder: RunFolder, fold_no, subject, train_idx, test_idx, claim, on_epoch_end,
                    progress):
    samples, config, labels, inputs = context.samples, context.config, context.labels, context.inputs
    device = select_device(config.device)
    precision = select_precision(device, config.precision)

    def beat(subject_: str, epoch: int, loss: float) -> None:
        claim.heartbeat()
        if on_epoch_end is not None:
            on_epoch_end(subject_, epoch, loss)

    start = time.perf_counter()
    fitted = fit_fold(context, fold_no, subject, train_idx, beat, progress)
    logits, features = predict(fitted.model, inputs, test_idx, config.batch_size, device, precision)
    seconds = time.perf_counter() - start
    fold_metrics = compute_metrics(labels[test_idx], logits.argmax(1), range(len(config.classes)))
    tmp = folder.temporary_fold(subject, claim.token)
    tmp.mkdir()
    try:  # a fold is written into tmp and renamed into place whole: a crash at any point leaves no fold folder
        atomic_save_safetensors(tmp / RunFolder.WEIGHTS, fitted.model.trainable_state_dict())
        atomic_save_npz(tmp / RunFolder.PREDICTIONS, indices=test_idx, y_true=labels[test_idx],
                        y_pred=logits.argmax(1), logits=logits, features=features,
                        keys=np.array([samples[i].key for i in test_idx]))
        atomic_save_npy(tmp / RunFolder.FED, np.unique(fitted.fed))
        atomic_write_json(tmp / RunFolder.METRICS, {
            "subject": subject, "n_train": int(len(fitted.fit_idx)), "n_val": int(len(fitted.val_idx)),
            "n_test": int(len(test_idx)), "accuracy": fold_metrics["accuracy"],
            "seconds": seconds, "seconds_per_epoch": seconds / max(config.epochs, 1),
            "history": fitted.history, "device": str(device), "precision": precision.name,
            "threads": torch.get_num_threads(), "lr": learning_rate(config),
        })
        atomic_write_json(tmp / RunFolder.COMPLETE, {**claim.info(), "finished": time.time()})
        fault_point("fold rename", tmp)
        tmp.rename(folder.fold(subject))  # the fold appears complete or not at all
    except BaseException:  # an error, a full disk, Ctrl-C: nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fault_point("fold in place", folder.fold(subject))
    log.info("fold %s: %d test samples, accuracy %.3f, %.1f s", subject, len(test_idx),
             fold_metrics["accuracy"], seconds)


def run_loso(
    samples: Sequence[Sample],
    config: TrainConfig,
    out_dir: str | Path,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    on_epoch_end: EpochCallback | None = None,
) -> LOSOResult:
    """Train one model per left-out subject, in this process, and return the pooled held-out results.

    Parameters
    ----------
    samples: the labelled dataset (see :func:`mpt_utils.run.resolve_run`).
    config: the run's :class:`TrainConfig`.
    out_dir: results folder (created). Finished folds found there are reused, and folds held by another live
        worker are left to it; a folder holding a different config or dataset is refused with
        :class:`ConfigMismatchError`.
    cache_dir: where preprocessed clips are cached (default: :func:`default_cache_dir`).
    progress: tqdm bars over folds and epochs.
    on_epoch_end: called as ``(subject, epoch, train_loss)`` after every epoch.
    """
    out_dir = Path(out_dir)
    config = open_run(samples, config, out_dir)
    with logging_to(out_dir):
        todo = [subject for subject, _, _ in folds_to_run(samples, config)]
        log.info("LOSO: %d samples, %d subjects, %d folds to run, %s", len(samples),
                 len({s.group for s in samples}), len(todo), config.label)
        outcomes = run_folds(samples, config, out_dir, todo, cache_dir, progress, on_epoch_end)
        if not any(fold_done(out_dir, s) for s, _, _ in loso_splits(samples)):
            held = [f"fold {subject} is {what}" for subject, what in outcomes.items() if what.startswith("held by")]
            raise NoFinishedFoldsError(
                f"no fold of {out_dir} is finished: " + "; ".join(held or ["none was run"])
                + ". Rerun the same command once the other worker is done (a claim whose worker is gone is taken "
                "over: see 'Many folds, many GPUs' in the README)"
            )
        return collect_results(samples, config, out_dir, config.classes, n_folds=len(loso_splits(samples)))


def run_folds(samples: Sequence[Sample], config: TrainConfig, out_dir: str | Path, subjects: Sequence[str],
              cache_dir: str | Path | None = None, progress: bool = True,
              on_epoch_end: EpochCallback | None = None) -> dict[str, str]:
    """Train the folds of one run that leave out ``subjects``, here, one after another, each as the task that every
    executor runs (:func:`run_task`). The run's inputs and untrained model (:class:`FoldContext`) are made once,
    before the first fold, when any is unfinished. Returns what happened to each fold (see :func:`run_task`)."""
    out_dir = Path(out_dir)
    config = open_run(samples, config, out_dir)
    outcomes: dict[str, str] = {}
    with logging_to(out_dir), intra_op_threads(config.threads):
        pending = any(not fold_done(out_dir, subject) for subject in subjects)
        context = FoldContext.build(samples, config, cache_dir, progress) if pending else None
        for subject in progress_bar(subjects, desc="LOSO folds", disable=not progress):
            if fold_done(out_dir, subject):
                log.info("fold %s: already finished, skipped", subject)
                outcomes[subject] = "done already"
                continue
            outcomes[subject] = run_task(samples, config, out_dir, subject, cache_dir, progress, context, on_epoch_end)
    return outcomes


def run_task(samples: Sequence[Sample], config: TrainConfig, out_dir: str | Path, subject: str,
             cache_dir: str | Path | None = None, progress: bool = False, context: FoldContext | None = None,
             on_epoch_end: EpochCallback | None = None) -> str:
    """One fold of a run as a task of its own: what every executor runs (in this process through
    :func:`run_folds`, in a worker process, as a SLURM array task).

    It claims the fold first, then prepares: two workers never both prepare or train it. Every executor gives
    the same bits on the same machine: the same cached inputs, the same seeded initial weights, ``config.threads``
    CPU threads. ``context``: the run's :class:`FoldContext` when the caller trains several of its folds and has
    opened the run folder once (:func:`open_run`, as :func:`run_folds` does); made here otherwise, after the folder
    is opened (checked, cleaned). Returns what happened (``"trained"``, ``"done already"`` or ``"held by ..."``).
    """
    out_dir = Path(out_dir)
    if context is None:
        config = open_run(samples, config, out_dir)
    elif config.replace(classes=resolve_classes(samples, config)) != context.config:
        raise ValueError(f"the context given was made for another run than {out_dir}'s")
    else:
        config = context.config
    fold_no, train_idx, test_idx = fold_of(samples, subject)
    with logging_to(out_dir), claimed_fold(out_dir, subject) as (claim, holder), intra_op_threads(config.threads):
        if claim is None:
            return f"held by {holder}"
        if fold_done(out_dir, subject):  # finished by another worker between our look and our claim
            return "done already"
        if context is None:
            context = FoldContext.build(samples, config, cache_dir, progress)
        _train_and_save(context, RunFolder(out_dir), fold_no, subject, train_idx, test_idx, claim, on_epoch_end,
                        progress)
        return "trained"


def collect_results(samples, config: TrainConfig, out_dir: Path, classes, n_folds: int) -> LOSOResult:
    """Pool the finished folds of ``out_dir`` and write results.json, predictions.csv, summary.md."""
    import pandas as pd

    folder = RunFolder(out_dir)
    rows, fold_rows, features = [], [], {}
    for fold_dir in folder.finished_folds():
        fold = json.loads((fold_dir / RunFolder.METRICS).read_text())
        with np.load(fold_dir / RunFolder.PREDICTIONS, allow_pickle=False) as p:
            for i, yt, yp, f in zip(p["indices"], p["y_true"], p["y_pred"], p["features"]):
                s = samples[int(i)]
                rows.append({"index": int(i), "key": s.key, "dataset": s.dataset, "subject": s.group,
                             "label": classes[yt], "prediction": classes[yp]})
                features[int(i)] = f
        fold_rows.append({k: fold[k] for k in ("subject", "n_train", "n_test", "accuracy", "seconds",
                                              "seconds_per_epoch", "device", "precision")})
    if not rows:
        raise RuntimeError(f"no finished folds in {out_dir}")
    predictions = pd.DataFrame(rows).sort_values("index").reset_index(drop=True)
    folds = pd.DataFrame(fold_rows)
    metrics = compute_metrics(predictions["label"], predictions["prediction"], classes,
                              groups=predictions["subject"])
    complete = len(fold_rows) == n_folds
    metrics.update({"folds_run": len(fold_rows), "folds_total": n_folds, "complete": complete,
                    "label": config.label, "variant": config.variant,
                    "random_backbone": not config.pretrained})
    sources = sorted({s.dataset for s in samples})
    if len(sources) > 1:  # a composite (MEGC 2019): the pooled predictions scored per source dataset too
        metrics["per_dataset"] = {}
        for name in sources:
            part = predictions[predictions["dataset"] == name]
            m = compute_metrics(part["label"], part["prediction"], classes) if len(part) else None
            metrics["per_dataset"][name] = {"uf1": m and m["uf1"], "uar": m and m["uar"],
                                            "accuracy": m and m["accuracy"], "n_clips": len(part)}
    atomic_write_json(folder.results, metrics)
    atomic_write(folder.predictions, lambda p: predictions.to_csv(p, index=False))
    atomic_write_text(folder.summary, summary_markdown(metrics, config))
    feats = np.stack([features[i] for i in predictions["index"]])
    return LOSOResult(metrics, predictions, folds, feats, config, out_dir, complete)


def summary_markdown(metrics: dict[str, Any], config: TrainConfig) -> str:
    """A short Markdown report of a run, with every caveat that applies to it."""
    lines = [
        f"# LOSO results: {config.variant}",
        "",
        f"- run: {config.label or 'unlabelled'}",
        f"- backbone {config.backbone}: {backbone_note(config)}",
        f"- folds: {metrics['folds_run']} of {metrics['folds_total']}"
        + ("" if metrics["complete"] else " (INCOMPLETE: pooled over the finished folds only)"),
        f"- pooled over {metrics['n']} held-out samples: accuracy {metrics['accuracy']:.4f}, "
        f"F1 (= UF1) {metrics['f1']:.4f}, UAR {metrics['uar']:.4f}",
        f"- per-fold means (not the paper's protocol): accuracy {metrics['per_fold_mean_accuracy']:.4f}, "
        f"F1 {metrics['per_fold_mean_f1']:.4f}, UAR {metrics['per_fold_mean_uar']:.4f} (each over the classes a "
        "fold's subject shows)",
        "",
        "| class | support | recall | F1 |",
        "|---|---|---|---|",
    ]
    for cls, m in metrics["per_class"].items():
        lines.append(f"| {cls} | {m['support']} | {m['recall']:.3f} | {m['f1']:.3f} |")
    if "per_dataset" in metrics:
        lines += ["", "Per source dataset (the composite's pooled predictions, scored over the scheme's classes):", "",
                  "| dataset | clips | UF1 | UAR |", "|---|---|---|---|"]
        for name, m in metrics["per_dataset"].items():
            scores = "| no finished fold yet | |" if m["uf1"] is None else f"| {m['uf1']:.4f} | {m['uar']:.4f} |"
            lines.append(f"| {name} | {m['n_clips']} {scores}")
    return "\n".join(lines) + "\n"


def _config_from_saved(saved: dict[str, Any]) -> TrainConfig:
    fields = dict(saved["config"])
    fields["classes"] = tuple(fields["classes"])
    return TrainConfig(**fields)


def load_run_config(out_dir: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in a run folder by :func:`run_loso`."""
    return _config_from_saved(json.loads(RunFolder(out_dir).config.read_text()))


def load_result(samples: Sequence[Sample], out_dir: str | Path) -> LOSOResult:
    """Reload the pooled results of a finished (or partly finished) run folder."""
    out_dir = Path(out_dir)
    saved = json.loads(RunFolder(out_dir).config.read_text())
    config = _config_from_saved(saved)
    if dataset_fingerprint(samples) != saved["dataset"]:
        raise ConfigMismatchError(f"{out_dir} was trained on a different dataset than the samples given")
    return collect_results(samples, config, out_dir, list(config.classes), n_folds=len(loso_splits(samples)))
