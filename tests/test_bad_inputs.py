"""Bad inputs end in a clear message: damaged copies of a synthetic set, settings out of range, folders that cannot
be written, devices that are not there, and every console script starts."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import pandas as pd
import pytest

from mpt_utils import cli, notebooks
from mpt_utils.config import ConfigError, TrainConfig
from mpt_utils.data import DatasetError, load_dataset, read_clip
from mpt_utils.io import json_text
from mpt_utils.profiles import PROFILES
from mpt_utils.runtime import REPO_ROOT, say_once

SHEET = "CASME2-coding-synthetic.xlsx"


@pytest.fixture
def damaged(tmp_path, tiny_synthetic) -> Path:
    """A copy of the tiny synthetic set, to damage."""
    return Path(shutil.copytree(tiny_synthetic, tmp_path / "set"))


def sheet(root: Path) -> pd.DataFrame:
    return pd.read_excel(root / SHEET, dtype=str)


def write_sheet(root: Path, table: pd.DataFrame, sep: str = ",") -> None:
    """Replace the set's sheet by a CSV export (``sep`` as a spreadsheet program in that locale writes it)."""
    (root / SHEET).unlink(missing_ok=True)
    table.to_csv(root / "CASME2-coding-synthetic.csv", index=False, sep=sep)


def clip_folder(root: Path, row: pd.Series) -> Path:
    return root / "Cropped" / f"sub{int(row['Subject']):02d}" / row["Filename"]


def train(root: Path, out: Path, *extra: str) -> int:
    """The training command on ``root`` (a random backbone: these cases are about the data, not the model)."""
    return cli.main(["--dataset", "synthetic", "--root", str(root), "--profile", "ci", "--no-pretrained",
                     "--max-folds", "1", "--epochs", "1", "--quiet", "--out", str(out), *extra])


# --- frames ---------------------------------------------------------------------------------------------------


def test_a_half_truncated_jpeg_stops_the_run_with_exit_2_and_its_name(damaged, tmp_path, capsys):
    row = sheet(damaged).iloc[0]
    frame = clip_folder(damaged, row) / f"reg_img{row['OnsetFrame']}.jpg"  # a frame every reading uses
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(frame)) is not None  # OpenCV alone decodes the top half without an error
    sample = next(s for s in load_dataset("synthetic", damaged) if s.clip == row["Filename"])
    with pytest.raises(DatasetError, match="truncated"):
        read_clip(sample, num_frames=8, size=32)
    capsys.readouterr()
    assert train(damaged, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert str(frame) in err and "re-extract" in err


def test_a_frame_of_another_size_stops_the_run(damaged):
    row = sheet(damaged).iloc[0]
    frame = clip_folder(damaged, row) / f"reg_img{row['OffsetFrame']}.jpg"  # read after the onset frame
    image = cv2.imread(str(frame))
    cv2.imwrite(str(frame), cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2)))
    sample = next(s for s in load_dataset("synthetic", damaged) if s.clip == row["Filename"])
    with pytest.raises(DatasetError, match=f"{frame.name}.*same clip"):
        read_clip(sample, num_frames=8, size=32)


@pytest.mark.parametrize("key", ["OnsetFrame", "ApexFrame", "OffsetFrame"])
def test_a_missing_key_frame_is_an_error_unless_filling_is_asked_for(key, damaged, says):
    row = sheet(damaged).iloc[1]
    (clip_folder(damaged, row) / f"reg_img{row[key]}.jpg").unlink()
    with pytest.raises(DatasetError, match=r"frame file\(s\) are missing.*--fill-missing-frames"):
        load_dataset("synthetic", damaged)
    with says(r"1 missing key frame\(s\) filled from their neighbours, as asked"):
        samples = load_dataset("synthetic", damaged, fill_missing_frames=True)
    assert any(s.clip == row["Filename"] for s in samples)


def test_a_gap_between_onset_and_offset_is_filled_and_reported_once(damaged, says):
    row = sheet(damaged).iloc[2]
    middle = (int(row["OnsetFrame"]) + int(row["ApexFrame"])) // 2
    (clip_folder(damaged, row) / f"reg_img{middle}.jpg").unlink()
    with says(rf"1 frame\(s\) between onset and offset are missing in 1 clip\(s\) \(.*{middle}\)"):
        load_dataset("synthetic", damaged)
    say_once.cache_clear()


def test_a_clip_listed_twice_is_reported_and_used_once(damaged, says):
    table = sheet(damaged)
    n = len(load_dataset("synthetic", damaged))
    write_sheet(damaged, pd.concat([table, table.iloc[[3]]]))
    with says(r"1 sheet row\(s\) repeat a clip listed before with the same coding and are used once"):
        assert len(load_dataset("synthetic", damaged)) == n
    changed = table.iloc[[3]].copy()
    changed["ApexFrame"] = str(int(changed["ApexFrame"].iloc[0]) + 1)
    write_sheet(damaged, pd.concat([table, changed]))
    with pytest.raises(DatasetError, match="listed a second time with another coding"):
        load_dataset("synthetic", damaged)


def test_onset_after_offset_says_so_and_names_the_flag_that_skips_it(damaged, tmp_path, capsys):
    table = sheet(damaged)
    table.loc[0, ["OnsetFrame", "OffsetFrame"]] = table.loc[0, ["OffsetFrame", "OnsetFrame"]].values
    write_sheet(damaged, table)
    with pytest.raises(DatasetError, match="comes after the offset frame") as caught:
        load_dataset("synthetic", damaged)
    assert "lie outside" not in str(caught.value) and "--skip-bad-rows" in str(caught.value)
    assert train(damaged, tmp_path / "out") == 2
    assert "--skip-bad-rows" in capsys.readouterr().err
    assert train(damaged, tmp_path / "out", "--skip-bad-rows") == 0  # the flag the message names works


def test_an_apex_outside_the_span_is_not_called_uncoded(damaged, says):
    table = sheet(damaged)
    table.loc[0, "ApexFrame"] = "9999"
    write_sheet(damaged, table)
    with says(r"1 sample\(s\) have a coded apex outside their onset\.\.offset span \(.*apex 9999"):
        samples = load_dataset("synthetic", damaged)
    assert next(s for s in samples if s.clip == table.loc[0, "Filename"]).apex_estimated


def test_a_semicolon_separated_export_reads_as_the_spreadsheet(damaged, says):
    expected = [(s.key, s.onset, s.apex, s.offset, s.label) for s in load_dataset("synthetic", damaged)]
    write_sheet(damaged, sheet(damaged), sep=";")
    with says("read as semicolon-separated values"):
        got = [(s.key, s.onset, s.apex, s.offset, s.label) for s in load_dataset("synthetic", damaged)]
    assert got == expected


# --- settings -------------------------------------------------------------------------------------------------

BAD_SETTINGS = [
    ("alpha", math.nan), ("alpha", -1.0), ("alpha", math.inf), ("epochs", 0), ("epochs", -1), ("epochs", 2.5),
    ("epochs", True), ("max_folds", -3), ("max_folds", 0), ("lr", 0.0), ("batch_size", 0), ("fs", 0.0),
    ("fs", "per_frame"), ("high_hz", 40.0), ("low_hz", 5.0), ("order", 0), ("num_frames", 1), ("image_size", 4),
    ("class_weights", "balance"), ("color", "hsv"), ("dynamic_scaling", "max"), ("precision", "fp8"),
    ("device", "gpu"), ("threads", 0), ("val_subjects", -1), ("seed", -1), ("lambda_c", 0.0),
    ("chroma_attenuation", 0.0), ("pretrained", "yes"), ("variant", ""), ("classes", ("a", 3)),
    ("select_epoch_on_val", True), ("weight_decay", -0.1),
]


@pytest.mark.parametrize("field, value", BAD_SETTINGS, ids=[f"{f}={v!r}" for f, v in BAD_SETTINGS])
def test_every_setting_is_checked_where_it_is_made(field, value):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**{field: value})
    assert caught.value.setting in (field, "val_subjects", "fs", "low_hz"), caught.value
    assert field.split("_")[0] in str(caught.value) or caught.value.setting in str(caught.value)


def test_numbers_are_normalised_and_every_profiles_config_is_standard_json():
    import numpy as np

    def refuse(constant):
        raise ValueError(f"{constant} is not standard JSON")

    assert type(TrainConfig(epochs=np.int64(3)).epochs) is int
    for profile in PROFILES.values():
        config = profile.train_config()
        loaded = json.loads(json_text(config.as_dict()), parse_constant=refuse)
        assert TrainConfig(**{**loaded, "classes": None}) == config.replace()
    assert json.loads(json_text({"x": math.nan}), parse_constant=lambda c: pytest.fail(c)) == {"x": None}


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "nan"], "--alpha"), (["--epochs", "0"], "--epochs"), (["--epochs", "-1"], "--epochs"),
    (["--max-folds", "-3"], "--max-folds"), (["--fs", "0"], "--fs"), (["--seed", "-2"], "--seed"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_setting_out_of_range_exits_2_with_nothing_written(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "home"))
    assert cli.main(["--profile", "ci", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "home").exists()


# --- folders and devices --------------------------------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write in, root included (immutable with chattr; read-only bits for other users)."""
    import os

    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.fail("chattr +i failed: this file system cannot make an immutable folder for the test")
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_an_out_that_is_a_file_or_read_only_exits_2_before_any_work(tmp_path, read_only, capsys, monkeypatch):
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "home"))
    a_file = tmp_path / "results.txt"
    a_file.write_text("x")
    for out, words in [(a_file, "is a file, not a folder"), (read_only, "cannot be written"),
                       (read_only / "new", "cannot be written")]:
        assert cli.main(["--profile", "ci", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--out {out}" in err and words in err and "Traceback" not in err
    assert not (tmp_path / "home").exists()  # nothing generated, nothing pre-trained
    assert notebooks.main(["--profile", "ci", "--output", str(read_only / "o")]) == 2
    assert "--output" in capsys.readouterr().err


def test_an_unavailable_device_exits_2_before_any_data_work(tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is available")
    monkeypatch.setenv("MPT_HOME", str(tmp_path / "home"))
    assert cli.main(["--profile", "ci", "--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and "(--device)" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "home").exists()


# --- console scripts and help ---------------------------------------------------------------------------------


def test_every_console_script_starts():
    """Each ``[project.scripts]`` entry runs ``--help``: the script pip wrote where it is installed, else its
    target imported as the script would import it."""
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        installed = Path(sys.executable).parent / name
        code = f"import sys; from {module} import {function} as main; sys.argv[0] = {name!r}; sys.exit(main())"
        command = [str(installed)] if installed.exists() else [sys.executable, "-c", code]
        result = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "usage" in result.stdout, f"{name} = {target}: {result.stderr[-1500:]}"


def test_help_says_how_to_generate_a_synthetic_set_into_a_folder(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--dataset synthetic --root FOLDER" in text and "--skip-bad-rows" in text
    assert "--fill-missing-frames" in text
