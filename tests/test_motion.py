"""Rank pooling and Eulerian magnification: closed forms, properties, fast == per-level reference."""

from __future__ import annotations

import numpy as np
import pytest

from mpt_utils.motion import (
    butter_bandpass,
    causal_filter_matrix,
    clip_sampling_rate,
    dynamic_image_to_uint8,
    laplacian_pyramid,
    level_gains,
    magnify,
    magnify_reference,
    rank_pool,
    rank_pool_weights,
    reconstruct,
    scale_dynamic_image,
)

RNG = np.random.default_rng(0)


# --- rank pooling --------------------------------------------------------------------------------

@pytest.mark.parametrize("T, expected", [
    (2, [-0.5, 0.5]),
    (3, [-4 / 3, 2 / 3, 2 / 3]),
    (4, [-2.4167, 0.5833, 1.0833, 0.75]),
])
def test_rank_pool_weights_test_vectors(T, expected):
    np.testing.assert_allclose(rank_pool_weights(T), expected, atol=1e-4)


@pytest.mark.parametrize("T", [1, 2, 5, 16, 40])
def test_rank_pool_weights_sum_to_zero(T):
    assert abs(rank_pool_weights(T).sum()) < 1e-9


def test_rank_pool_weights_not_the_popular_wrong_port():
    T = 16
    wrong = np.array([(2 * t - T) / t for t in range(1, T + 1)])
    assert not np.allclose(rank_pool_weights(T), wrong)


def test_static_clip_pools_to_zero():
    clip = np.repeat(RNG.integers(0, 256, (1, 8, 9, 3), dtype=np.uint8), 16, axis=0)
    assert np.abs(rank_pool(clip)).max() == 0.0


def test_reversing_a_linear_clip_negates_the_dynamic_image():
    a, b = RNG.random((6, 7, 3)), RNG.random((6, 7, 3))
    clip = np.stack([a + t * b for t in range(10)]).astype(np.float32)
    d = rank_pool(clip)
    np.testing.assert_allclose(rank_pool(clip[::-1]), -d, atol=1e-4)
    assert np.abs(d).max() > 1.0


def test_rank_pool_batch_equals_single_and_matches_weights():
    batch = RNG.integers(0, 256, (3, 5, 4, 4, 3), dtype=np.uint8)
    out = rank_pool(batch)
    assert out.shape == (3, 4, 4, 3) and out.dtype == np.float32
    for clip, d in zip(batch, out):
        np.testing.assert_allclose(d, np.tensordot(rank_pool_weights(5), clip.astype(float), 1), rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="frames must be"):
        rank_pool(np.zeros((4, 4, 3)))


def test_dynamic_image_scaling_and_constant_images():
    d = RNG.normal(size=(2, 5, 5, 3)).astype(np.float32)
    scaled = scale_dynamic_image(d)
    assert np.isclose(scaled[0].min(), 0) and np.isclose(scaled[0].max(), 1)
    constant = scale_dynamic_image(np.zeros((5, 5, 3)))
    assert np.all(constant == 0.5) and np.isfinite(constant).all()
    shown = dynamic_image_to_uint8(rank_pool(np.zeros((1, 4, 4, 3), np.uint8)))  # T = 1: constant
    assert shown.dtype == np.uint8 and np.all(shown == 128)


def test_zero_centred_scaling_keeps_no_change_at_mid_grey_in_every_clip():
    d = np.zeros((2, 4, 4, 3), np.float32)
    d[0, 0, 0] = 4.0  # clip 0: one pixel brightens strongly, one darkens a little
    d[0, 1, 1] = -1.0
    d[1, 2, 2] = -3.0  # clip 1: one pixel darkens
    centred, minmax = scale_dynamic_image(d, "zero_centred"), scale_dynamic_image(d, "minmax")
    unchanged = d == 0
    assert np.all(centred[unchanged] == 0.5)  # the same grey in both clips
    assert minmax[0][unchanged[0]].max() == pytest.approx(0.2) and minmax[1][unchanged[1]].min() == 1.0  # not so
    assert centred[0, 0, 0, 0] == 1.0 and centred[0, 1, 1, 0] == pytest.approx(0.375)  # sign and ratio kept
    assert centred[1, 2, 2, 0] == 0.0 and 0 <= centred.min() and centred.max() <= 1
    assert np.all(scale_dynamic_image(np.zeros((5, 5, 3)), "zero_centred") == 0.5)
    with pytest.raises(ValueError, match="unknown dynamic-image scaling"):
        scale_dynamic_image(d, "zscore")


def test_the_scaling_table_measures_both_scalings(tiny_samples):
    from mpt_utils.train import dynamic_scaling_table

    table = dynamic_scaling_table(tiny_samples, size=32, num_frames=8, grids=(4,))
    assert list(table.index) == ["minmax", "zero_centred"]
    assert table.loc["zero_centred", "no-change grey: mean"] == 0.5
    assert table.loc["zero_centred", "no-change grey: std"] == 0.0
    assert table.loc["minmax", "no-change grey: std"] > 0  # min-max moves "no change" from clip to clip
    assert table["probe F1 (grid 4)"].between(0, 1).all()


# --- the filter ----------------------------------------------------------------------------------

def test_filter_matrix_equals_sosfilt_started_in_steady_state():
    from scipy import signal

    sos = butter_bandpass(0.4, 4.0, 30.0, order=2)
    x = RNG.normal(size=16)
    expected, _ = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * x[0])
    np.testing.assert_allclose(causal_filter_matrix(sos, 16) @ x, expected, atol=1e-12)


def test_clip_sampling_rate():
    assert clip_sampling_rate(200, 0, 100, 16) == pytest.approx(30.0)
    assert clip_sampling_rate(200, 10, 50, 16) == pytest.approx(75.0)
    with pytest.raises(ValueError):
        clip_sampling_rate(200, 10, 10)


# --- magnification properties --------------------------------------------------------------------

def _clip(T=16, H=40, W=48):
    base = RNG.integers(40, 200, (1, H, W, 3)).astype(np.float32)
    return np.clip(base + RNG.normal(0, 4, (T, H, W, 3)), 0, 255).astype(np.uint8)


def test_alpha_zero_returns_the_input():
    clip = _clip()
    np.testing.assert_array_equal(magnify(clip, alpha=0), clip)


def test_static_clip_is_unchanged():
    clip = np.repeat(_clip(T=1), 12, axis=0)
    np.testing.assert_array_equal(magnify(clip, alpha=20), clip)


def test_same_shape_dtype_and_range():
    clip = _clip()
    out = magnify(clip, alpha=50)
    assert out.shape == clip.shape and out.dtype == np.uint8
    f = magnify(clip / 255.0, alpha=50)
    assert f.dtype == np.float64 and f.min() >= 0 and f.max() <= 1


def _grating_clip(freq_hz, fs=30.0, seconds=10.0, size=128, wavelength=48, amplitude=0.01):
    t = np.arange(int(fs * seconds)) / fs
    x = np.arange(size)
    pattern = np.sin(2 * np.pi * x / wavelength)[None, :]  # (1, W), constant over rows
    contrast = 1 + amplitude * np.sin(2 * np.pi * freq_hz * t)  # (T,)
    frames = 0.5 + 0.2 * contrast[:, None, None] * np.repeat(pattern, size, axis=0)[None]  # (T, H, W)
    return t, np.repeat(frames[..., None], 3, axis=-1).astype(np.float64), pattern


def _oscillation_amplitude(video, t, freq_hz, pattern, settle):
    signal_t = (video[:, :, :, 0] - 0.5).mean(axis=1) @ pattern[0] / (pattern[0] @ pattern[0])  # per frame
    keep = t >= settle
    design = np.stack([np.sin(2 * np.pi * freq_hz * t[keep]), np.cos(2 * np.pi * freq_hz * t[keep]),
                       np.ones(keep.sum())], axis=1)
    coef, *_ = np.linalg.lstsq(design, signal_t[keep], rcond=None)
    return np.hypot(coef[0], coef[1])


def test_in_band_oscillation_is_amplified_by_one_plus_alpha():
    centre = np.sqrt(0.4 * 4.0)  # the band's geometric centre, about 1.26 Hz
    alpha = 10.0
    t, video, pattern = _grating_clip(centre)
    before = _oscillation_amplitude(video, t, centre, pattern, settle=3.0)
    after = _oscillation_amplitude(magnify(video, alpha=alpha, fs=30.0), t, centre, pattern, settle=3.0)
    assert after / before == pytest.approx(1 + alpha, rel=0.05)


def test_slow_drift_gets_far_less_gain_than_in_band_motion():
    alpha = 10.0
    t, video, pattern = _grating_clip(0.05, seconds=40.0)
    before = _oscillation_amplitude(video, t, 0.05, pattern, settle=10.0)
    after = _oscillation_amplitude(magnify(video, alpha=alpha, fs=30.0), t, 0.05, pattern, settle=10.0)
    assert after / before < 1 + 0.25 * alpha


def test_two_frame_clip_and_odd_sizes_work():
    two = _clip(T=2, H=37, W=53)
    assert magnify(two, alpha=20).shape == two.shape
    odd = _clip(T=9, H=61, W=45)
    fast, reference = magnify(odd, alpha=20, levels=5), magnify_reference(odd, alpha=20, levels=5)
    assert np.abs(fast.astype(int) - reference).max() <= 1  # uint8 rounding of float32 sums


@pytest.mark.parametrize("kwargs", [{}, {"levels": 2}, {"lambda_c": 20.0, "skip_finest": True}, {"order": 3},
                                    {"fs": 60.0, "low_hz": 1.0, "high_hz": 8.0},
                                    {"color": "yiq", "chroma_attenuation": 0.1},
                                    {"color": "yiq", "chroma_attenuation": 1.0, "lambda_c": 20.0, "skip_finest": True}])
def test_fast_equals_the_per_level_reference(kwargs):
    clip = _clip(T=16, H=48, W=40) / 255.0
    np.testing.assert_allclose(magnify(clip, **kwargs), magnify_reference(clip, **kwargs), atol=1e-5)


def test_per_clip_sampling_rate_uses_the_sample(tiny_samples):
    from mpt_utils.data import read_clip

    s = tiny_samples[0]
    clip = read_clip(s, 8, 32)
    fs = clip_sampling_rate(s.fps, s.onset, s.offset, 8)
    np.testing.assert_array_equal(magnify(clip, fs="per_clip", sample=s), magnify(clip, fs=fs))
    with pytest.raises(ValueError, match="needs the sample"):
        magnify(clip, fs="per_clip")


def test_yiq_chroma_attenuation_keeps_gray_motion_and_damps_colour():
    gray = np.repeat(RNG.integers(50, 200, (16, 32, 32, 1)), 3, axis=-1).astype(np.uint8)
    np.testing.assert_allclose(magnify(gray, color="yiq", chroma_attenuation=0.1).astype(float),
                               magnify(gray).astype(float), atol=1)
    colour = _clip(H=32, W=32)
    rgb_change = np.abs(magnify(colour).astype(float) - colour).mean()
    yiq_change = np.abs(magnify(colour, color="yiq", chroma_attenuation=0.0).astype(float) - colour).mean()
    assert yiq_change < rgb_change


def test_the_references_yiq_round_trip_is_exact_and_rgb_frames_are_required():
    clip = _clip(T=6, H=32, W=32) / 255.0
    np.testing.assert_allclose(magnify_reference(clip, alpha=0.0, color="yiq", chroma_attenuation=0.1), clip,
                               atol=1e-6)  # to YIQ and back, nothing amplified: the input again
    with pytest.raises(ValueError, match="3-channel"):
        magnify_reference(clip[..., :1], color="yiq")
    with pytest.raises(ValueError, match="color"):
        magnify_reference(clip, color="hsv")


def test_level_gains():
    np.testing.assert_array_equal(level_gains(20, 4, 64, 64), [20, 20, 20, 20])
    attenuated = level_gains(20, 6, 224, 224, lambda_c=16, skip_finest=True)
    assert attenuated[0] == 0 and attenuated[-1] == 20 and np.all(np.diff(attenuated) >= 0)


def test_laplacian_pyramid_reconstructs_exactly():
    frame = RNG.random((45, 37, 3)).astype(np.float32)
    np.testing.assert_allclose(reconstruct(laplacian_pyramid(frame, 4)), frame, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"low_hz": 4.0, "high_hz": 0.4}, "low_hz < high_hz"),
    ({"high_hz": 15.0, "fs": 30.0}, "Nyquist"),
    ({"alpha": -1.0}, "alpha must be >= 0"),
    ({"order": 0}, "order must be a positive integer"),
    ({"levels": 99}, "levels must be in"),
    ({"fs": "sometimes"}, "fs must be a number"),
    ({"color": "hsv"}, "color must be"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        magnify(_clip(T=4, H=16, W=16), **kwargs)


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\(T, H, W, 1 or 3\)"):
        magnify(np.zeros((4, 16, 16)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        magnify(np.zeros((1, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        magnify(np.full((4, 16, 16, 3), 200.0))


def test_magnification_energy_separates_expression_from_nuisance():
    from mpt_utils.motion import magnification_energy

    t = np.arange(16)[:, None, None, None]
    x = np.arange(32)[None, None, :, None]
    clean = np.broadcast_to(128 + 40 * np.sin(2 * np.pi * (x - 0.5 * np.minimum(t, 8)) / 16), (16, 32, 32, 3))
    clean = np.rint(clean).astype(np.uint8)
    noisy = np.clip(clean + RNG.normal(0, 4, clean.shape), 0, 255).astype(np.uint8)
    same = magnification_energy(clean, clean, alpha=0.0)
    assert same["nuisance"] == 0.0 and same["expression_share"] == 1.0 and same["expression"] > 0
    raw, magnified = magnification_energy(noisy, clean, alpha=0.0), magnification_energy(noisy, clean, alpha=20.0)
    assert raw["expression"] == same["expression"] and 4 < raw["nuisance"] < 8  # two frames of sigma-4 noise
    assert magnified["expression"] > raw["expression"] and 0 < magnified["expression_share"] < 1
    still = np.full((4, 8, 8, 3), 100, np.uint8)
    assert np.isnan(magnification_energy(still, still, alpha=20.0)["expression_share"])
    with pytest.raises(ValueError, match="same shape"):
        magnification_energy(noisy, clean[:8])
    with pytest.raises(ValueError, match="uint8"):
        magnification_energy(noisy / 255.0, clean / 255.0)
