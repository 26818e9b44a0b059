"""Motion preprocessing: approximate rank pooling and Eulerian motion magnification.

Rank pooling (the paper's eq. 1, section III-B; Bilen et al. 2017) summarises a clip in one "dynamic image"
``d = sum_t a_t I_t``. Eulerian magnification (eqs. 4-7, section III-B; Wu et al. 2012) amplifies the temporal
changes of each spatial frequency band of a Laplacian pyramid and returns the magnified video.

Why the fast :func:`magnify` is exact
-------------------------------------
Every step of Eulerian magnification is linear: the Laplacian pyramid, the per-level gains, the
temporal IIR filter (started in the steady state of the first frame, i.e. linear in the input)
and the reconstruction. Linear operations that act on different axes commute, so

    M = I + sum_l alpha_l * Up_l(BP(L_l(I)))  =  I + BP( sum_l alpha_l * Up_l(L_l(I)) )

The bracket is one *weighted reconstruction* per frame, and the temporal band-pass BP of a
T-frame clip is a fixed ``T x T`` matrix. So the fast path filters one full-resolution signal
with one matrix product instead of filtering every pyramid level separately; with a single gain
for all levels the bracket is simply ``alpha * (I - lowpass(I))``. :func:`magnify_reference` is
the straightforward per-level implementation; the tests check that both agree.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import cv2
import numpy as np
from scipy import signal

from .config import DYNAMIC_SCALINGS, PAPER  # DYNAMIC_SCALINGS: the ways scale_dynamic_image maps to [0, 1]

# --- rank pooling --------------------------------------------------------------------------------


def rank_pool_weights(num_frames: int) -> np.ndarray:
    """Approximate rank pooling coefficients ``a_t``, shape ``(T,)``, float64.

    ``a_t = 2(T - t + 1) - (T + 1)(H_T - H_{t-1})`` for ``t = 1..T`` with harmonic numbers
    ``H_k = sum_{i<=k} 1/i`` and ``H_0 = 0``. They sum to zero, so a static clip pools to 0.

    >>> rank_pool_weights(3).round(4).tolist()
    [-1.3333, 0.6667, 0.6667]
    """
    if num_frames < 1:
        raise ValueError(f"rank pooling needs at least one frame, got T={num_frames}")
    t = np.arange(1, num_frames + 1, dtype=np.float64)
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / t)])  # H_0 .. H_T
    return 2.0 * (num_frames - t + 1) - (num_frames + 1) * (harmonic[-1] - harmonic[:-1])


def rank_pool(frames: np.ndarray) -> np.ndarray:
    """Dynamic image of a clip (or a batch of clips).

    Parameters
    ----------
    frames: ``(T, H, W, C)`` or ``(N, T, H, W, C)``, uint8 or float. Values are used as they
        are (uint8 stays on the 0..255 scale).

    Returns
    -------
    ``(H, W, C)`` or ``(N, H, W, C)`` float32: ``sum_t a_t I_t``; zero for a static clip.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (4, 5):
        raise ValueError(f"frames must be (T, H, W, C) or (N, T, H, W, C), got shape {frames.shape}")
    weights = rank_pool_weights(frames.shape[-4]).astype(np.float32)
    # The weights sum to zero, so sum_t a_t I_t = sum_t a_t (I_t - I_1): pooling the change from the
    # first frame is the same image, exactly zero for a static clip, and better conditioned in float32.
    change = frames.astype(np.float32) - frames[..., :1, :, :, :].astype(np.float32)
    # contract the time axis (-4) with the weights: (..., T, H, W, C) -> (..., H, W, C)
    return np.einsum("t,...thwc->...hwc", weights, change)


def scale_dynamic_image(d: np.ndarray, method: str = PAPER.dynamic_scaling) -> np.ndarray:
    """Scale a dynamic image to [0, 1] per image: the model's input scaling.

    ``d``: ``(H, W, C)`` or ``(N, H, W, C)``. ``method``:

    - ``"minmax"``: ``(d - min d) / (max d - min d)``. The full range is always used, but "no change" (d = 0)
      lands at a different grey level in every clip, and one extreme pixel sets the scale of all the others.
    - ``"zero_centred"``: ``d / (2 max|d|) + 0.5``. No change is mid-grey (0.5) in every clip, and the sign of the
      change is kept; one extreme pixel still sets the scale.

    A constant image (a static clip, ``T = 1``) has no range to divide by and maps to 0.5 everywhere. The model
    then normalises the result with the backbone's mean and std.
    """
    if method not in DYNAMIC_SCALINGS:
        raise ValueError(f"unknown dynamic-image scaling {method!r}; choose one of {list(DYNAMIC_SCALINGS)}")
    d = np.asarray(d, dtype=np.float32)
    axes = tuple(range(d.ndim - 3, d.ndim))
    if method == "zero_centred":
        peak = np.abs(d).max(axis=axes, keepdims=True)
        flat = peak <= 1e-12
        return np.where(flat, np.float32(0.5), d / np.where(flat, 1.0, 2 * peak) + 0.5).astype(np.float32)
    lo = d.min(axis=axes, keepdims=True)
    span = d.max(axis=axes, keepdims=True) - lo
    flat = span <= 1e-12 * np.maximum(1.0, np.abs(lo))
    scaled = (d - lo) / np.where(flat, 1.0, span)
    return np.where(flat, np.float32(0.5), scaled).astype(np.float32)


def dynamic_image_to_uint8(d: np.ndarray) -> np.ndarray:
    """A dynamic image for display: min-max to 0..255 uint8 (constant images become mid-grey)."""
    return np.rint(scale_dynamic_image(d) * 255.0).astype(np.uint8)


# --- temporal filter -----------------------------------------------------------------------------


def clip_sampling_rate(fps: float, onset: int, offset: int, num_frames: int = 16) -> float:
    """Effective sampling rate (Hz) of a ``T``-frame clip resampled over onset..offset.

    The ``T`` frames span ``(offset - onset) / fps`` seconds, so consecutive frames are
    ``(offset - onset) / ((T - 1) fps)`` seconds apart: ``fs = (T - 1) fps / (offset - onset)``.
    Clips shorter than ``T`` source frames are interpolated, so the same formula holds.
    """
    if offset <= onset:
        raise ValueError(f"offset ({offset}) must come after onset ({onset})")
    return (max(num_frames, 2) - 1) * fps / (offset - onset)


def butter_bandpass(low_hz: float, high_hz: float, fs: float, order: int = PAPER.order) -> np.ndarray:
    """Butterworth band-pass as second-order sections (scipy's ``sos`` array).

    Raises a clear error for cut-offs that are not ``0 < low < high < fs / 2``.
    """
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError(f"the sampling rate fs must be a positive number of Hz, got {fs}")
    if not 0 < low_hz < high_hz:
        raise ValueError(f"need 0 < low_hz < high_hz, got low_hz={low_hz}, high_hz={high_hz}")
    if high_hz >= fs / 2:
        raise ValueError(
            f"high_hz={high_hz} Hz is at or above the Nyquist frequency fs/2={fs / 2:g} Hz; lower "
            "high_hz or raise fs"
        )
    if int(order) != order or order < 1:
        raise ValueError(f"order must be a positive integer, got {order}")
    return signal.butter(int(order), [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")


def causal_filter_matrix(sos: np.ndarray, num_frames: int) -> np.ndarray:
    """The ``(T, T)`` matrix ``F`` of a causal IIR filter started in the first frame's steady state.

    For a signal ``x`` of ``T`` samples, ``F @ x`` equals ``sosfilt(sos, x, zi=sosfilt_zi(sos) *
    x[0])``: the filter behaves as if the first frame had been shown forever, so a static clip
    gives zero (a band-pass has no DC gain) and any length works, even ``T = 2``.
    """
    return _filter_matrix(sos.tobytes(), sos.shape, num_frames).copy()


@lru_cache(maxsize=64)
def _filter_matrix(sos_bytes: bytes, shape: tuple[int, int], num_frames: int) -> np.ndarray:
    sos = np.frombuffer(sos_bytes, dtype=np.float64).reshape(shape).copy()
    zi = signal.sosfilt_zi(sos)
    basis = np.eye(num_frames)
    # the response is linear in x (zi scales with x[0]), so column j is the response to e_j
    columns = [signal.sosfilt(sos, basis[:, j], zi=zi * basis[0, j])[0] for j in range(num_frames)]
    return np.stack(columns, axis=1)


def expression_intensity(t: np.ndarray, onset: float, apex: float, offset: float) -> np.ndarray:
    """The onset-apex-offset intensity of an expression at times ``t``: float64, same shape as ``t``.

    A smooth (raised-cosine) rise from 0 at the onset to 1 at the apex and a smooth fall back to 0 at
    the offset; 0 outside onset..offset. ``t`` may be frame numbers or fractions of the clip; the
    synthetic set renders its expressions with this curve, and :func:`apex_gain` filters it.
    """
    t = np.asarray(t, dtype=np.float64)
    tiny = np.finfo(np.float64).tiny
    rise = (t >= onset) & (t <= apex)
    fall = (t > apex) & (t <= offset)
    out = np.zeros_like(t)
    out[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - onset) / max(apex - onset, tiny))
    out[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - apex) / max(offset - apex, tiny))
    return out


def apex_gain(order: int, fs: float, num_frames: int = PAPER.num_frames, apex_fraction: float = 0.45,
              low_hz: float = PAPER.low_hz, high_hz: float = PAPER.high_hz) -> float:
    """Band-pass output at the apex for a unit onset-to-apex motion (notebook 03's figure).

    The motion is :func:`expression_intensity` over a ``T``-frame clip from onset (0) to offset (1), the
    apex ``apex_fraction`` of the way.
    """
    profile = expression_intensity(np.linspace(0.0, 1.0, num_frames), 0.0, apex_fraction, 1.0)
    response = causal_filter_matrix(butter_bandpass(low_hz, high_hz, fs, order), num_frames) @ profile
    apex_index = int(np.argmax(profile))
    return float(response[apex_index])


# --- Laplacian pyramid ---------------------------------------------------------------------------


def max_levels(height: int, width: int, min_size: int = 4) -> int:
    """Pyramid depth at which the coarsest level still has at least ``min_size`` pixels a side."""
    levels, h, w = 0, height, width
    while min(h, w) > 1 and (h + 1) // 2 >= min_size and (w + 1) // 2 >= min_size:
        h, w = (h + 1) // 2, (w + 1) // 2
        levels += 1
    return levels


def _level_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    shapes = [(height, width)]
    for _ in range(levels):
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Laplacian pyramid of one image ``(H, W, C)`` float32: ``levels`` band images + residual.

    Level 0 is the finest band; the last entry is the coarsest Gaussian level (the residual).
    Odd sizes work: each level is ``ceil(size / 2)`` of the one above.
    """
    shapes = _level_shapes(image.shape[0], image.shape[1], levels)
    bands, current = [], np.ascontiguousarray(image, dtype=np.float32)
    for lvl in range(levels):
        h, w = shapes[lvl + 1]
        down = cv2.pyrDown(current, dstsize=(w, h))
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        bands.append(_same_channels(current - _same_channels(up, current), current))
        current = _same_channels(down, current)
    bands.append(current)
    return bands


def reconstruct(pyramid: list[np.ndarray]) -> np.ndarray:
    """Invert :func:`laplacian_pyramid`: upsample the residual and add the bands back."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = _same_channels(cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0])), band) + band
    return image


def _same_channels(result: np.ndarray, like: np.ndarray) -> np.ndarray:
    """OpenCV drops a trailing channel axis of size 1; put it back."""
    return result.reshape(result.shape[:2] + like.shape[2:])


def level_gains(alpha: float, levels: int, height: int, width: int,
                lambda_c: float | None = PAPER.lambda_c, skip_finest: bool = PAPER.skip_finest) -> np.ndarray:
    """Per-level magnification ``alpha_l`` for ``levels`` bands (the residual always gets 0).

    Without ``lambda_c`` every band gets ``alpha``. With MIT's spatial cut-off ``lambda_c``
    (pixels), band ``l`` (representative wavelength ``lambda_l``, the image diagonal / 3 halved per
    level from the coarsest) gets ``min(alpha, (1 + alpha) lambda_l / lambda_c - 1)``, so fine
    bands, where large amplification would exceed the motion approximation, are attenuated.
    ``skip_finest`` leaves the finest band unamplified, as MIT's code does.
    """
    gains = np.full(levels, float(alpha))
    if lambda_c is not None:
        if lambda_c <= 0:
            raise ValueError(f"lambda_c must be positive (pixels), got {lambda_c}")
        diag_wavelength = np.hypot(height, width) / 3.0
        wavelengths = diag_wavelength / 2.0 ** np.arange(levels - 1, -1, -1)  # finest first
        gains = np.clip(np.minimum(alpha, (1 + alpha) * wavelengths / lambda_c - 1), 0.0, None)
    if skip_finest and levels:
        gains[0] = 0.0
    return gains


# --- colour --------------------------------------------------------------------------------------

_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=np.float32,
)


def _colour_weights(color: str, chroma_attenuation: float) -> np.ndarray:
    """The (3, 3) matrix that applies YIQ chroma attenuation in RGB space (identity for RGB)."""
    if color == "rgb":
        return np.eye(3, dtype=np.float32)
    if color != "yiq":
        raise ValueError(f"color must be 'rgb' or 'yiq', got {color!r}")
    if chroma_attenuation < 0:
        raise ValueError(f"chroma_attenuation must be >= 0, got {chroma_attenuation}")
    attenuate = np.diag([1.0, chroma_attenuation, chroma_attenuation]).astype(np.float32)
    return np.linalg.inv(_RGB_TO_YIQ) @ attenuate @ _RGB_TO_YIQ


# --- magnification -------------------------------------------------------------------------------


def _check_video(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames must be (T, H, W, 1 or 3), got shape {frames.shape}")
    if frames.shape[0] < 2:
        raise ValueError(f"magnification needs at least 2 frames, got T={frames.shape[0]}")
    if not np.issubdtype(frames.dtype, np.integer) and frames.size and float(frames.max()) > 1.0 + 1e-6:
        raise ValueError("float frames must lie in [0, 1]; pass uint8 frames for the 0..255 scale")
    return frames


def _resolve(frames, alpha, low_hz, high_hz, fs, order, levels, sample):
    """Validate the arguments shared by both implementations; return (sos, levels, fs)."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if isinstance(fs, str):
        if fs != "per_clip":
            raise ValueError(f"fs must be a number of Hz or 'per_clip', got {fs!r}")
        if sample is None:
            raise ValueError("fs='per_clip' needs the sample (magnify(..., sample=sample))")
        fs = clip_sampling_rate(sample.fps, sample.onset, sample.offset, frames.shape[0])
    sos = butter_bandpass(low_hz, high_hz, float(fs), order)
    deepest = max_levels(frames.shape[1], frames.shape[2], min_size=1)
    levels = max_levels(frames.shape[1], frames.shape[2]) if levels is None else int(levels)
    if not 0 <= levels <= deepest:
        raise ValueError(f"levels must be in 0..{deepest} for {frames.shape[1]}x{frames.shape[2]} frames")
    return sos, levels, float(fs)


def _finish(magnified: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(magnified), info.min, info.max).astype(dtype)
    return np.clip(magnified, 0.0, 1.0).astype(dtype)


def magnify(
    frames: np.ndarray,
    alpha: float = PAPER.alpha,
    low_hz: float = PAPER.low_hz,
    high_hz: float = PAPER.high_hz,
    fs: float | Literal["per_clip"] = PAPER.fs,
    order: int = PAPER.order,
    levels: int | None = PAPER.levels,
    lambda_c: float | None = PAPER.lambda_c,
    skip_finest: bool = PAPER.skip_finest,
    color: str = PAPER.color,
    chroma_attenuation: float = PAPER.chroma_attenuation,
    sample=None,
) -> np.ndarray:
    """Eulerian motion magnification; returns the magnified video.

    Parameters
    ----------
    frames: ``(T, H, W, C)``, ``C`` 1 or 3, uint8 (0..255) or float (0..1); ``T >= 2``.
    alpha: magnification factor (paper: 20; ``alpha = 0`` returns the input).
    low_hz, high_hz: Butterworth band-pass cut-offs in Hz (paper: 0.4-4).
    fs: sampling rate of the clip in Hz, or ``"per_clip"`` to compute it from ``sample`` with
        :func:`clip_sampling_rate`. The default 30 Hz and the first-order filter are chosen in
        notebook 03 (the effective rate of the real datasets' clips is about 30-75 Hz).
    order: Butterworth order (MIT's code: 1).
    levels: Laplacian pyramid depth; ``None`` goes down to about 4 pixels. The residual (coarsest)
        level is never amplified.
    lambda_c: MIT's spatial cut-off in pixels for per-level attenuation (``None``: off).
    skip_finest: leave the finest band unamplified (MIT's code does).
    color: ``"rgb"``, or ``"yiq"`` to amplify chroma by ``chroma_attenuation`` times less.
    sample: the :class:`~mpt_utils.data.Sample`, needed only for ``fs="per_clip"``.

    Returns
    -------
    Same shape and dtype as ``frames``, clipped to the valid range. A static clip is returned
    unchanged: the filter starts in the steady state of the first frame.
    """
    frames = _check_video(frames)
    sos, levels, _ = _resolve(frames, alpha, low_hz, high_hz, fs, order, levels, sample)
    if alpha == 0:
        return frames.copy()
    t, h, w, c = frames.shape
    video = frames.astype(np.float32)
    gains = level_gains(alpha, levels, h, w, lambda_c, skip_finest)

    # 1. spatial: the weighted reconstruction S_t = sum_l alpha_l Up_l(L_l(I_t)) of every frame.
    #    With one gain for all bands it is alpha * (I_t - lowpass(I_t)): the gain moves into step 2.
    if levels == 0:
        return frames.copy()  # only the residual exists, and it is never amplified
    if np.all(gains == gains[0]):
        weighted = video - np.stack([_lowpass(frame, levels) for frame in video])
        gain = gains[0]
    else:
        weighted = np.stack([_weighted_reconstruction(frame, gains) for frame in video])
        gain = 1.0
    if color != "rgb" or chroma_attenuation != 1.0:
        if c != 3:
            raise ValueError("color='yiq' and chroma attenuation need 3-channel frames")
        weighted = weighted @ _colour_weights(color, chroma_attenuation).T

    # 2. temporal: one (T, T) matrix, times the gain, applied to every pixel and channel at once.
    filt = (gain * causal_filter_matrix(sos, t)).astype(np.float32)
    bandpassed = (filt @ weighted.reshape(t, -1)).reshape(t, h, w, c)
    return _finish(video + bandpassed, frames.dtype)


def _weighted_reconstruction(frame: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """``sum_l gains[l] * Up_l(L_l(frame))``: a reconstruction with scaled bands, no residual."""
    pyramid = laplacian_pyramid(frame, len(gains))
    return reconstruct([g * band for g, band in zip(gains, pyramid[:-1])] + [np.zeros_like(pyramid[-1])])


def _lowpass(image: np.ndarray, levels: int) -> np.ndarray:
    """What the residual contributes to a reconstruction: ``levels`` pyrDowns then pyrUps."""
    shapes = _level_shapes(image.shape[0], image.shape[1], levels)
    current = image
    for h, w in shapes[1:]:
        current = cv2.pyrDown(current, dstsize=(w, h))
    for h, w in reversed(shapes[:-1]):
        current = cv2.pyrUp(current, dstsize=(w, h))
    return _same_channels(current, image)


def magnify_reference(
    frames: np.ndarray,
    alpha: float = PAPER.alpha,
    low_hz: float = PAPER.low_hz,
    high_hz: float = PAPER.high_hz,
    fs: float | Literal["per_clip"] = PAPER.fs,
    order: int = PAPER.order,
    levels: int | None = PAPER.levels,
    lambda_c: float | None = PAPER.lambda_c,
    skip_finest: bool = PAPER.skip_finest,
    color: str = PAPER.color,
    chroma_attenuation: float = PAPER.chroma_attenuation,
    sample=None,
) -> np.ndarray:
    """The textbook per-level implementation (eqs. 4-7), kept to check and benchmark :func:`magnify`.

    Per frame a Laplacian pyramid; per level a causal ``sosfilt`` along time started in the first
    frame's steady state; amplification by ``alpha_l``; reconstruction; ``M = I + Recon``. With
    ``color="yiq"`` all of it happens on the frames converted to YIQ, the I and Q bands amplified
    ``chroma_attenuation`` times less, and ``M`` is converted back to RGB (as in Wu et al.'s code).
    """
    frames = _check_video(frames)
    sos, levels, _ = _resolve(frames, alpha, low_hz, high_hz, fs, order, levels, sample)
    _colour_weights(color, chroma_attenuation)  # validates both
    yiq = color == "yiq"
    if yiq and frames.shape[-1] != 3:
        raise ValueError("color='yiq' and chroma attenuation need 3-channel frames")
    video = frames.astype(np.float32)
    if yiq:
        video = video @ _RGB_TO_YIQ.T
    t, h, w, _ = video.shape
    gains = level_gains(alpha, levels, h, w, lambda_c, skip_finest)
    channel_gain = np.array([1.0, chroma_attenuation, chroma_attenuation], np.float32) if yiq else 1.0
    pyramids = [laplacian_pyramid(frame, levels) for frame in video]
    zi = signal.sosfilt_zi(sos)
    amplified_levels = []
    for lvl in range(levels):
        band = np.stack([p[lvl] for p in pyramids])  # (T, h_l, w_l, C)
        init = zi.reshape(zi.shape + (1,) * (band.ndim - 1)) * band[0][None, None]
        filtered, _ = signal.sosfilt(sos, band, axis=0, zi=init)
        amplified_levels.append(gains[lvl] * channel_gain * filtered)
    out = np.empty_like(video)
    for i in range(t):
        residual = np.zeros_like(pyramids[i][-1])
        out[i] = video[i] + reconstruct([a[i] for a in amplified_levels] + [residual])
    if yiq:
        out = out @ np.linalg.inv(_RGB_TO_YIQ).T
    return _finish(out, frames.dtype)


# --- how much of a magnified clip is expression -----------------------------------------------------


def magnification_energy(clip: np.ndarray, clean_clip: np.ndarray, **magnify_kwargs: Any) -> dict[str, float]:
    """Expression and nuisance energy of a magnified clip, from the clip and its nuisance-free twin.

    clip, clean_clip: ``(T, H, W, C)`` uint8, the same clip rendered with and without nuisances (same identity,
    action units, timing: :func:`~mpt_utils.data.clean_twin`). Both are magnified with ``magnify_kwargs``
    (:func:`magnify`'s arguments; ``alpha=0`` scores the clip as it is). With ``M`` the magnified clip and
    ``M_c`` the magnified twin, change measured from the first frame:

    - expression: the RMS over frames, pixels and channels of ``M_c[t] - M_c[0]``, in grey levels;
    - nuisance: the RMS of ``(M[t] - M[0]) - (M_c[t] - M_c[0])``, everything the nuisances add, amplified or not;
    - expression_share: expression / (expression + nuisance), in [0, 1]: 1 on a clean clip, 0.5 when both are
      equal. NaN only when nothing moves at all.
    """
    clip, clean_clip = np.asarray(clip), np.asarray(clean_clip)
    if clip.shape != clean_clip.shape:
        raise ValueError(f"the clip and its clean twin must have the same shape, got {clip.shape} and "
                         f"{clean_clip.shape}")
    if clip.dtype != np.uint8 or clean_clip.dtype != np.uint8:
        raise ValueError("pass uint8 clips (0..255), as the model's inputs are: energies are in grey levels")
    change = magnify(clip, **magnify_kwargs).astype(np.float32)
    clean_change = magnify(clean_clip, **magnify_kwargs).astype(np.float32)
    change -= change[:1]
    clean_change -= clean_change[:1]
    expression = float(np.sqrt(np.mean(clean_change**2)))
    nuisance = float(np.sqrt(np.mean((change - clean_change) ** 2)))
    total = expression + nuisance
    return {"expression": expression, "nuisance": nuisance,
            "expression_share": expression / total if total > 0 else float("nan")}
