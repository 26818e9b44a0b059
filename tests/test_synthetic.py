"""The synthetic generator: real CASME II layout, determinism, timing, class balance, subtlety."""

from __future__ import annotations

import dataclasses
import hashlib
import time
import warnings

import cv2
import numpy as np
import pytest

from mpt_utils.data import (
    frame_index,
    haar_face_detector,
    load_casme2,
    load_dataset,
    make_synthetic,
    read_frame,
    read_key_frame,
    synthetic_params,
)
from mpt_utils.data.synthetic import (
    CASME2_COUNTS,
    GROUND_TRUTH_FILE,
    PRESETS,
    class_counts,
    load_ground_truth,
)


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
        assert 30 <= span <= 130 and s.onset < s.apex < s.offset
        assert s.frame_numbers[0] < s.onset and s.frame_numbers[-1] > s.offset  # frames before and after
        assert s.fps == 200.0 and s.cropped and s.action_units


def _every_file(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_for_a_seed_byte_for_byte_sheet_included(tmp_path):
    """Two folders, two times (more than a zip archive's 2-second time resolution apart), one process or two:
    the same bytes."""
    a = make_synthetic(tmp_path / "a", n_subjects=2, n_clips=10, seed=3, progress=False, processes=1)
    time.sleep(2.5)
    b = make_synthetic(tmp_path / "b", n_subjects=2, n_clips=10, seed=3, progress=False, processes=2)
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
    import mpt_utils.data.synthetic.generator as synthetic

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
                              nuisance=0.0, seed=1, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples = load_casme2(root)
        return np.mean([np.abs(read_key_frame(s, "apex", 112).astype(float) - read_key_frame(s, "onset", 112)).mean()
                        for s in samples])

    still, subtle, easy = apex_change(0.0), apex_change(1.0), apex_change(8.0)
    assert still == 0.0 < subtle < easy  # clean clips (nuisance=0): without motion, onset and apex are the same
    assert subtle < 2.0  # a micro-expression changes the frame by about a grey level on average


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_subjects"):
        make_synthetic(tmp_path / "x", n_subjects=0)
    with pytest.raises(ValueError, match="amplitude"):
        make_synthetic(tmp_path / "x", amplitude=(2.0, 1.0))
    with pytest.raises(ValueError, match="cannot exceed"):
        make_synthetic(tmp_path / "x", n_subjects=30, n_clips=20)
    with pytest.raises(ValueError, match="processes must be None or at least 1"):
        make_synthetic(tmp_path / "x", processes=0)
    assert not (tmp_path / "x").exists()  # refused before anything is written


# --- the world: faces, action units anchored to landmarks, nuisances, ground truth ---------------------------


def _clean_clips(root, recipe, amplitude=6.0, n_clips=10, **kwargs):
    recipes = {e: [recipe] for e in CASME2_COUNTS}
    made = make_synthetic(root, n_subjects=2, n_clips=n_clips, seed=5, amplitude=amplitude, recipes=recipes,
                          progress=False, **{"nuisance": 0.0, **kwargs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_casme2(made)


def _grey(sample, which):
    from mpt_utils.data import frame_index, read_frame

    number = {"onset": sample.onset, "apex": sample.apex}[which]
    return cv2.cvtColor(read_frame(sample.frame_paths[int(frame_index(sample, number))]), cv2.COLOR_RGB2GRAY)


def test_optical_flow_of_the_frames_matches_the_saved_expression_flow(tmp_path):
    """On clean clips with large motion, OpenCV's DIS flow from onset to apex agrees with ``expression_flow`` inside
    the AU mask. The clips are rendered with motion only (no furrows, no shading change), because optical flow
    assumes a moving point keeps its brightness. Tolerance: a median endpoint error under 0.4 px against motions of
    2-6 px (measured: 0.25-0.30). DIS is itself an estimate (it smooths over patches and is least sure where the
    skin has little texture), so we compare medians over the mask, not pixels. Warping the apex frame back by the
    saved flow must also remove most of the onset-to-apex difference (measured: 0.6 grey levels left of 6)."""
    samples = _clean_clips(tmp_path / "flow", "6+12", appearance=0.0, shading=0.0)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for s in samples[:4]:
        truth = load_ground_truth(s)
        mask = truth.au_mask & (np.hypot(*truth.expression_flow.transpose(2, 0, 1)) > 1.0)
        measured = dis.calc(_grey(s, "onset"), _grey(s, "apex"), None)
        error = np.hypot(*(measured - truth.expression_flow)[mask].T)
        magnitude = np.hypot(*truth.expression_flow[mask].T)
        assert mask.sum() > 200 and np.median(magnitude) > 1.5
        assert np.median(error) < 0.4, f"{s.key}: median endpoint error {np.median(error):.2f} px"
        assert np.abs(truth.nuisance_flow).max() == 0.0  # nuisance 0: nothing else moves
        # the flow is a forward flow on the onset grid: warping the apex frame back by it gives the onset frame
        h, w = mask.shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        back = cv2.remap(_grey(s, "apex").astype(np.float32), xx + truth.expression_flow[..., 0],
                         yy + truth.expression_flow[..., 1], cv2.INTER_LINEAR)
        onset = _grey(s, "onset").astype(np.float32)
        assert np.abs(back - onset)[mask].mean() < 0.2 * np.abs(_grey(s, "apex") - onset)[mask].mean()


def test_action_units_follow_each_identitys_own_landmarks():
    """The brow raiser moves the brows of *that* face: its motion peaks at each identity's brow, wherever it is."""
    from mpt_utils.data.synthetic.actions import expression_fields
    from mpt_utils.data.synthetic.faces import draw_identity

    rng = np.random.default_rng(0)
    people = [draw_identity(rng) for _ in range(12)]
    low, high = max(people, key=lambda p: p.landmarks["brow_mid_L"][1] / p.height), min(
        people, key=lambda p: p.landmarks["brow_mid_L"][1] / p.height)
    assert (low.landmarks["brow_mid_L"][1] / low.height - high.landmarks["brow_mid_L"][1] / high.height) > 0.03
    for person in (low, high):
        flow, _ = expression_fields(person, "1+2", amplitude_px=3.0)
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        ys, xs = np.nonzero(magnitude >= 0.5 * magnitude.max())
        brow_y = np.mean([person.landmarks[f"brow_{k}_{side}"][1] for k in ("inner", "outer") for side in "LR"])
        assert abs(ys.mean() - brow_y) < 0.1 * person.scale, "the motion sits on this face's brows"
        assert (flow[..., 1][magnitude > 0.5 * magnitude.max()] < 0).all()  # raised: upwards
        one_side, _ = expression_fields(person, "L1", amplitude_px=3.0)
        one = np.hypot(one_side[..., 0], one_side[..., 1])
        middle = int(person.landmarks["glabella"][0])
        assert one[:, middle + 3 :].sum() < 0.05 * one[:, :middle].sum()  # "L": the image's left side (a tail crosses)


def test_a_neutral_clip_has_an_empty_mask_and_no_expression_flow(tmp_path):
    for s in _clean_clips(tmp_path / "neutral", "0", n_clips=10)[:3]:
        truth = load_ground_truth(s)
        assert truth.aus == "0" and not truth.au_mask.any()
        assert np.abs(truth.expression_flow).max() == 0.0 and np.abs(truth.nuisance_flow).max() == 0.0
        assert np.array_equal(_grey(s, "onset"), _grey(s, "apex"))  # nothing moves, nothing changes


def test_ground_truth_fields_and_conventions(tiny_synthetic):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = load_dataset("casme2", tiny_synthetic)  # the CASME II loader reads the set, and finds its truth
    for s in samples[:5]:
        truth = load_ground_truth(s)
        first = read_frame(s.frame_paths[0])
        h, w = first.shape[:2]
        assert truth.expression_flow.shape == truth.nuisance_flow.shape == (h, w, 2)
        assert truth.expression_flow.dtype == np.float32 and truth.au_mask.dtype == bool
        assert truth.aus == s.action_units and truth.intensity.shape == (len(s.frame_paths),)
        onset, apex = int(frame_index(s, s.onset)), int(frame_index(s, s.apex))
        assert truth.intensity[onset] == 0.0 and truth.intensity[apex] == 1.0
        assert truth.au_mask.any() and truth.blink.shape == truth.intensity.shape and truth.head.shape[1] == 3
        small = truth.resized(56, 56)
        assert small.expression_flow.shape == (56, 56, 2) and small.au_mask.shape == (56, 56)
        peak = np.abs(truth.expression_flow).max()
        assert np.abs(small.expression_flow).max() == pytest.approx(peak * 56 / min(h, w), rel=0.5)


def test_a_clip_without_ground_truth_is_named(tiny_synthetic, tmp_path):
    import shutil

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = load_casme2(tiny_synthetic)[0]
    copy = tmp_path / "clip"
    shutil.copytree(s.frame_paths[0].parent, copy)
    (copy / GROUND_TRUTH_FILE).unlink()
    real = dataclasses.replace(s, frame_paths=tuple(copy / p.name for p in s.frame_paths))
    with pytest.raises(FileNotFoundError, match=f"{s.key} has no ground truth"):
        load_ground_truth(real)


def test_nuisances_draw_from_their_own_stream(tmp_path):
    """The same seed with nuisance 0 and 1: the same identities, AUs, timing and expression; only nuisances differ."""
    clean = make_synthetic(tmp_path / "clean", n_subjects=2, n_clips=12, seed=2, nuisance=0.0, progress=False)
    noisy = make_synthetic(tmp_path / "noisy", n_subjects=2, n_clips=12, seed=2, nuisance=1.0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = load_casme2(clean), load_casme2(noisy)
    assert [(s.key, s.onset, s.apex, s.offset, s.action_units, s.label) for s in a] == [
        (s.key, s.onset, s.apex, s.offset, s.action_units, s.label) for s in b]
    moved = 0
    for sa, sb in zip(a, b):
        ta, tb = load_ground_truth(sa), load_ground_truth(sb)
        assert np.array_equal(ta.intensity, tb.intensity)
        assert not ta.blink.any() and np.abs(ta.nuisance_flow).max() == 0.0
        moved += np.abs(tb.nuisance_flow).max() > 0.05
        # the same expression: its flow magnitude agrees up to the small head rotation and shift
        ma, mb = (np.hypot(*t.expression_flow.transpose(2, 0, 1)) for t in (ta, tb))
        assert abs(ma.sum() - mb.sum()) <= 0.1 * ma.sum() + 1e-3
        assert not np.array_equal(_grey(sa, "onset"), _grey(sb, "onset"))  # noise, light, JPEG
    assert moved >= len(a) // 2


def test_presets_and_overrides(tmp_path):
    easy = make_synthetic(tmp_path / "easy", n_subjects=2, n_clips=10, preset="easy", progress=False)
    params = synthetic_params(easy)
    assert params["preset"] == "easy" and params["world"]["amplitude"] == list(PRESETS["easy"].amplitude)
    given = make_synthetic(tmp_path / "given", n_subjects=2, n_clips=10, amplitude=6.0, nuisance=0.0, progress=False)
    world = synthetic_params(given)["world"]
    assert world["amplitude"] == [6.0, 6.0] and world["nuisance"] == 0.0
    assert world["expressivity"] == PRESETS["default"].expressivity  # the rest is the default preset's
    with pytest.raises(ValueError, match="unknown preset 'hard'"):
        make_synthetic(tmp_path / "x", preset="hard")
    with pytest.raises(ValueError, match="nuisance scales must be >= 0"):
        make_synthetic(tmp_path / "x", blinks=-1.0)


def test_class_dynamics_gives_classes_their_own_timing(tmp_path):
    root = make_synthetic(tmp_path / "dyn", n_subjects=3, n_clips=60, class_dynamics=True, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = load_casme2(root)
    span = {c: np.median([s.offset - s.onset for s in samples if s.label == c]) for c in ("surprise", "repression")}
    assert span["surprise"] < 0.6 * span["repression"]
    assert synthetic_params(root)["world"]["class_dynamics"] is True
    assert PRESETS["default"].class_dynamics is False


def test_the_face_detector_finds_the_faces(tmp_path):
    """OpenCV's Haar cascade, made for photographs, finds the face on at least 90 % of the default preset's onset
    frames (its own crop included, as on CASME II's cropped frames)."""
    root = make_synthetic(tmp_path / "faces", n_subjects=10, n_clips=40, seed=0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = load_casme2(root)
    found = [haar_face_detector(read_frame(s.frame_paths[int(frame_index(s, s.onset))])) is not None
             for s in samples]
    assert np.mean(found) >= 0.9, f"faces found on {np.mean(found):.0%} of the onset frames"


def test_the_clean_twin_is_the_same_set_without_nuisances(tiny_synthetic, tiny_samples, tmp_path):
    from mpt_utils.data import clean_twin

    twin = clean_twin(tiny_synthetic, tmp_path / "twin", progress=False)
    assert synthetic_params(twin)["world"]["nuisance"] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = load_dataset("synthetic", twin)
    assert [(s.key, s.onset, s.apex, s.offset, s.action_units) for s in clean] == [
        (s.key, s.onset, s.apex, s.offset, s.action_units) for s in tiny_samples]
    for noisy, quiet in zip(tiny_samples[:4], clean[:4]):
        a, b = load_ground_truth(noisy), load_ground_truth(quiet)
        assert np.array_equal(a.intensity, b.intensity) and np.array_equal(a.au_mask.any(), b.au_mask.any())
        assert np.abs(b.nuisance_flow).max() == 0.0
    assert clean_twin(tiny_synthetic, tmp_path / "twin", progress=False) == twin  # kept, not rendered again
    with pytest.raises(ValueError, match="no complete synthetic set"):
        clean_twin(tmp_path / "twin" / "Cropped")


def test_the_magnification_table_splits_expression_from_nuisance(tiny_synthetic, tiny_samples, tmp_path):
    from mpt_utils.data import clean_twin, magnification_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = load_dataset("synthetic", clean_twin(tiny_synthetic, tmp_path / "twin", progress=False))
    settings = {"as recorded": {"alpha": 0.0}, "alpha 20": {"alpha": 20.0}}
    table = magnification_table(tiny_samples[:6], clean, settings, size=64, num_frames=8, progress=False)
    assert list(table.index) == list(settings)
    assert (table["expression (grey levels)"] > 0).all() and (table["nuisance (grey levels)"] > 0).all()
    assert table["expression share"].between(0, 1).all()
    # magnification amplifies: both energies grow with alpha
    assert (table.loc["alpha 20"].iloc[:2] > table.loc["as recorded"].iloc[:2]).all()
    itself = magnification_table(clean[:6], clean, settings, size=64, num_frames=8, progress=False)
    assert (itself["nuisance (grey levels)"] == 0).all() and (itself["expression share"] == 1).all()
    with pytest.raises(ValueError, match="no clean twin"):
        magnification_table(tiny_samples, clean[:3], settings, progress=False)
