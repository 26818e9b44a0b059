"""The synthetic world is as hard as CASME II for a linear probe, for any reasonable probe (slow: two CASME II-sized
sets, about 1.5 minutes). Targets from the issue "a synthetic world that can test MPT"; the figures go in the README
and notebook 01 (``python benchmarks/bench_synthetic.py``)."""

from __future__ import annotations

import warnings

import pytest

from mpt_utils.data import load_dataset, make_synthetic
from mpt_utils.train import pixel_baselines, probe_ranges

GRIDS, STRENGTHS = [16, 32], [0.01, 1.0]


def _ranges(tmp_path, preset, subjects=26):
    root = make_synthetic(tmp_path / preset, n_subjects=subjects, seed=0, preset=preset, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = load_dataset("synthetic", root)
    return probe_ranges(pixel_baselines(samples, grid=GRIDS, C=STRENGTHS, n_jobs=2))


@pytest.mark.slow
def test_default_preset_is_as_hard_as_casme2_for_a_linear_probe(tmp_path):
    r = _ranges(tmp_path, "default")
    chance = 0.2
    assert abs(r.loc["apex frame", "min"] - chance) <= 0.05 and abs(r.loc["apex frame", "max"] - chance) <= 0.05, r
    for motion in ("onset-to-apex difference", "dynamic image"):
        assert 0.35 <= r.loc[motion, "min"] and r.loc[motion, "max"] <= 0.55, r


@pytest.mark.slow
def test_easy_preset_is_easy(tmp_path):
    r = _ranges(tmp_path, "easy")
    assert r.loc["onset-to-apex difference", "min"] >= 0.8, r
