"""The MPT model on timm: prompts, adapters, the wrapper with its variants, and accounting."""

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

__all__ = [
    "MPT",
    "VARIANTS",
    "VPT_PROMPTS",
    "AdaptedBlock",
    "Bottleneck",
    "GroupAdapter",
    "MotionPromptGenerator",
    "PretrainedWeightsError",
    "Variant",
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
