"""The three loaders on fixtures in each real layout, their quirks and their error messages."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import make_casme2, make_samm, make_smic, write_frames, write_xlsx

from mpt_utils.data import (
    CLASS_SCHEMES,
    DatasetError,
    apply_scheme,
    load_casme2,
    load_dataset,
    load_samm,
    load_smic,
    loso_splits,
)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_casme2_xlsx_with_quirks(casme2_root, says):
    with says("no coded apex"):
        samples = load_casme2(casme2_root)
    assert len(samples) == 6
    by_clip = {s.clip: s for s in samples}
    s = by_clip["EP02_01f"]
    assert (s.subject, s.onset, s.apex, s.offset, s.fps) == ("sub01", 46, 52, 59, 200.0)
    assert s.action_units == "4+L10" and s.emotion == "disgust" and s.cropped
    assert s.frame_numbers == tuple(range(46, 60))
    assert [p.name for p in s.frame_paths[:2]] == ["reg_img46.jpg", "reg_img47.jpg"]
    estimated = by_clip["EP03_02"]
    assert estimated.apex_estimated and estimated.apex == (10 + 90) // 2
    assert not s.apex_estimated


def test_casme2_frame_paths_sorted_numerically_not_alphabetically(tmp_path):
    root = make_casme2(tmp_path / "c")
    samples = _quiet(load_casme2, root)
    numbers = next(s for s in samples if s.clip == "EP03_02").frame_numbers
    assert numbers == tuple(range(1, 101))  # alphabetical order would put 10 before 2


def test_casme2_csv_export_older_sheet(tmp_path):
    samples = _quiet(load_casme2, make_casme2(tmp_path / "c", csv=True))
    assert len(samples) == 6
    assert {s.emotion for s in samples} >= {"disgust", "fear"}


def test_casme2_raw_frames_are_marked_for_cropping(tmp_path):
    samples = _quiet(load_casme2, make_casme2(tmp_path / "c", frames_dir="CASME2_RAW_selected"))
    assert not any(s.cropped for s in samples)


def test_scheme_drops_outside_emotions_with_a_count(casme2_root, says):
    with says(r"1 of 6 samples left out.*fear: 1"):
        samples = load_dataset("casme2", casme2_root)
    assert {s.label for s in samples} == set(CLASS_SCHEMES["casme2"][0])


def test_megc_composite_scheme(casme2_root, tmp_path):
    casme = _quiet(load_dataset, "casme2", casme2_root, scheme="megc2019")
    assert {s.clip: s.label for s in casme} == {
        "EP02_01f": "negative", "EP03_02": "positive", "EP01_01": "surprise", "EP05_03": "negative",
        "EP09_01": "negative"}  # "others" is left out, fear is negative
    samm = _quiet(load_dataset, "samm", make_samm(tmp_path / "samm"), scheme="megc2019")
    assert {s.label for s in samm} == {"negative"}


def test_samm_title_rows_padding_and_grayscale(tmp_path, says):
    root = make_samm(tmp_path / "SAMM")
    with says():
        samples = load_samm(root)
    by_clip = {s.clip: s for s in samples}
    assert set(by_clip) == {"006_1_2", "007_3_1", "011_2_3", "011_4_1"}
    assert by_clip["007_3_1"].subject == "007"  # the integer 7 in the sheet, zero-padded like the folders
    assert by_clip["006_1_2"].onset == 5562 and by_clip["006_1_2"].frame_numbers[0] == 5560
    assert by_clip["011_2_3"].apex_estimated  # apex -1
    five = _quiet(load_dataset, "samm", root)
    assert {s.label for s in five} == {"contempt", "anger", "others"}  # disgust dropped; Other -> others


def test_smic_layout_without_sheet(tmp_path, says):
    root = make_smic(tmp_path / "SMIC")
    with says("no coded apex"):
        samples = load_smic(root)
    assert len(samples) == 4 and all(s.apex_estimated and s.fps == 100.0 and s.cropped for s in samples)
    s = next(s for s in samples if s.clip == "s1_po_01")
    assert (s.subject, s.label, s.onset, s.offset, s.apex) == ("s1", "positive", 586, 605, (586 + 605) // 2)
    # the HS folder itself works as the root too
    assert len(_quiet(load_smic, root / "SMIC_all_cropped" / "HS")) == 4


def test_missing_root_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*MPT_DATA_ROOT"):
        load_casme2(tmp_path / "nowhere")


def test_missing_sheet(tmp_path):
    (tmp_path / "Cropped").mkdir()
    with pytest.raises(DatasetError, match="no CASME II coding sheet"):
        load_casme2(tmp_path)


def test_sheet_row_without_frame_folder(tmp_path, says):
    root = make_casme2(tmp_path / "c")
    import shutil

    shutil.rmtree(root / "Cropped" / "sub02" / "EP01_01")
    with pytest.raises(DatasetError, match=r"row 4 \(sub02/EP01_01\): no frame folder"):
        load_casme2(root)
    with says("skipped 1 sheet row"):
        assert len(load_casme2(root, errors="skip")) == 5


def test_onset_offset_outside_frames(tmp_path):
    root = tmp_path / "c"
    write_frames(root / "Cropped" / "sub01" / "EP01_01", range(20, 40))
    write_xlsx(root / "CASME2-coding-x.xlsx", ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                                                "Estimated Emotion"], [[1, "EP01_01", 10, 25, 35, "others"]])
    with pytest.raises(DatasetError, match=r"onset 10 / offset 35 lie outside the frames present .*20\.\.39"):
        load_casme2(root)


def test_unknown_scheme_and_dataset(casme2_root):
    with pytest.raises(ValueError, match="unknown class scheme 'seven'"):
        load_dataset("casme2", casme2_root, scheme="seven")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("casme3", casme2_root)


def test_unknown_label_in_scheme_is_dropped_not_mislabelled(casme2_root):
    samples = _quiet(load_casme2, casme2_root)
    kept = _quiet(apply_scheme, samples, "smic")
    assert [s.clip for s in kept] == ["EP01_01"]  # only "surprise" is also a SMIC class


def test_loso_matches_leave_one_group_out(tiny_samples):
    from sklearn.model_selection import LeaveOneGroupOut

    groups = [s.group for s in tiny_samples]
    ours = loso_splits(tiny_samples)
    theirs = list(LeaveOneGroupOut().split(np.zeros(len(groups)), groups=groups))
    assert len(ours) == len(theirs) == len(set(groups))
    for (subject, train, test), (train2, test2) in zip(ours, theirs):
        np.testing.assert_array_equal(train, train2)
        np.testing.assert_array_equal(test, test2)
        assert {tiny_samples[i].group for i in test} == {subject}
        assert subject not in {tiny_samples[i].group for i in train}


def test_loso_empty_dataset():
    with pytest.raises(ValueError, match="empty"):
        loso_splits([])


def test_a_message_is_said_once_per_process(casme2_root, capsys):
    from mpt_utils.runtime import say_once

    say_once.cache_clear()
    capsys.readouterr()
    load_dataset("casme2", casme2_root)
    first = capsys.readouterr().err
    load_dataset("casme2", casme2_root)  # the same data again (another notebook step): nothing new to say
    assert "1 of 6 samples left out" in first and capsys.readouterr().err == ""


def test_one_per_class_prefers_a_new_face_for_every_class():
    from dataclasses import replace
    from pathlib import Path

    from mpt_utils.data import Sample, one_per_class

    base = Sample(dataset="synthetic", subject="s1", clip="c", frame_paths=(Path("f.jpg"),), frame_numbers=(1,),
                  onset=1, apex=1, offset=1, emotion="x", label="x", fps=200.0)
    rows = [("s1", "happiness"), ("s1", "surprise"), ("s2", "surprise"), ("s1", "disgust"), ("s3", "disgust")]
    samples = [replace(base, subject=subj, clip=f"c{i}", label=label) for i, (subj, label) in enumerate(rows)]
    chosen = one_per_class(samples, ["happiness", "surprise", "disgust", "others"])
    assert {c: s.subject for c, s in chosen.items()} == {"happiness": "s1", "surprise": "s2", "disgust": "s3"}
    only_one_face = [replace(s, subject="s1") for s in samples]  # no other subject: the first clip of the class
    assert [s.clip for s in one_per_class(only_one_face, ["happiness", "surprise"]).values()] == ["c0", "c1"]
