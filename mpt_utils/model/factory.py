"""One way to build the model of a run: MPT (each of its :data:`~.mpt.VARIANTS`) or MA2MI's two-branch network
(:data:`~.two_branch.TWO_BRANCH_VARIANTS`), both trained by the same fold machinery.

Every model the folds train answers the same calls: ``model(*inputs)`` with its :attr:`input_names` (MPT: the
dynamic image and the magnified clip; the two-branch network: the onset and apex frames), ``forward_features``,
``forward_head(..., pre_logits=True)`` for the feature a t-SNE draws, and ``trainable_state_dict`` for what a fold
saves.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file
from torch import nn

from ..config import TrainConfig
from .accounting import count_parameters
from .backbone import PretrainedWeightsError
from .mpt import MPT, VARIANTS, Variant, build_variant
from .two_branch import TWO_BRANCH_VARIANTS, TwoBranchNet, build_two_branch

#: Every variant a run can train, by name.
ALL_VARIANTS: dict[str, Variant] = {**VARIANTS, **TWO_BRANCH_VARIANTS}


def check_variant(name: str) -> Variant:
    """The :class:`~.mpt.Variant` called ``name``; an unknown name raises a ValueError listing the choices."""
    if name not in ALL_VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {sorted(ALL_VARIANTS)}")
    return ALL_VARIANTS[name]


def input_names(variant: str) -> tuple[str, ...]:
    """The inputs the model of ``variant`` reads, in order: its class's ``input_names`` (the two-branch network:
    ``("onset", "apex")``; MPT: ``("dynamic", "magnified")``)."""
    check_variant(variant)
    return (TwoBranchNet if variant in TWO_BRANCH_VARIANTS else MPT).input_names


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The untrained model of ``config.variant`` (seed the RNG first: its random weights come from it).

    ``"two_branch_ma2mi"`` loads its action branch from ``config.action_weights`` (a checkpoint made by
    :func:`mpt_utils.train.pretrain_backbone` for the action branch; :meth:`mpt_utils.run.Run.prepare_action_branch`
    makes it) and raises :class:`~.backbone.PretrainedWeightsError` when that file is missing.
    """
    check_variant(config.variant)
    if config.variant not in TWO_BRANCH_VARIANTS:
        return build_variant(config.variant, **config.model_kwargs(num_classes))
    model = build_two_branch(config.two_branch_size, num_classes, image_size=config.image_size)
    if config.variant == "two_branch_ma2mi":
        model.action.load_state_dict(load_file(action_weights_file(config)))
    return model


def action_weights_file(config: TrainConfig) -> Path:
    """``config.action_weights`` as an existing file; a clear error when none is set or it is not there yet."""
    if config.action_weights is None:
        raise PretrainedWeightsError(
            f"the variant {config.variant!r} needs a pre-trained action branch, and the run names none: runs of "
            "the ci and quick profiles set it (mpt_utils.run.resolve_run); otherwise pass action_weights")
    path = Path(config.action_weights).expanduser()
    if not path.is_file():
        raise PretrainedWeightsError(
            f"the pre-trained action branch {path} has not been made yet: call run.prepare_action_branch() "
            "(mpt_utils.run) first; it pre-trains the two-branch network's action branch once and reuses it")
    return path


def trained_parameters(config: TrainConfig, num_classes: int) -> int:
    """How many parameters a fold of ``config`` trains (MPT: its prompts, adapters and head; the two-branch
    network: all), counted on an unloaded copy."""
    unloaded = config.replace(pretrained=False) if config.variant in VARIANTS else config
    if config.variant == "two_branch_ma2mi":  # the pre-trained weights do not change the count
        unloaded = config.replace(variant="two_branch")
    return count_parameters(build_model(unloaded, num_classes))
