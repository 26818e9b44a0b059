"""The one home of every model, motion and training setting, with the paper's defaults.

:class:`TrainConfig` owns each setting and its default. Everything else reads the default from
here: the model (``MPT``, ``MotionPromptGenerator``), the motion functions (``magnify``), the clip
reader (``read_clip``) keep their own keyword arguments, but their default values are
``PAPER.<field>``, never typed again. A profile (:mod:`mpt_utils.profiles`) is a named set of
overrides of these fields; :func:`mpt_utils.run.resolve_run` applies it.

This module sits at the bottom of the package: it imports nothing of ours, so every layer may read it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

#: Fields that do not change what a run computes: a rerun may differ in them.
NON_RESULT_FIELDS = ("max_folds", "device", "label")

#: The allowed values of the settings that name a choice (each the one home of its list).
COLORS = ("rgb", "yiq")
DYNAMIC_SCALINGS = ("minmax", "zero_centred")
CLASS_WEIGHTS = ("none", "balanced")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: ``--device``: auto, cpu, mps, cuda or cuda:<index>.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class ConfigError(ValueError):
    """A :class:`TrainConfig` setting has a value it cannot take; the message names the setting and its choices,
    ``setting`` is the field's name."""

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


def _check_int(name: str, value: Any, low: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be a whole number >= {low}" + (" or None" if optional else "")
                          + f", got {value!r}", name)
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}", name)
    return int(value)


def _check_real(name: str, value: Any, low: float, strict: bool = False, optional: bool = False) -> float | None:
    """A finite number ``>= low`` (``> low`` when ``strict``), as a float."""
    if value is None and optional:
        return None
    bound = f"{'>' if strict else '>='} {low:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number {bound}" + (" or None" if optional else "")
                          + f", got {value!r}", name)
    if value < low or (strict and value == low):
        raise ConfigError(f"{name} must be {bound}, got {value:g}", name)
    return float(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}", name)


def _check_type(name: str, value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, kind):
        raise ConfigError(f"{name} must be {what}, got {value!r}", name)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a LOSO run's results; the defaults are the paper's (section IV-A).

    Attributes
    ----------
    variant: a name from :data:`mpt_utils.model.VARIANTS` (``"mpt"``, ``"head_only"`` ...), or one of MA2MI's
        two-branch network (:data:`mpt_utils.model.TWO_BRANCH_VARIANTS`: ``"two_branch"``, ``"two_branch_ma2mi"``).
    two_branch_size, action_weights: the two-branch network's size (:data:`mpt_utils.model.TWO_BRANCH_SIZES`,
        run at ``image_size``) and its action branch's pre-trained checkpoint (``"two_branch_ma2mi"``; set by
        :func:`mpt_utils.run.resolve_run`, made by ``Run.prepare_action_branch``).
    backbone, pretrained, weights, backbone_kwargs: the frozen ViT (see ``create_backbone``); the paper's is
        ViT-B/16 pre-trained on ImageNet-21k.
    image_size, num_frames: frame side in pixels and T, the frames per clip (section IV-A: 224 and 16).
    num_prompts, reduction, token_average: K (Fig. 5; 0: no motion prompts), r (Table XI) and the adapter's
        token-average reading.
    generator_channels: C, the width of the motion prompt generator's per-frame features (eq. 8).
    generator_patch: the side in pixels of the generator's convolutional stem, the same for every backbone (16:
        the paper's ViT-B/16 patch), so that the backbone ablation compares backbones, not generator sizes.
    alpha, fs, order, low_hz, high_hz, levels: Eulerian magnification (eqs. 4-7, Table X; see ``magnify``).
    lambda_c, skip_finest, color, chroma_attenuation: the remedies of Wu et al.'s code against amplified noise
        (see ``magnify``): a spatial cut-off in pixels that lowers alpha on fine levels (None: off), the finest
        level left unamplified, amplification in YIQ with chroma amplified ``chroma_attenuation`` times less.
        The paper states none of them, so all are off by default.
    dynamic_scaling: how a dynamic image becomes the model's [0, 1] input (see ``scale_dynamic_image``):
        ``"minmax"`` per image (the usual choice; the paper does not say) or ``"zero_centred"``
        (``d / (2 max|d|) + 0.5``: no change stays mid-grey in every clip). Notebook 02 measures both.
    epochs: fixed number of epochs per fold, chosen in advance (never by the test subject).
    batch_size, lr, weight_decay: Adam (section IV-A: 16, 3e-4; no weight decay).
    class_weights: ``"none"`` (the paper's plain cross-entropy, eq. 17) or ``"balanced"``: each class weighted
        by ``n / (classes * n_class)`` over the fold's training samples, so a majority class ("others") cannot
        win by default. Computed from training subjects only.
    val_subjects: optional number of *training* subjects held out per fold for a validation
        curve; with ``select_epoch_on_val`` the weights of the best validation UAR are kept.
    classes: class names in label order (set by :func:`mpt_utils.run.resolve_run` from the class scheme).
    seed, device, precision: see :mod:`mpt_utils.runtime.devices`.
    threads: CPU threads for the tensor operations of a fold (None: torch's default on the machine). The bits of a
        fold can depend on it, so every executor (in-process, local workers, SLURM tasks) uses this value.
    max_folds: run only the first folds (None: every subject).
    label: the run's caption (profile, data, backbone), written on every table and summary.
    """

    variant: str = "mpt"
    two_branch_size: str = "paper"
    action_weights: str | None = None
    backbone: str = "vit_base_patch16_224.augreg_in21k"
    pretrained: bool = True
    weights: str | None = None
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    image_size: int = 224
    num_frames: int = 16
    num_prompts: int = 5
    reduction: int = 8
    token_average: bool = False
    generator_channels: int = 128
    generator_patch: int = 16
    alpha: float = 20.0
    fs: float | str = 30.0
    order: int = 1
    low_hz: float = 0.4
    high_hz: float = 4.0
    levels: int | None = None
    lambda_c: float | None = None
    skip_finest: bool = False
    color: str = "rgb"
    chroma_attenuation: float = 1.0
    dynamic_scaling: str = "minmax"
    epochs: int = 20
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 0.0
    class_weights: str = "none"
    val_subjects: int = 0
    select_epoch_on_val: bool = False
    classes: tuple[str, ...] | None = None
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    precision: str = "auto"
    max_folds: int | None = None
    label: str = ""

    def __post_init__(self) -> None:
        """Check every setting where it is made: a wrong value fails here, naming the setting and its choices,
        not inside the first fold (:class:`ConfigError`). Numbers are normalised (``numpy.int64(3)`` -> ``3``)."""
        ints = {"image_size": 8, "num_frames": 2, "num_prompts": 0, "reduction": 1, "generator_channels": 1,
                "generator_patch": 1, "order": 1, "epochs": 1, "batch_size": 1, "val_subjects": 0, "seed": 0}
        optional_ints = {"levels": 1, "threads": 1, "max_folds": 1}
        reals = {"alpha": (0.0, False), "low_hz": (0.0, True), "high_hz": (0.0, True), "lr": (0.0, True),
                 "weight_decay": (0.0, False), "chroma_attenuation": (0.0, True)}
        normalised: dict[str, Any] = {}
        for name, low in ints.items():
            normalised[name] = _check_int(name, getattr(self, name), low)
        for name, low in optional_ints.items():
            normalised[name] = _check_int(name, getattr(self, name), low, optional=True)
        for name, (low, strict) in reals.items():
            normalised[name] = _check_real(name, getattr(self, name), low, strict)
        normalised["lambda_c"] = _check_real("lambda_c", self.lambda_c, 0.0, strict=True, optional=True)
        if self.fs != "per_clip":
            normalised["fs"] = _check_real("fs", self.fs, 0.0, strict=True)
        for name, value in normalised.items():
            object.__setattr__(self, name, value)
        if self.low_hz >= self.high_hz:
            raise ConfigError(f"low_hz ({self.low_hz:g} Hz) must be below high_hz ({self.high_hz:g} Hz)", "low_hz")
        if self.fs != "per_clip" and self.high_hz >= self.fs / 2:
            raise ConfigError(f"high_hz ({self.high_hz:g} Hz) must be below the Nyquist frequency fs/2 "
                              f"({self.fs / 2:g} Hz): lower high_hz or raise fs", "fs")
        for name in ("pretrained", "token_average", "skip_finest", "select_epoch_on_val"):
            _check_type(name, getattr(self, name), bool, "True or False")
        for name in ("variant", "backbone"):
            _check_type(name, getattr(self, name), str, "a name")
            if not getattr(self, name):
                raise ConfigError(f"{name} must be a name, got an empty string", name)
        _check_type("weights", self.weights, (str, type(None)), "a checkpoint's path or None")
        _check_type("action_weights", self.action_weights, (str, type(None)), "a checkpoint's path or None")
        _check_type("two_branch_size", self.two_branch_size, str, "a size's name")
        _check_type("backbone_kwargs", self.backbone_kwargs, dict, "a dict of keyword arguments")
        _check_type("label", self.label, str, "a caption (text)")
        _check_choice("color", self.color, COLORS)
        _check_choice("dynamic_scaling", self.dynamic_scaling, DYNAMIC_SCALINGS)
        _check_choice("class_weights", self.class_weights, CLASS_WEIGHTS)
        _check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.device, str) or not DEVICE_PATTERN.match(self.device):
            raise ConfigError(f"device must be auto, cpu, mps, cuda or cuda:<index>, got {self.device!r}", "device")
        if self.classes is not None and (not isinstance(self.classes, tuple)
                                         or not all(isinstance(c, str) and c for c in self.classes)):
            raise ConfigError(f"classes must be a tuple of class names or None, got {self.classes!r}", "classes")
        if self.select_epoch_on_val and self.val_subjects == 0:
            raise ConfigError("select_epoch_on_val needs a validation split: set val_subjects >= 1", "val_subjects")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied; ``None`` values are skipped, so unset optional command-line or
        papermill arguments fall through to the current value (use ``dataclasses.replace`` to set a None).

        An unknown name raises a :class:`TypeError` that lists the known fields.
        """
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            raise TypeError(f"unknown setting(s) {unknown}; TrainConfig has {list(field_names())}")
        changes = {k: v for k, v in changes.items() if v is not None}
        if "classes" in changes:
            changes["classes"] = tuple(changes["classes"])
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["classes"] = list(self.classes) if self.classes is not None else None
        return d

    def result_fields(self) -> dict[str, Any]:
        """The fields that must match for two runs to share a results folder."""
        return {k: v for k, v in self.as_dict().items() if k not in NON_RESULT_FIELDS}

    def model_kwargs(self, num_classes: int) -> dict[str, Any]:
        """Keyword arguments for :func:`mpt_utils.model.build_variant`."""
        return dict(
            backbone=self.backbone,
            num_classes=num_classes,
            num_prompts=self.num_prompts,
            reduction=self.reduction,
            pretrained=self.pretrained,
            weights=self.weights,
            img_size=self.image_size,
            num_frames=self.num_frames,
            token_average=self.token_average,
            generator_channels=self.generator_channels,
            generator_patch=self.generator_patch,
            backbone_kwargs=self.backbone_kwargs,
        )

    def magnify_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`mpt_utils.motion.magnify`."""
        return dict(alpha=self.alpha, low_hz=self.low_hz, high_hz=self.high_hz, fs=self.fs, order=self.order,
                    levels=self.levels, lambda_c=self.lambda_c, skip_finest=self.skip_finest, color=self.color,
                    chroma_attenuation=self.chroma_attenuation)


def field_names() -> tuple[str, ...]:
    """The names of :class:`TrainConfig`'s fields, in order."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


#: The paper's configuration: every default of the package is read from here.
PAPER = TrainConfig()
