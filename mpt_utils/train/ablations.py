"""The paper's ablations (Tables VI-XI, Fig. 5) as lists of config changes with the paper's figures.

Every row is a full LOSO run of the same protocol; only the named settings change. The paper ran its
ablations on SMIC-HS, so its figures here are SMIC's (accuracy / F1, %).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AblationRow:
    """One row: a name, the TrainConfig changes, and the paper's SMIC figures (None: not given)."""

    name: str
    changes: dict[str, Any] = field(default_factory=dict)
    paper_acc: float | None = None
    paper_f1: float | None = None

    @property
    def folder(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)


@dataclass(frozen=True)
class Ablation:
    title: str
    rows: tuple[AblationRow, ...]


ABLATIONS: dict[str, Ablation] = {
    "learning": Ablation("Table VI: learning strategies", (
        AblationRow("w/o pretraining", {"variant": "no_pretraining"}, 73.17, 72.35),
        AblationRow("full fine-tuning", {"variant": "full_finetune"}, 77.44, 76.65),
        AblationRow("partial fine-tuning (head only)", {"variant": "head_only"}, 71.95, 70.27),
        AblationRow("motion prompt", {"variant": "motion_prompts_only"}, 82.92, 82.33),
        AblationRow("group adapter", {"variant": "group_adapter_only"}, 79.27, 78.43),
        AblationRow("MPT", {"variant": "mpt"}, 86.59, 86.01),
    )),
    "prompts": Ablation("Table VII: prompt types", (
        AblationRow("w/o prompt", {"variant": "group_adapter_only"}, 79.27, 78.43),
        AblationRow("VPT-shallow", {"variant": "vpt_shallow"}, 81.10, 80.84),
        AblationRow("VPT-deep", {"variant": "vpt_deep"}, 82.32, 81.79),
        AblationRow("MPT", {"variant": "mpt"}, 86.59, 86.01),
    )),
    "adapters": Ablation("Table VIII: adapter types", (
        AblationRow("MPT w/o adapter", {"variant": "motion_prompts_only"}, 82.92, 82.33),
        AblationRow("primitive adapter", {"variant": "primitive_adapter"}, 84.15, 83.56),
        AblationRow("MPT (group adapter)", {"variant": "mpt"}, 86.59, 86.01),
    )),
    "backbones": Ablation("Table IX: backbones", (
        AblationRow("ViT-B/16", {"backbone": "vit_base_patch16_224.augreg_in21k"}, 86.59, 86.01),
        AblationRow("ViT-B/32", {"backbone": "vit_base_patch32_224.augreg_in21k"}, 84.76, 83.95),
        AblationRow("CLIP-ViT-B/16", {"backbone": "vit_base_patch16_clip_224.openai"}, 85.37, 84.64),
        AblationRow("CLIP-ViT-B/32", {"backbone": "vit_base_patch32_clip_224.openai"}, 83.54, 82.56),
    )),
    "alpha": Ablation("Table X: magnification factor alpha", tuple(
        AblationRow(f"alpha={a}", {"alpha": float(a)}, acc, f1)
        for a, acc, f1 in [(0, 81.10, 80.54), (10, 85.37, 84.79), (20, 86.59, 86.01), (30, 81.70, 81.44),
                           (50, 78.05, 77.56)]
    )),
    "reduction": Ablation("Table XI: adapter reduction r", tuple(
        AblationRow(f"r={r}", {"reduction": r}, acc, f1)
        for r, acc, f1 in [(4, 85.98, 85.32), (8, 86.59, 86.01), (12, 84.76, 84.05)]
    )),
    "num_prompts": Ablation("Fig. 5: number of motion prompts K (the paper plots K != 5 without numbers)", tuple(
        AblationRow(f"K={k}", {"num_prompts": k}, *((86.59, 86.01) if k == 5 else (None, None)))
        for k in (0, 1, 3, 5, 7)
    )),
    "group_average": Ablation("Ours: the group adapter's token-average reading (no paper figures)", (
        AblationRow("per-token branches (default)", {"variant": "mpt"}),
        AblationRow("token average", {"variant": "token_average"}),
    )),
}
