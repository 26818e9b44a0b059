"""A check of a dataset's magnification: how much of each magnified clip is expression, how much nuisance.

:func:`magnification_table` needs the ground truth only a synthetic set has: each clip's clean twin, the same
face and expression without the nuisances (:func:`~mpt_utils.data.clean_twin`). The linear probes that check
whether the class is in single frames or in the motion fit models, and live with the other fits
(:mod:`mpt_utils.train.probe`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..motion import magnification_energy
from .clips import read_clip
from .samples import Sample

#: The magnification settings that notebook 03 and ``benchmarks/bench_magnification.py`` score with
#: :func:`magnification_table`: the paper's alpha and its neighbours, then at alpha 20 each remedy of Wu et al.'s
#: code (MIT's spatial cut-off lambda_c, the finest level left alone, chroma amplified ten times less) and all three.
MAGNIFICATION_SETTINGS: dict[str, dict[str, Any]] = {
    "alpha 0 (as recorded)": {"alpha": 0.0},
    "alpha 10": {"alpha": 10.0},
    "alpha 20 (paper)": {"alpha": 20.0},
    "alpha 30": {"alpha": 30.0},
    "alpha 50": {"alpha": 50.0},
    "alpha 20, lambda_c 16 px": {"alpha": 20.0, "lambda_c": 16.0},
    "alpha 20, finest level skipped": {"alpha": 20.0, "skip_finest": True},
    "alpha 20, YIQ, chroma x0.1": {"alpha": 20.0, "color": "yiq", "chroma_attenuation": 0.1},
    "alpha 20, all three": {"alpha": 20.0, "lambda_c": 16.0, "skip_finest": True, "color": "yiq",
                            "chroma_attenuation": 0.1},
}


def magnification_table(samples: Sequence[Sample], clean_samples: Sequence[Sample],
                        settings: Mapping[str, Mapping[str, Any]], size: int = 112, num_frames: int = 16,
                        progress: bool = True):
    """How much of each magnified clip is expression and how much nuisance, for several magnification settings.

    samples, clean_samples: a synthetic set and its :func:`~mpt_utils.data.clean_twin` (paired by clip key).
    settings: a name per setting, and its :func:`~mpt_utils.motion.magnify` arguments (``{"alpha": 0}``: none).
    size, num_frames: each clip is read as the model reads it, ``num_frames`` frames of ``size`` pixels.

    Returns a pandas table, one row per setting: the mean expression and nuisance energy in grey levels RMS
    (:func:`~mpt_utils.motion.magnification_energy`), the pooled expression share (mean expression over mean
    expression plus mean nuisance) and the median of the clips' shares.
    """
    import pandas as pd

    from ..runtime import progress_bar

    twins = {s.key: s for s in clean_samples}
    missing = [s.key for s in samples if s.key not in twins]
    if missing:
        raise ValueError(f"{len(missing)} clips have no clean twin (first: {missing[0]}); render the twin of this "
                         "very set with clean_twin(root)")
    if not settings:
        raise ValueError("give at least one magnification setting, e.g. {'none': {'alpha': 0}}")
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    for s in progress_bar(samples, desc="magnification energy", disable=not progress):
        clip, clean = read_clip(s, num_frames, size), read_clip(twins[s.key], num_frames, size)
        for name, kwargs in settings.items():
            scores[name].append(magnification_energy(clip, clean, **kwargs))
    rows = []
    for name, values in scores.items():
        expression = float(np.mean([v["expression"] for v in values]))
        nuisance = float(np.mean([v["nuisance"] for v in values]))
        rows.append({"setting": name, "expression (grey levels)": expression, "nuisance (grey levels)": nuisance,
                     "expression share": expression / (expression + nuisance),
                     "median clip share": float(np.nanmedian([v["expression_share"] for v in values]))})
    return pd.DataFrame(rows).set_index("setting")
