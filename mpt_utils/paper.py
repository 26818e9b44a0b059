"""The paper's published figures, each typed once: the main tables, efficiency and every ablation row.

Everything that shows a paper figure beside ours (the command line's tables, notebooks 05 and 06, the
variant table) reads it from here. Accuracy and F1 are percentages; the ablations (Tables VI-XI,
Fig. 5) and the efficiency comparison (Table V) were run on SMIC-HS.

The same configuration appears in several tables (MPT itself is the best row of Tables V-XI and
Fig. 5; "group adapter only" is a row of Tables VI and VII): each is one constant below, and the
tables refer to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One published result. ``None``: the paper does not give that number.

    acc, f1: LOSO accuracy and F1-score in % (the paper's eqs. 18-20).
    params_m: tunable parameters in millions (#Tparas); gmacs: the paper's "GFLOPs" (multiply-accumulates).
    source: where it is printed.
    """

    acc: float | None
    f1: float | None
    params_m: float | None = None
    gmacs: float | None = None
    source: str = ""


# --- Tables I-III: MPT against the state of the art, LOSO ------------------------------------------

MAIN: dict[str, Published] = {
    "casme2": Published(87.85, 86.04, source="Table I (CASME II, 5 classes)"),
    "samm": Published(87.50, 85.04, source="Table II (SAMM, 5 classes)"),
    "smic": Published(86.59, 86.01, params_m=5.5, gmacs=18.7, source="Table III (SMIC-HS, 3 classes); Table V"),
}

#: MPT on SMIC-HS: the reference row of every ablation (Tables V-XI, Fig. 5).
MPT_SMIC = MAIN["smic"]

# --- Tables VI-VIII: learning strategies, prompt types, adapter types (SMIC-HS) ---------------------
#: Published results per model variant (the names of :data:`mpt_utils.model.VARIANTS`).
VARIANTS: dict[str, Published] = {
    "mpt": MPT_SMIC,
    "no_pretraining": Published(73.17, 72.35, params_m=86.4, source="Table VI"),
    "full_finetune": Published(77.44, 76.65, params_m=86.4, source="Table VI"),
    "head_only": Published(71.95, 70.27, params_m=0.003, source="Table VI"),
    "motion_prompts_only": Published(82.92, 82.33, params_m=0.2, source="Tables VI, VIII"),
    "group_adapter_only": Published(79.27, 78.43, params_m=3.5, source="Tables VI, VII"),
    "vpt_shallow": Published(81.10, 80.84, params_m=5.5, source="Table VII"),
    "vpt_deep": Published(82.32, 81.79, params_m=5.8, source="Table VII"),
    "primitive_adapter": Published(84.15, 83.56, params_m=2.0, source="Table VIII"),
}

# --- Tables IX-XI and Fig. 5: backbones and hyper-parameters (SMIC-HS) -------------------------------

BACKBONES: dict[str, Published] = {
    "vit_base_patch16_224.augreg_in21k": MPT_SMIC,
    "vit_base_patch32_224.augreg_in21k": Published(84.76, 83.95, source="Table IX"),
    "vit_base_patch16_clip_224.openai": Published(85.37, 84.64, source="Table IX"),
    "vit_base_patch32_clip_224.openai": Published(83.54, 82.56, source="Table IX"),
}

ALPHA: dict[float, Published] = {
    0.0: Published(81.10, 80.54, source="Table X"),
    10.0: Published(85.37, 84.79, source="Table X"),
    20.0: MPT_SMIC,
    30.0: Published(81.70, 81.44, source="Table X"),
    50.0: Published(78.05, 77.56, source="Table X"),
}

REDUCTION: dict[int, Published] = {
    4: Published(85.98, 85.32, source="Table XI"),
    8: MPT_SMIC,
    12: Published(84.76, 84.05, source="Table XI"),
}

#: Fig. 5 plots K = 0, 1, 3, 7 without printing their values; only K = 5 (MPT) has numbers.
NUM_PROMPTS: dict[int, Published] = {5: MPT_SMIC}

