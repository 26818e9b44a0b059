"""read_clip: temporal sampling, interpolation, grayscale, face cropping, the cache."""

from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
import pytest
from conftest import make_casme2, make_samm, write_frames

from mpt_utils.data import (
    ArrayCache,
    DatasetError,
    FaceNotFoundError,
    haar_face_detector,
    load_casme2,
    load_samm,
    read_clip,
    sample_positions,
)
from mpt_utils.data import clips as clips_module


def _load(loader, root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {s.clip: s for s in loader(root)}


@pytest.fixture
def casme(casme2_root):
    return _load(load_casme2, casme2_root)


def test_long_clip_takes_the_nearest_frames_at_regular_intervals(casme):
    s = casme["EP03_02"]  # frames 1..100, onset 10, offset 90: grey level = frame number
    clip = read_clip(s, num_frames=16, size=32)
    assert clip.shape == (16, 32, 32, 3) and clip.dtype == np.uint8
    np.testing.assert_array_equal(clip[:, 5, 5, 0], np.round(np.linspace(10, 90, 16)))


def test_short_clip_is_linearly_interpolated(tmp_path):
    from conftest import write_xlsx

    root = tmp_path / "c"  # 14 frames from onset 46 to offset 59, grey level 15 per frame step
    write_frames(root / "Cropped" / "sub01" / "EP01_01", range(46, 60), suffix=".png", value=lambda n: 15 * (n - 46))
    write_xlsx(root / "CASME2-coding-1.xlsx", ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                                               "Estimated Emotion"], [[1, "EP01_01", 46, 50, 59, "others"]])
    s = _load(load_casme2, root)["EP01_01"]
    clip = read_clip(s, num_frames=16, size=16)
    # interpolated between neighbours (nearest frames would give only multiples of 15)
    np.testing.assert_array_equal(clip[:, 0, 0, 1], np.rint(np.linspace(0, 195, 16)))
    assert len(set(clip[:, 0, 0, 1])) == 16


def test_one_frame_request_returns_the_apex(casme):
    s = casme["EP01_01"]
    clip = read_clip(s, num_frames=1, size=16)
    assert clip.shape == (1, 16, 16, 3) and clip[0, 0, 0, 0] == s.apex


def test_positions_validate_num_frames(casme):
    with pytest.raises(ValueError):
        sample_positions(casme["EP01_01"], 0)


def test_grayscale_frames_become_three_equal_channels(tmp_path):
    s = _load(load_samm, make_samm(tmp_path / "samm"))["006_1_2"]
    clip = read_clip(s, num_frames=4, size=16)
    assert clip.shape == (4, 16, 16, 3)
    assert (clip[..., 0] == clip[..., 1]).all() and (clip[..., 1] == clip[..., 2]).all()


def test_unreadable_frame_names_the_file(casme):
    s = casme["EP01_01"]
    broken = s.frame_paths[5]
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=rf"cannot decode the frame .*{broken.name}"):
        read_clip(s, num_frames=40, size=16)


def test_raw_frames_are_cropped_once_with_the_cached_box(tmp_path):
    root = make_casme2(tmp_path / "raw", frames_dir="CASME2_RAW_selected")
    s = _load(load_casme2, root)["EP01_01"]
    calls = []

    def detector(image):
        calls.append(image.shape)
        return (4, 2, 8, 10)  # x, y, w, h

    cache = ArrayCache(tmp_path / "cache")
    clip = read_clip(s, num_frames=4, size=16, face_detector=detector, cache=cache)
    assert clip.shape == (4, 16, 16, 3) and len(calls) == 1
    read_clip(s, num_frames=8, size=16, face_detector=detector, cache=cache)  # new params, same box
    assert len(calls) == 1


def test_crop_keeps_only_the_face_box(tmp_path):
    folder = tmp_path / "raw" / "CASME2_RAW_selected" / "sub01" / "EP01_01"
    write_frames(folder, range(1, 5), size=(40, 40), suffix=".png")
    for p in folder.iterdir():  # a bright square "face" on a dark background
        img = np.zeros((40, 40, 3), np.uint8)
        img[10:30, 12:32] = 200
        cv2.imwrite(str(p), img)
    from conftest import write_xlsx

    write_xlsx(tmp_path / "raw" / "CASME2-coding-1.xlsx",
               ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"],
               [[1, "EP01_01", 1, 2, 4, "others"]])
    s = _load(load_casme2, tmp_path / "raw")["EP01_01"]
    assert not s.cropped
    clip = read_clip(s, 2, 8, face_detector=lambda im: (12, 10, 20, 20))
    # the box grown by the 15 % margin: x 9..35, y 7..33, then resized (computed independently)
    frame = cv2.cvtColor(cv2.imread(str(s.frame_paths[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(clip[0], cv2.resize(frame[7:33, 9:35], (8, 8), interpolation=cv2.INTER_AREA))
    uncropped = read_clip(s, 2, 8, crop=False)
    np.testing.assert_array_equal(uncropped[0], cv2.resize(frame, (8, 8), interpolation=cv2.INTER_AREA))


def test_no_face_found_is_a_clear_error(tmp_path):
    root = make_casme2(tmp_path / "raw", frames_dir="CASME2_RAW_selected")
    s = _load(load_casme2, root)["EP01_01"]
    with pytest.raises(FaceNotFoundError, match="no face found on the onset frame"):
        read_clip(s, 4, 16)  # OpenCV's real cascade finds no face in a flat grey frame
    assert haar_face_detector(np.zeros((64, 64, 3), np.uint8)) is None


def test_cache_reuses_and_invalidates(casme, tmp_path, monkeypatch):
    s = casme["EP01_01"]
    cache = ArrayCache(tmp_path / "cache")
    first = read_clip(s, 8, 16, cache=cache)
    reads = []
    original = clips_module.read_frame
    monkeypatch.setattr(clips_module, "read_frame", lambda p: reads.append(p) or original(p))
    np.testing.assert_array_equal(read_clip(s, 8, 16, cache=cache), first)
    assert reads == []  # served from the cache: no JPEG decoded
    read_clip(s, 8, 24, cache=cache)
    assert reads  # another size is another entry
    reads.clear()
    frame = s.frame_paths[0]
    stat = frame.stat()
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the frame changed on disk
    read_clip(s, 8, 16, cache=cache)
    assert reads


def test_damaged_cache_entry_is_recomputed(casme, tmp_path):
    s = casme["EP01_01"]
    cache = ArrayCache(tmp_path / "cache")
    expected = read_clip(s, 4, 16, cache=cache)
    for entry in (tmp_path / "cache").rglob("*.npy"):
        entry.write_bytes(b"garbage")
    np.testing.assert_array_equal(read_clip(s, 4, 16, cache=cache), expected)
