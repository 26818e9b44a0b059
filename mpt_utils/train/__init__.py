"""Every fit: cached inputs, the fold loop and its run folder, the linear probe, the synthetic backbone pre-training,
the ablation rows.

The command line is ``python -m mpt_utils.train`` (see :mod:`mpt_utils.cli`); a run is put together by
:func:`mpt_utils.run.resolve_run`. ``TrainConfig`` and the metrics live at the bottom of the package
(:mod:`mpt_utils.config`, :mod:`mpt_utils.metrics`) and are re-exported here.
"""

from ..config import TrainConfig
from ..metrics import bootstrap_interval, chance_level, compute_metrics, mean_interval
from . import claims
from .ablations import ABLATIONS, Ablation, AblationRow
from .inputs import ModelInputs, default_cache_dir, motion_inputs, prepare_inputs, preprocessing_key
from .loso import (
    ConfigMismatchError,
    FittedFold,
    FoldContext,
    LOSOResult,
    NoFinishedFoldsError,
    collect_results,
    fit_fold,
    fold_done,
    fold_of,
    folds_to_run,
    learning_rate,
    load_result,
    load_run_config,
    open_run,
    predict,
    resolve_classes,
    run_folds,
    run_loso,
    run_task,
    run_template,
    train_fold,
)
from .pretrain import (
    BACKBONE_NOTES,
    PretrainConfig,
    action_pretraining,
    backbone_note,
    backbone_source,
    ensure_pretrained,
    pretrain_backbone,
    pretraining_figure,
    pretraining_report,
    synthetic_checkpoint,
)
from .probe import (
    PROBE_INPUTS,
    dynamic_scaling_table,
    frozen_feature_probe,
    load_probe,
    pixel_baselines,
    probe_done,
    probe_model,
    probe_predictions,
    probe_ranges,
    run_probe,
)
from .run_folder import RunFolder, fold_dir_name

#: Exported from :mod:`.shipped` on first use, so that ``python -m mpt_utils.train.shipped`` (the rebuild command)
#: finds that module not imported yet (Python's runpy warns about a module imported twice).
_FROM_SHIPPED = ("backbone_table", "build_shipped", "card_problems", "profile_pretraining", "tuned_table")


def __getattr__(name: str):
    if name in _FROM_SHIPPED:
        from . import shipped

        return getattr(shipped, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    *_FROM_SHIPPED,
    "ABLATIONS",
    "Ablation",
    "AblationRow",
    "BACKBONE_NOTES",
    "ConfigMismatchError",
    "FittedFold",
    "FoldContext",
    "LOSOResult",
    "ModelInputs",
    "NoFinishedFoldsError",
    "PROBE_INPUTS",
    "PretrainConfig",
    "RunFolder",
    "TrainConfig",
    "action_pretraining",
    "backbone_note",
    "backbone_source",
    "bootstrap_interval",
    "chance_level",
    "claims",
    "collect_results",
    "compute_metrics",
    "default_cache_dir",
    "dynamic_scaling_table",
    "ensure_pretrained",
    "fit_fold",
    "fold_dir_name",
    "fold_done",
    "fold_of",
    "folds_to_run",
    "frozen_feature_probe",
    "learning_rate",
    "load_probe",
    "load_result",
    "load_run_config",
    "mean_interval",
    "motion_inputs",
    "open_run",
    "pixel_baselines",
    "predict",
    "prepare_inputs",
    "preprocessing_key",
    "pretrain_backbone",
    "pretraining_figure",
    "pretraining_report",
    "probe_done",
    "probe_model",
    "probe_predictions",
    "probe_ranges",
    "resolve_classes",
    "run_folds",
    "run_loso",
    "run_probe",
    "run_task",
    "run_template",
    "synthetic_checkpoint",
    "train_fold",
]
