"""The training command line: a single run, an ablation table, the MEGC composite, and every input error."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_casme2, make_samm, make_smic

from mpt_utils import paper
from mpt_utils.cli import OVERRIDES, build_parser, main

FAST = ["--max-folds", "1", "--epochs", "1", "--quiet"]


def test_the_overrides_are_listed_once_as_trainconfig_fields_with_their_options():
    """cli.OVERRIDES is the one list: each a TrainConfig field with the option of its name, and every option that
    names a TrainConfig field is in it, but --weights (a file, resolved and checked by resolve_run itself)."""
    import dataclasses

    from mpt_utils.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    options = {action.dest for action in build_parser()._actions}
    assert set(OVERRIDES) <= fields and set(OVERRIDES) <= options
    assert (options & fields) - set(OVERRIDES) == {"weights"}


def test_single_run_writes_a_table_beside_the_paper(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--profile", "ci", "--out", str(out), *FAST]) == 0
    table = pd.read_csv(out / "table.csv")
    assert table["row"].tolist() == ["mpt on synthetic"] and table["folds"].tolist() == ["1/4"]
    md = (out / "table.md").read_text()
    assert "pre-trained on synthetic facial actions (AU detection)" in md and "Synthetic data: not comparable" in md
    assert "RANDOM" not in md
    assert (out / "results.json").is_file() and "RANDOM" not in (out / "summary.md").read_text()
    # rerunning resumes: nothing to train, same table
    assert main(["--profile", "ci", "--out", str(out), *FAST]) == 0
    assert pd.read_csv(out / "table.csv")["f1"].tolist() == table["f1"].tolist()


def test_ablation_table_has_the_paper_rows(tmp_path):
    out = tmp_path / "abl"
    assert main(["--profile", "ci", "--out", str(out), "--ablation", "adapters", *FAST]) == 0
    table = pd.read_csv(out / "adapters.csv")
    assert table["row"].tolist() == ["MPT w/o adapter", "primitive adapter", "MPT (group adapter)"]
    assert table["paper_acc"].tolist() == [paper.VARIANTS[v].acc for v in
                                           ("motion_prompts_only", "primitive_adapter", "mpt")]
    assert (out / "adapters" / "primitive_adapter" / "results.json").is_file()
    assert "Table VIII" in (out / "tables.md").read_text()


def test_a_random_backbone_is_labelled_loudly(tmp_path):
    out = tmp_path / "random"
    assert main(["--profile", "ci", "--out", str(out), *FAST, "--no-pretrained"]) == 0
    assert "RANDOM weights: a timing run" in (out / "table.md").read_text()
    assert "RANDOM weights: a timing run" in (out / "summary.md").read_text()


def test_the_classes_option_names_a_scheme_that_reaches_training(tmp_path):
    """The README's ``--classes megc2019`` (alias of ``--scheme``) trains on the 3-class scheme."""
    out = tmp_path / "megc"
    assert main(["--profile", "ci", "--out", str(out), "--classes", "megc2019", *FAST]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["classes"] == ["negative", "positive", "surprise"]
    assert "megc2019 classes" in (out / "table.md").read_text()


def test_the_magnification_options_reach_the_run_and_its_inputs(tmp_path):
    from mpt_utils.train import load_run_config, prepare_inputs

    plain, options = tmp_path / "plain", tmp_path / "options"
    assert main(["--profile", "ci", "--out", str(plain), *FAST]) == 0
    assert main(["--profile", "ci", "--out", str(options), *FAST, "--lambda-c", "16", "--skip-finest",
                 "--color", "yiq", "--chroma-attenuation", "0.1"]) == 0
    config = load_run_config(options)
    assert (config.lambda_c, config.skip_finest, config.color, config.chroma_attenuation) == (16.0, True, "yiq", 0.1)
    assert load_run_config(plain).magnify_kwargs() == {**config.magnify_kwargs(), "lambda_c": None,
                                                       "skip_finest": False, "color": "rgb",
                                                       "chroma_attenuation": 1.0}
    # the cache keys on them: each run's magnified clips are its own, the dynamic images the same
    from mpt_utils.run import resolve_run

    samples = resolve_run("ci", progress=False).samples[:2]
    a = prepare_inputs(samples, load_run_config(plain), progress=False)
    b = prepare_inputs(samples, config, progress=False)
    assert not (a.magnified == b.magnified).all() and (a.dynamic == b.dynamic).all()
    with pytest.raises(SystemExit):  # argparse names the choices
        main(["--profile", "ci", "--out", str(tmp_path / "bad"), *FAST, "--color", "hsv"])
    # the dynamic image's scaling reaches the inputs and keys the cache; the magnified clips stay the same
    centred = tmp_path / "centred"
    assert main(["--profile", "ci", "--out", str(centred), *FAST, "--dynamic-scaling", "zero_centred"]) == 0
    c = prepare_inputs(samples, load_run_config(centred), progress=False)
    assert load_run_config(centred).dynamic_scaling == "zero_centred" and (c.magnified == a.magnified).all()
    assert not (c.dynamic == a.dynamic).all() and float(c.dynamic.min()) >= 0 and float(c.dynamic.max()) <= 1


def test_the_megc2019_composite_pools_three_datasets_and_scores_each(tmp_path):
    roots = {"casme2": make_casme2(tmp_path / "CASME2"), "samm": make_samm(tmp_path / "SAMM"),
             "smic": make_smic(tmp_path / "SMIC")}
    out = tmp_path / "composite"
    args = ["--dataset", "megc2019", *(a for name, root in roots.items() for a in (f"--root-{name}", str(root)))]
    assert main([*args, "--profile", "ci", "--out", str(out), "--epochs", "1", "--max-folds", "99", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["per_dataset"]) == {"casme2", "samm", "smic"}
    for d in results["per_dataset"].values():
        assert set(d) >= {"uf1", "uar", "n_clips"} and d["n_clips"] > 0
    assert sum(d["n_clips"] for d in results["per_dataset"].values()) == results["n"]
    predictions = pd.read_csv(out / "predictions.csv")
    assert predictions["subject"].str.split("/").str[0].nunique() == 3  # subjects carry their dataset
    assert results["folds_total"] == predictions["subject"].nunique()  # LOSO over every subject of all three
    table = pd.read_csv(out / "table.csv")
    assert table["row"].tolist() == ["casme2", "samm", "smic", "composite"]
    assert table.loc[3, "uf1"] == pytest.approx(100 * results["uf1"])
    assert "MEGC 2019 composite" in (out / "table.md").read_text()


def test_missing_hub_weights_end_with_a_clear_error(tmp_path, capsys):
    """Offline, the backbone table's ViT-B rows need weights from the hub: exit 2 with instructions, before training."""
    out = tmp_path / "o"
    assert main(["--profile", "ci", "--out", str(out), "--ablation", "backbones", *FAST]) == 2
    assert "huggingface" in capsys.readouterr().err
    assert not out.exists()


def test_the_paper_profile_offline_stops_before_any_data_work(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["--profile", "paper", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and "--weights" in err and "huggingface-cli download" in err
    assert time.perf_counter() - start < 30  # no retries, no synthetic set, no cache
    assert not (Path(os.environ["MPT_HOME"]) / "data").exists() and not (tmp_path / "o").exists()


def test_a_missing_weights_file_ends_with_a_clear_error(tmp_path, capsys):
    assert main(["--profile", "ci", "--out", str(tmp_path / "o"), "--weights", str(tmp_path / "none.safetensors"),
                 *FAST]) == 2
    assert "none.safetensors does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["contradiction", "no_root", "missing_root", "unknown_layout", "bad_sheet",
                                  "unknown_variant", "other_run", "one_composite_root"])
def test_bad_input_ends_with_exit_2_naming_the_flag_and_writes_nothing(case, tmp_path, capsys):
    out = tmp_path / "out"
    args = {
        "contradiction": ["--weights", "w.pt", "--no-pretrained"],
        "no_root": ["--dataset", "casme2"],
        "missing_root": ["--root", str(tmp_path / "does" / "not" / "exist")],
        "unknown_layout": ["--root", str(tmp_path / "CASME2")],
        "bad_sheet": ["--root", str(tmp_path / "CASME2"), "--dataset", "casme2"],
        "unknown_variant": ["--variant", "mtp"],
        "other_run": ["--epochs", "2"],
        "one_composite_root": ["--dataset", "megc2019", "--root-smic", str(tmp_path / "CASME2")],
    }[case]
    expected = {
        "contradiction": "--weights and --no-pretrained contradict",
        "no_root": "needs its folder: pass --root",
        "missing_root": "does not exist (--root)",
        "unknown_layout": "cannot tell which dataset",
        "bad_sheet": "is not a readable .xlsx/.csv coding sheet",
        "unknown_variant": "unknown variant 'mtp'",
        "other_run": "different run",
        "one_composite_root": "two or three of",
    }[case]
    (tmp_path / "CASME2" / "Cropped").mkdir(parents=True)  # a real download's folder: never written into
    if case == "bad_sheet":
        (tmp_path / "CASME2" / "CASME2-coding-20190701.xlsx").write_text("not a spreadsheet")
    if case == "other_run":
        assert main(["--profile", "ci", "--out", str(out), *FAST]) == 0
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["--profile", "ci", "--out", str(out), *FAST, *args]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "--data-root" not in err and "data_root=" not in err  # this command's own flag names
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert [p for p in written if p not in before] == []
    assert not list((tmp_path / "CASME2").glob("SYNTHETIC.json"))


def test_the_baselines_table_puts_linear_probes_beside_the_models(tmp_path, capsys):
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict

    from mpt_utils.metrics import compute_metrics
    from mpt_utils.run import resolve_run
    from mpt_utils.train import probe_model
    from mpt_utils.train.probe import PROBE_GRID, PROBE_SIZE, _shrink, probe_images

    out = tmp_path / "baselines"
    assert main(["--profile", "ci", "--out", str(out), "--ablation", "baselines", *FAST]) == 0
    table = pd.read_csv(out / "baselines.csv")
    assert table["row"].tolist() == ["probe: apex frame", "probe: onset-to-apex difference", "probe: dynamic image",
                                     "head only", "motion prompts only", "group adapter only", "MPT",
                                     "two-branch (from scratch)", "two-branch (MA2MI pre-trained)"]
    assert table["folds"].tolist() == ["1/4"] * 9
    assert table["paper_f1"].isna().tolist() == [True] * 3 + [False] * 4 + [True] * 2  # no MIACNet figure is public
    assert table["params"].isna().tolist() == [True] * 3 + [False] * 6  # a probe trains no network
    assert (out / "baselines.png").stat().st_size > 10_000 and "linear probes" in (out / "tables.md").read_text()
    # the probe row is scikit-learn's LeaveOneGroupOut pipeline on the same features, on the run's held-out subject
    run = resolve_run(profile="ci")
    samples = run.samples
    rows = pd.read_csv(out / "baselines" / "probe__dynamic_image" / "predictions.csv", dtype={"subject": str})
    images = probe_images(samples, PROBE_SIZE, run.config.num_frames, inputs=("dynamic image",))
    x = _shrink(images["dynamic image"], PROBE_GRID)
    y, groups = [s.label for s in samples], [s.group for s in samples]
    expected = cross_val_predict(probe_model(), x, y, groups=groups, cv=LeaveOneGroupOut())
    assert set(rows["subject"]) == {samples[rows["index"][0]].group} and len(rows) > 0
    assert rows["prediction"].tolist() == [expected[i] for i in rows["index"]]
    f1 = table.set_index("row").loc["probe: dynamic image", "f1"]
    assert f1 == pytest.approx(100 * compute_metrics(rows["label"], rows["prediction"], run.classes)["f1"])
    # rerunning reads every row back: the probes are not refitted, the models not retrained
    stamp = (out / "baselines" / "probe__dynamic_image" / "predictions.csv").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["--profile", "ci", "--out", str(out), "--ablation", "baselines", *FAST]) == 0
    assert (out / "baselines" / "probe__dynamic_image" / "predictions.csv").stat().st_mtime_ns == stamp
    assert pd.read_csv(out / "baselines.csv")["f1"].tolist() == table["f1"].tolist()
