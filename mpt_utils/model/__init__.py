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
from .factory import ALL_VARIANTS, action_weights_file, build_model, check_variant, input_names, trained_parameters
from .mpt import MPT, VARIANTS, VPT_PROMPTS, Variant, build_variant
from .prompts import MotionPromptGenerator
from .two_branch import TWO_BRANCH_SIZES, TWO_BRANCH_VARIANTS, TwoBranchNet, TwoBranchSize, build_two_branch

__all__ = [
    "ALL_VARIANTS",
    "MPT",
    "TWO_BRANCH_SIZES",
    "TWO_BRANCH_VARIANTS",
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
    "action_weights_file",
    "build_model",
    "build_two_branch",
    "build_variant",
    "check_variant",
    "checkpoint_file",
    "count_macs",
    "count_parameters",
    "create_backbone",
    "input_names",
    "normalisation",
    "require_hub_weights",
    "trained_parameters",
    "unfused_attention",
    "variant_table",
    "weights_help",
]
