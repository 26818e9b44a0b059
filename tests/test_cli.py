"""The training command line: a single run, an ablation table, and its argument errors."""

from __future__ import annotations

import pandas as pd

from mpt_utils.train.cli import main


def test_single_run_writes_a_table_beside_the_paper(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--profile", "ci", "--out", str(out), "--max-folds", "1", "--epochs", "1", "--quiet"]) == 0
    table = pd.read_csv(out / "table.csv")
    assert table["row"].tolist() == ["mpt on synthetic"] and table["folds"].tolist() == ["1/4"]
    md = (out / "table.md").read_text()
    assert "pre-trained on synthetic AUs" in md and "Synthetic data: not comparable" in md
    assert "Random backbone weights" not in md
    assert (out / "results.json").is_file() and "RANDOM weights" not in (out / "summary.md").read_text()
    # rerunning resumes: nothing to train, same table
    assert main(["--profile", "ci", "--out", str(out), "--max-folds", "1", "--epochs", "1", "--quiet"]) == 0
    assert pd.read_csv(out / "table.csv")["f1"].tolist() == table["f1"].tolist()


def test_ablation_table_has_the_paper_rows(tmp_path):
    out = tmp_path / "abl"
    assert main(["--profile", "ci", "--out", str(out), "--ablation", "adapters", "--max-folds", "1", "--epochs", "1",
                 "--quiet"]) == 0
    table = pd.read_csv(out / "adapters.csv")
    assert table["row"].tolist() == ["MPT w/o adapter", "primitive adapter", "MPT (group adapter)"]
    assert table["paper_acc"].tolist() == [82.92, 84.15, 86.59]
    assert (out / "adapters" / "primitive_adapter" / "results.json").is_file()
    assert "Table VIII" in (out / "tables.md").read_text()


def test_a_random_backbone_is_labelled_loudly(tmp_path):
    out = tmp_path / "random"
    assert main(["--profile", "ci", "--out", str(out), "--max-folds", "1", "--epochs", "1", "--quiet",
                 "--no-pretrained"]) == 0
    assert "Random backbone weights" in (out / "table.md").read_text()
    assert "RANDOM weights" in (out / "summary.md").read_text()


def test_missing_hub_weights_end_with_a_clear_error(tmp_path, capsys):
    """Offline, the backbone table's ViT-B rows need weights from the hub: exit 2 with instructions."""
    assert main(["--profile", "ci", "--out", str(tmp_path), "--ablation", "backbones", "--max-folds", "1",
                 "--epochs", "1", "--quiet"]) == 2
    assert "huggingface" in capsys.readouterr().err


def test_a_missing_weights_file_ends_with_a_clear_error(tmp_path, capsys):
    assert main(["--profile", "ci", "--out", str(tmp_path / "o"), "--weights", str(tmp_path / "none.safetensors"),
                 "--max-folds", "1", "--epochs", "1", "--quiet"]) == 2
    assert "none.safetensors does not exist" in capsys.readouterr().err


def test_argument_errors(tmp_path, capsys):
    assert main(["--profile", "ci", "--out", str(tmp_path), "--weights", "w.pt", "--no-pretrained"]) == 2
    assert main(["--dataset", "casme2", "--profile", "ci", "--out", str(tmp_path)]) == 2
    assert "needs its folder" in capsys.readouterr().err
    real = tmp_path / "CASME2"  # a real download given without --dataset: never written into
    (real / "Cropped").mkdir(parents=True)
    assert main(["--profile", "ci", "--root", str(real), "--out", str(tmp_path / "o")]) == 2
    assert "no SYNTHETIC.json" in capsys.readouterr().err
