"""The MPT model on timm: prompts, adapters, the wrapper with its variants, and accounting; beside it, MA2MI's
two-branch network (the competing method)."""

from .accounting import count_macs, count_parameters, unfused_attention, variant_table
from .adapters import AdaptedBlock, Bottleneck, GroupAdapter
from .backbone import (
    PretrainedWeightsError,
    checkpoint_file,
    create_backbone,
    normalisation,
    require_hub_weights,
    weights_help,
)
from .mpt import MPT, VARIANTS, VPT_PROMPTS, Variant, build_variant
from .prompts import MotionPromptGenerator
from .two_branch import TWO_BRANCH_SIZES, TwoBranchNet, TwoBranchSize, build_two_branch

__all__ = [
    "MPT",
    "TWO_BRANCH_SIZES",
    "VARIANTS",
    "VPT_PROMPTS",
    "AdaptedBlock",
    "Bottleneck",
    "GroupAdapter",
    "MotionPromptGenerator",
    "TwoBranchNet",
    "TwoBranchSize",
    "PretrainedWeightsError",
    "Variant",
    "build_two_branch",
    "build_variant",
    "checkpoint_file",
    "count_macs",
    "count_parameters",
    "create_backbone",
    "normalisation",
    "require_hub_weights",
    "unfused_attention",
    "variant_table",
    "weights_help",
]
