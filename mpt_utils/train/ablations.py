"""The paper's ablations (Tables VI-XI, Fig. 5) as lists of config changes beside the paper's figures.

Every row is a full LOSO run of the same protocol; only the named settings change. The paper ran its
ablations on SMIC-HS; its figures come from :mod:`mpt_utils.paper`, where each is typed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import paper
from ..paper import Published

_NONE = Published(None, None)


@dataclass(frozen=True)
class AblationRow:
    """One row: the paper's label, the :class:`~mpt_utils.config.TrainConfig` changes, the paper's result; or,
    with ``probe`` (one of :data:`~mpt_utils.train.PROBE_INPUTS`), a linear probe on that input instead of a model
    (:func:`~mpt_utils.train.probe.run_probe`), on the same held-out subjects."""

    name: str
    changes: dict[str, Any] = field(default_factory=dict)
    published: Published = _NONE
    probe: str | None = None

    @property
    def folder(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)


@dataclass(frozen=True)
class Ablation:
    title: str
    rows: tuple[AblationRow, ...]


def _variant(name: str, variant: str) -> AblationRow:
    return AblationRow(name, {"variant": variant}, paper.VARIANTS[variant])


ABLATIONS: dict[str, Ablation] = {
    "learning": Ablation("Table VI: learning strategies", (
        _variant("w/o pretraining", "no_pretraining"),
        _variant("full fine-tuning", "full_finetune"),
        _variant("partial fine-tuning (head only)", "head_only"),
        _variant("motion prompt", "motion_prompts_only"),
        _variant("group adapter", "group_adapter_only"),
        _variant("MPT", "mpt"),
    )),
    "prompts": Ablation("Table VII: prompt types", (
        _variant("w/o prompt", "group_adapter_only"),
        _variant("VPT-shallow", "vpt_shallow"),
        _variant("VPT-deep", "vpt_deep"),
        _variant("MPT", "mpt"),
    )),
    "adapters": Ablation("Table VIII: adapter types", (
        _variant("MPT w/o adapter", "motion_prompts_only"),
        _variant("primitive adapter", "primitive_adapter"),
        _variant("MPT (group adapter)", "mpt"),
    )),
    "backbones": Ablation("Table IX: backbones", tuple(
        AblationRow(label, {"backbone": name}, paper.BACKBONES[name])
        for label, name in [("ViT-B/16", "vit_base_patch16_224.augreg_in21k"),
                            ("ViT-B/32", "vit_base_patch32_224.augreg_in21k"),
                            ("CLIP-ViT-B/16", "vit_base_patch16_clip_224.openai"),
                            ("CLIP-ViT-B/32", "vit_base_patch32_clip_224.openai")]
    )),
    "alpha": Ablation("Table X: magnification factor alpha", tuple(
        AblationRow(f"alpha={a:g}", {"alpha": a}, published) for a, published in paper.ALPHA.items()
    )),
    "reduction": Ablation("Table XI: adapter reduction r", tuple(
        AblationRow(f"r={r}", {"reduction": r}, published) for r, published in paper.REDUCTION.items()
    )),
    "num_prompts": Ablation("Fig. 5: number of motion prompts K (the paper plots K != 5 without numbers)", tuple(
        AblationRow(f"K={k}", {"num_prompts": k}, paper.NUM_PROMPTS.get(k, _NONE)) for k in (0, 1, 3, 5, 7)
    )),
    "baselines": Ablation("Ours: linear probes on pixels and MA2MI's two-branch network beside MPT and its parts "
                          "(MPT rows: Table VI's figures)", (
        AblationRow("probe: apex frame", probe="apex frame"),
        AblationRow("probe: onset-to-apex difference", probe="onset-to-apex difference"),
        AblationRow("probe: dynamic image", probe="dynamic image"),
        _variant("head only", "head_only"),
        _variant("motion prompts only", "motion_prompts_only"),
        _variant("group adapter only", "group_adapter_only"),
        _variant("MPT", "mpt"),
        AblationRow("two-branch (from scratch)", {"variant": "two_branch"}),
        AblationRow("two-branch (MA2MI pre-trained)", {"variant": "two_branch_ma2mi"}),
    )),
    "group_average": Ablation("Ours: the group adapter's token-average reading (no paper figures)", (
        AblationRow("per-token branches (default)", {"variant": "mpt"}),
        AblationRow("token average", {"variant": "token_average"}),
    )),
}
