"""The one configuration object of a LOSO run, with the paper's defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..profiles import Profile

#: Fields that do not change what a run computes: a rerun may differ in them.
NON_RESULT_FIELDS = ("max_folds", "device", "label")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a LOSO run's results.

    Attributes
    ----------
    variant: a name from :data:`mpt_utils.model.VARIANTS` (``"mpt"``, ``"head_only"`` ...).
    backbone, pretrained, weights, backbone_kwargs: the frozen ViT (see ``create_backbone``).
    image_size, num_frames: frame side in pixels and T.
    num_prompts, reduction, token_average: K, r and the adapter's token-average reading.
    alpha, fs, order, low_hz, high_hz, levels: Eulerian magnification (see ``magnify``).
    epochs: fixed number of epochs per fold, chosen in advance (never by the test subject).
    batch_size, lr, weight_decay: Adam (paper: 16, 3e-4, 0).
    class_weights: ``"none"`` (the paper's plain cross-entropy) or ``"balanced"``: each class weighted by
        ``n / (classes * n_class)`` over the fold's training samples, so a majority class ("others") cannot
        win by default. Computed from training subjects only.
    val_subjects: optional number of *training* subjects held out per fold for a validation
        curve; with ``select_epoch_on_val`` the weights of the best validation UAR are kept.
    classes: class names in label order (None: the dataset's own scheme).
    seed, device, precision: see :mod:`mpt_utils.runtime`.
    max_folds: run only the first folds (None: every subject).
    label: free text describing the run (profile and data), written on every figure.
    """

    variant: str = "mpt"
    backbone: str = "vit_base_patch16_224.augreg_in21k"
    pretrained: bool = True
    weights: str | None = None
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    image_size: int = 224
    num_frames: int = 16
    num_prompts: int = 5
    reduction: int = 8
    token_average: bool = False
    alpha: float = 20.0
    fs: float | str = 30.0
    order: int = 1
    low_hz: float = 0.4
    high_hz: float = 4.0
    levels: int | None = None
    epochs: int = 20
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 0.0
    class_weights: str = "none"
    val_subjects: int = 0
    select_epoch_on_val: bool = False
    classes: tuple[str, ...] | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    max_folds: int | None = None
    label: str = ""

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> TrainConfig:
        """The config a profile implies, with ``overrides`` (None values ignored).

        A profile with synthetic pre-training needs its checkpoint passed as ``weights`` (see
        :func:`~mpt_utils.train.pretrain.backbone_weights`); without it the hub would be asked for
        weights it does not have, so this raises instead.
        """
        needs_file = profile.synthetic_backbone and overrides.get("pretrained") is not False
        if needs_file and not overrides.get("weights"):
            raise ValueError(
                f"profile {profile.name!r} uses a backbone pre-trained on synthetic facial actions: pass "
                f"weights=backbone_weights(profile) (mpt_utils.train), a checkpoint of your own, or pretrained=False"
            )
        if overrides.get("weights") and overrides.get("pretrained") is None:
            overrides["pretrained"] = True  # a weights file means a pretrained backbone
        base = cls(
            backbone=profile.backbone,
            pretrained=profile.pretrained,
            backbone_kwargs=dict(profile.backbone_kwargs),
            image_size=profile.image_size,
            num_frames=profile.num_frames,
            num_prompts=profile.num_prompts,
            reduction=profile.reduction,
            alpha=profile.alpha,
            epochs=profile.epochs,
            batch_size=profile.batch_size,
            lr=profile.lr,
            class_weights=profile.class_weights,
            device=profile.device,
            precision=profile.precision,
            max_folds=profile.max_folds,
            label=f"profile {profile.name}",
        )
        return base.replace(**overrides)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied; ``None`` values are skipped, so unset optional command-line or
        papermill arguments fall through to the current value (use ``dataclasses.replace`` to set a None)."""
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
            backbone_kwargs=self.backbone_kwargs,
        )

    def magnify_kwargs(self) -> dict[str, Any]:
        return dict(alpha=self.alpha, low_hz=self.low_hz, high_hz=self.high_hz, fs=self.fs,
                    order=self.order, levels=self.levels)
