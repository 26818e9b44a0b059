"""The synthetic generator: real CASME II layout, determinism, timing, class balance, subtlety."""

from __future__ import annotations

import hashlib
import time
import warnings

import numpy as np
import pytest

from mpt_utils.data import load_casme2, make_synthetic, read_key_frame
from mpt_utils.data.synthetic import CASME2_COUNTS, class_counts


def _digest(root):
    h = hashlib.sha1()
    for p in sorted(root.rglob("*.jpg")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_written_in_casme2_layout_and_read_by_the_real_loader(tiny_synthetic):
    assert (tiny_synthetic / "CASME2-coding-synthetic.xlsx").is_file()
    assert list((tiny_synthetic / "Cropped").glob("sub0*/EP*/reg_img*.jpg"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = load_casme2(tiny_synthetic)
    assert len(samples) == 20
    assert len({s.subject for s in samples}) == 4
    for s in samples:
        span = s.offset - s.onset
        assert 40 <= span <= 100 and s.onset < s.apex < s.offset
        assert s.frame_numbers[0] < s.onset and s.frame_numbers[-1] > s.offset  # frames before and after
        assert s.fps == 200.0 and s.cropped and s.action_units


def _every_file(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_for_a_seed_byte_for_byte_sheet_included(tmp_path):
    """Two folders, two times (more than a zip archive's 2-second time resolution apart): the same bytes."""
    a = make_synthetic(tmp_path / "a", n_subjects=2, n_clips=10, seed=3, progress=False)
    time.sleep(2.5)
    b = make_synthetic(tmp_path / "b", n_subjects=2, n_clips=10, seed=3, progress=False)
    c = make_synthetic(tmp_path / "c", n_subjects=2, n_clips=10, seed=4, progress=False)
    files = _every_file(a)
    assert {"CASME2-coding-synthetic.xlsx", "SYNTHETIC.json"} <= set(files) and len(files) > 100
    assert files == _every_file(b)
    assert _digest(a) != _digest(c)


def test_existing_dataset_with_same_parameters_is_reused(tmp_path):
    root = make_synthetic(tmp_path / "a", n_subjects=2, n_clips=10, progress=False)
    stamp = (root / "CASME2-coding-synthetic.xlsx").stat().st_mtime_ns
    make_synthetic(root, n_subjects=2, n_clips=10, progress=False)
    assert (root / "CASME2-coding-synthetic.xlsx").stat().st_mtime_ns == stamp


def test_other_parameters_replace_the_set_whole(tmp_path):
    root = make_synthetic(tmp_path / "a", n_subjects=3, n_clips=12, progress=False)
    assert (root / "Cropped" / "sub03").is_dir()
    make_synthetic(root, n_subjects=2, n_clips=12, progress=False)
    assert sorted(p.name for p in (root / "Cropped").iterdir()) == ["sub01", "sub02"]
    assert _digest(root) == _digest(make_synthetic(tmp_path / "b", n_subjects=2, n_clips=12, progress=False))


def test_an_interrupted_generation_is_redone(tmp_path, monkeypatch):
    import mpt_utils.data.synthetic as synthetic

    calls = {"n": 0}
    real_write = synthetic._write_jpeg

    def failing(path, rgb, quality):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt  # the session dies mid-way
        real_write(path, rgb, quality)

    monkeypatch.setattr(synthetic, "_write_jpeg", failing)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic(tmp_path / "a", n_subjects=2, n_clips=12, progress=False)
    monkeypatch.setattr(synthetic, "_write_jpeg", real_write)
    root = make_synthetic(tmp_path / "a", n_subjects=2, n_clips=12, progress=False)
    assert _digest(root) == _digest(make_synthetic(tmp_path / "b", n_subjects=2, n_clips=12, progress=False))


def test_refuses_to_write_into_a_folder_that_is_not_synthetic(tmp_path):
    real = tmp_path / "CASME2"
    (real / "Cropped" / "sub01").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="no SYNTHETIC.json"):
        make_synthetic(real, n_subjects=2, n_clips=12, progress=False)
    assert not (real / "SYNTHETIC.json").exists()


def test_class_counts_follow_casme2():
    assert class_counts(None) == CASME2_COUNTS
    small = class_counts(40)
    assert sum(small.values()) == 40
    assert small["others"] > small["disgust"] > small["happiness"] >= small["surprise"]
    assert min(small[e] for e in ("happiness", "surprise", "disgust", "repression", "others")) >= 2
    with pytest.raises(ValueError):
        class_counts(5)


def test_motion_is_subtle_and_amplitude_is_the_difficulty_knob(tmp_path):
    """Mean onset-to-apex change grows with the amplitude knob; at 0 only noise is left."""

    def apex_change(amplitude):
        root = make_synthetic(tmp_path / f"a{amplitude}", n_subjects=1, n_clips=10, amplitude=amplitude,
                              jitter=0.0, seed=1, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples = load_casme2(root)
        return np.mean([np.abs(read_key_frame(s, "apex", 112).astype(float) - read_key_frame(s, "onset", 112)).mean()
                        for s in samples])

    still, subtle, easy = apex_change(0.0), apex_change(1.0), apex_change(8.0)
    assert still < subtle < easy
    assert subtle < 2.0  # a micro-expression changes the frame by about a grey level on average


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_subjects"):
        make_synthetic(tmp_path / "x", n_subjects=0)
    with pytest.raises(ValueError, match="amplitude"):
        make_synthetic(tmp_path / "x", amplitude=(2.0, 1.0))
    with pytest.raises(ValueError, match="cannot exceed"):
        make_synthetic(tmp_path / "x", n_subjects=30, n_clips=20)
