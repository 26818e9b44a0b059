"""The three run profiles: each a named set of :class:`~mpt_utils.config.TrainConfig` overrides.

============ =================================================================================
``ci``       tiny settings for the automated tests: seconds per notebook on 2 CPU cores
``quick``    the default everywhere: offline, CPU, synthetic data, a small ViT pre-trained on
             synthetic facial actions (made once, :mod:`mpt_utils.train.pretrain`) at low
             resolution on a few subjects; minutes for all notebooks
``paper``    the paper's configuration, i.e. no override at all: ViT-B/16 (ImageNet-21k), 224 px,
             T=16, K=5, r=8, alpha=20, full LOSO, meant for a GPU; opt-in
============ =================================================================================

A profile holds only what differs from the paper (``settings``, applied to ``TrainConfig``) and the
sizes of the data it generates: the synthetic evaluation set and the synthetic pre-training corpus.
:func:`mpt_utils.run.resolve_run` turns a profile (and the user's inputs) into a run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .config import TrainConfig, field_names


@dataclass(frozen=True)
class Profile:
    """A named set of overrides of the paper's settings, plus the sizes of the data it generates.

    Attributes
    ----------
    name: ``ci``, ``quick`` or ``paper``.
    purpose: one line saying what the profile is for.
    settings: :class:`~mpt_utils.config.TrainConfig` fields that differ from the paper's defaults.
    synthetic_subjects, synthetic_clips: size of the generated evaluation set (clips None: CASME II's 255).
    pretrain_clips, pretrain_epochs: the synthetic corpus the backbone is pre-trained on when no weights file is
        given (0 clips: no synthetic pre-training, the weights come from the hub or a file); see
        :mod:`mpt_utils.train.pretrain`.
    pretrain_settings: the rest of that pre-training (:class:`~mpt_utils.train.PretrainConfig` fields: objective,
        corpus, schedule) where it differs from the defaults.
    action_pretrain_settings: how the two-branch network's action branch is pre-trained on the same corpus
        (macro-to-micro, :meth:`~mpt_utils.train.PretrainConfig.for_action_branch`) where it differs from
        ``pretrain_settings``; a profile without a synthetic corpus (paper) uses the quick profile's
        (:func:`~mpt_utils.train.action_pretraining`).
    """

    name: str
    purpose: str
    settings: dict[str, Any] = field(default_factory=dict)
    synthetic_subjects: int = 26
    synthetic_clips: int | None = None
    pretrain_clips: int = 0
    pretrain_epochs: int = 15
    pretrain_settings: dict[str, Any] = field(default_factory=dict)
    action_pretrain_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        TrainConfig().replace(**self.settings)  # an unknown setting fails here, when the profile is defined

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The paper's :class:`TrainConfig` with this profile's settings, then ``overrides`` (None skipped)."""
        return TrainConfig().replace(**self.settings).replace(**overrides)

    @property
    def synthetic_backbone(self) -> bool:
        """True when the profile pre-trains its backbone on synthetic facial actions (unless weights are given)."""
        return self.pretrain_clips > 0

    def replace(self, **changes: Any) -> Profile:
        """A copy with some fields changed (``settings`` is merged, not replaced)."""
        if "settings" in changes:
            changes["settings"] = {**self.settings, **changes["settings"]}
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "ci": Profile(
        name="ci",
        purpose="tiny: the automated tests",
        settings=dict(
            backbone="vit_tiny_patch16_224", backbone_kwargs={"depth": 2}, image_size=64, num_frames=8,
            num_prompts=3, lr=1e-3, class_weights="balanced", epochs=2, batch_size=8, max_folds=2,
            device="cpu", precision="fp32", threads=1, two_branch_size="quick",
        ),
        synthetic_subjects=4,
        synthetic_clips=24,
        pretrain_clips=40,
        pretrain_epochs=2,
    ),
    "quick": Profile(
        name="quick",
        purpose="the default: offline, CPU, synthetic data, minutes",
        # Six of ViT-Tiny's twelve blocks at 112 px, with the backbone that ships with the package (below). The
        # adapters and prompts of a small ViT need a larger step than the paper's 3e-4 (tuned for ViT-B/16) within
        # a CPU budget (earlier synthetic world, 8 subjects: lr 3e-4 gave MPT F1 0.29, 1e-3 0.32), and balanced
        # class weights keep the majority class ("others") from winning by default. Measured figures: README.
        settings=dict(
            backbone="vit_tiny_patch16_224", backbone_kwargs={"depth": 6}, image_size=112, lr=1e-3, epochs=10,
            class_weights="balanced", device="cpu", precision="fp32", two_branch_size="quick",
        ),
        synthetic_subjects=12,
        synthetic_clips=144,
        # the backbone ships with the package (mpt_utils/weights/, rebuilt by python -m mpt_utils.train.shipped):
        # macro-to-micro future prediction (MA2MI) on 960 synthetic macro-expression clips of 24 other people,
        # reading no label; chosen on the development sets (benchmarks/bench_backbones.py)
        pretrain_clips=960,
        pretrain_epochs=30,
        pretrain_settings=dict(objective="ma2mi", target="pixels", seed=202, lr=2e-4, batch_size=64),
        # the two-branch network's action branch, pre-trained on the same corpus (also shipped): lr 1e-3, chosen by
        # its prediction loss on the corpus' 4 held-out people (no label, no evaluation subject read): 0.870 against
        # 0.895 at the ViT's 2e-4, where copying the early difference scores 0.910
        action_pretrain_settings=dict(lr=1e-3),
    ),
    "paper": Profile(name="paper", purpose="the paper's settings: ViT-B/16 ImageNet-21k, full LOSO, a GPU"),
}


def get_profile(name: str) -> Profile:
    """Look a profile up by name.

    >>> get_profile("quick").train_config().image_size
    112
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def profiles_table():
    """Every profile's settings side by side (a pandas table of text, one column per profile).

    Rows are the settings any profile changes and the generated-data sizes; a profile that keeps the
    paper's value shows it, so integers stay integers and nothing reads ``NaN``.
    """
    import pandas as pd

    changed = sorted({k for p in PROFILES.values() for k in p.settings}, key=field_names().index)
    sizes = ("synthetic_subjects", "synthetic_clips", "pretrain_clips", "pretrain_epochs")
    columns = {}
    for p in PROFILES.values():
        config = p.train_config()
        values = {k: getattr(config, k) for k in changed}
        values.update({k: getattr(p, k) for k in sizes})
        values["pretrain_objective"] = p.pretrain_settings.get("objective", "au") if p.synthetic_backbone else "-"
        columns[p.name] = {k: ("CASME II's 255" if k == "synthetic_clips" and v is None else str(v))
                           for k, v in values.items()}
    return pd.DataFrame(columns)
