"""LOSO training: the config, metrics, cached inputs, the fold loop and the paper-table CLI.

Run ``python -m mpt_utils.train --help`` for the command line.
"""

from .config import TrainConfig
from .inputs import ModelInputs, default_cache_dir, motion_inputs, prepare_inputs
from .loso import (
    ConfigMismatchError,
    LOSOResult,
    collect_results,
    load_result,
    load_run_config,
    predict,
    resolve_classes,
    run_loso,
    train_fold,
)
from .metrics import chance_level, compute_metrics
from .pretrain import (
    PretrainConfig,
    backbone_weights,
    pretrain_backbone,
    pretraining_report,
    synthetic_backbone_weights,
)

__all__ = [
    "ConfigMismatchError",
    "LOSOResult",
    "ModelInputs",
    "PretrainConfig",
    "TrainConfig",
    "backbone_weights",
    "chance_level",
    "collect_results",
    "compute_metrics",
    "default_cache_dir",
    "load_result",
    "load_run_config",
    "motion_inputs",
    "predict",
    "pretrain_backbone",
    "pretraining_report",
    "prepare_inputs",
    "resolve_classes",
    "run_loso",
    "synthetic_backbone_weights",
    "train_fold",
]
