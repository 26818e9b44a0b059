"""The amplitude sweep: its sets, its rows on every amplitude, resuming, and its refusals before any work."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_casme2

from mpt_utils.cli import main
from mpt_utils.data import load_dataset
from mpt_utils.sweep import SWEEP_ROWS, run_amplitude_sweep, sweep_set, sweep_summary, sweep_verdict

ROWS = (SWEEP_ROWS[0], SWEEP_ROWS[-1])  # the probe and MPT


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    table = run_amplitude_sweep(out, "ci", amplitudes=(0.5, 4.0), seeds=(0,), rows=ROWS, subjects=3, clips=18,
                                epochs=1, progress=False)
    return out, table


def test_one_seed_gives_the_same_people_and_clips_at_every_amplitude_only_the_motion_differs(sweep):
    out, _ = sweep
    small, large = (load_dataset("synthetic", sweep_set(out, a, 0, 3, 18, progress=False)) for a in (0.5, 4.0))
    assert [(s.key, s.group, s.label) for s in small] == [(s.key, s.group, s.label) for s in large]
    # the expression, not the rest, grows: the clips' apex frames differ, more at the larger amplitude
    import numpy as np

    from mpt_utils.data.clips import read_key_frame

    def change(samples):
        return np.mean([np.abs(read_key_frame(s, "apex", 112).astype(float) - read_key_frame(s, "onset", 112))
                        .mean() for s in samples])

    assert change(large) > change(small)


def test_every_row_is_scored_on_every_amplitude_and_written(sweep):
    out, table = sweep
    assert len(table) == 4 and set(table["row"]) == {"probe: dynamic image", "MPT"}
    assert dict(zip(table["row"], table["kind"])) == {"probe: dynamic image": "linear probe", "MPT": "model"}
    assert set(table["amplitude_px"]) == {0.5, 4.0} and table["f1"].between(0, 1).all()
    assert table["folds"].tolist() == ["2/3"] * 4  # the ci profile's max_folds, for every row
    assert pd.read_csv(out / "amplitude.csv")["f1"].tolist() == pytest.approx(table["f1"].tolist())
    md = (out / "amplitude.md").read_text()
    assert "| probe: dynamic image |" in md and "0.5 px" in md and "Chance" in md
    assert (out / "amplitude.png").stat().st_size > 10_000
    summary = sweep_summary(table)
    assert summary.loc[("MPT", 4.0), "mean"] == pytest.approx(
        table[(table["row"] == "MPT") & (table["amplitude_px"] == 4.0)]["f1"].mean())
    verdict = sweep_verdict(table)
    assert len(verdict) == 3 and verdict[-1].startswith("MPT minus probe: dynamic image: ")


def test_rerunning_resumes_every_row(sweep):
    out, table = sweep
    folds = sorted(out.glob("amplitude-*/seed0/MPT/folds/*/COMPLETE"))
    probes = sorted(out.glob("amplitude-*/seed0/probe*/predictions.csv"))
    stamps = [p.stat().st_mtime_ns for p in folds + probes]
    again = run_amplitude_sweep(out, "ci", amplitudes=(0.5, 4.0), seeds=(0,), rows=ROWS, subjects=3, clips=18,
                                epochs=1, progress=False)
    assert len(folds) == 4 and len(probes) == 2 and [p.stat().st_mtime_ns for p in folds + probes] == stamps
    assert again["f1"].tolist() == table["f1"].tolist()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "casme2", "--root", "{casme2}"], "the amplitude sweep needs synthetic data"),
    (["--root", "{casme2}"], "the amplitude sweep needs synthetic data"),
    (["--dataset", "megc2019", "--root-casme2", "{casme2}", "--root-smic", "{casme2}"], "needs synthetic data"),
    (["--root", "{out}/elsewhere"], "leave out --root"),
    (["--executor", "local", "--gpus", "cpu:2"], "runs in this process"),
    (["--seed", "3"], "leave out --seed"),
])
def test_the_sweep_refuses_before_any_data_or_pretraining_work(args, message, tmp_path, capsys):
    casme2 = make_casme2(tmp_path / "CASME2")
    before = sorted(tmp_path.rglob("*"))
    args = [a.format(casme2=casme2, out=tmp_path) for a in args]
    assert main(["--profile", "ci", "--ablation", "amplitude", "--out", str(tmp_path / "o"), *args]) == 2
    assert message in capsys.readouterr().err
    assert sorted(tmp_path.rglob("*")) == before  # no set generated, no backbone pre-trained, no folder made


def test_sweep_options_belong_to_the_sweep(tmp_path, capsys):
    assert main(["--profile", "ci", "--out", str(tmp_path / "o"), "--amplitudes", "1", "2"]) == 2
    assert "belong to --ablation amplitude" in capsys.readouterr().err
    assert main(["--profile", "ci", "--out", str(tmp_path / "o"), "--ablation", "amplitude", "adapters"]) == 2
    assert "runs alone" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least 2 subjects"):
        run_amplitude_sweep(tmp_path / "s", "ci", subjects=1)
