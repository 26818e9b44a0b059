"""Nuisances with their own timing: head motion, blinks, gaze shifts, lighting. Each has a scale (0: off).

A :class:`NuisanceTrack` holds one clip's nuisances frame by frame. It is drawn from the generator's *nuisance*
random stream, never from the stream that draws identities, action units and timing, and every value is drawn
whatever the scales (a scale only multiplies), so the same seed with ``nuisance=0`` and ``nuisance=1`` gives the
same clips apart from the nuisances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NuisanceScales:
    """How strong each nuisance is (all multiplied by ``nuisance``; 0 turns one off).

    head_motion: rigid head motion left after registration: a slow drift (about 0.4 px and 0.3 degrees over a
        clip), a nod
        in about one clip of three (pixels at 224 px, times this scale).
    jitter: per-frame head jitter, the standard deviation of a random walk's step in pixels.
    blinks: expected number of blinks per clip (a blink closes the lids for 20-35 frames at 200 fps).
    gaze: expected number of gaze shifts per clip (a saccade of 5-10 frames to a new iris position).
    lighting: a slow drift of the brightness (about 2 %) and of a light gradient across the face.
    flicker: illumination flicker, the relative standard deviation of the brightness per frame.
    noise: sensor noise, standard deviation in grey levels per pixel and frame.
    jpeg: JPEG compression strength: the frames are written at quality 100 - 100 * jpeg (times ``nuisance``).
    """

    head_motion: float = 1.2
    jitter: float = 0.05
    blinks: float = 0.25
    gaze: float = 0.2
    lighting: float = 1.0
    flicker: float = 0.006
    noise: float = 1.5
    jpeg: float = 0.10

    def times(self, factor: float) -> NuisanceScales:
        """Every scale multiplied by ``factor`` (the single ``nuisance`` knob)."""
        return NuisanceScales(**{k: v * factor for k, v in vars(self).items()})


@dataclass(frozen=True)
class NuisanceTrack:
    """One clip's nuisances, one value per stored frame (T frames).

    angle (T,): head rotation in radians about the face centre; shift (T, 2): head translation in pixels;
    gaze (T, 2): iris displacement in pixels; blink (T,): lid closure, 0 open .. 1 closed;
    gain (T,): global brightness factor; gradient (T,): strength of a light gradient across the face
    (relative change from the face centre to its edge) along ``gradient_angle``; noise: sensor noise std
    (grey levels); jpeg_quality: the frames' JPEG quality.
    """

    angle: np.ndarray
    shift: np.ndarray
    gaze: np.ndarray
    blink: np.ndarray
    gain: np.ndarray
    gradient: np.ndarray
    gradient_angle: float
    noise: float
    jpeg_quality: int


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _events(rng: np.random.Generator, rate: float, n: int, max_events: int = 3) -> list[float]:
    """Start times (fractions of the clip) of a Poisson number of events of the given rate; always draws
    ``max_events`` times so that the stream's use does not depend on the rate."""
    u = rng.random(max_events)
    starts = rng.random(max_events)
    p = np.exp(-rate)  # Poisson by inversion, from the uniforms drawn above
    cumulative, k = p, 0
    while k < max_events and u[0] > cumulative:
        k += 1
        p *= rate / k
        cumulative += p
    return sorted(starts[:k].tolist())


def draw_track(rng: np.random.Generator, n_frames: int, scales: NuisanceScales, pixel_scale: float,
               eye_height: float) -> NuisanceTrack:
    """Draw one clip's nuisances. ``pixel_scale``: pixels of this frame per pixel at 224 px; ``eye_height``:
    the open eye's height in pixels (a gaze shift moves the iris by up to about a third of it)."""
    t = np.linspace(0.0, 1.0, n_frames, dtype=np.float64)
    frames = np.arange(n_frames, dtype=np.float64)

    # head: a drift, a nod (a smooth down-and-up bump), a random-walk jitter
    drift_px = rng.normal(0.0, 0.4, 2) * pixel_scale
    drift_rad = np.deg2rad(rng.normal(0.0, 0.3))
    has_nod = rng.random() < 0.35
    nod_at, nod_len = rng.uniform(0.1, 0.9), rng.uniform(20, 60)
    nod_px, nod_rad = rng.uniform(0.5, 2.0) * pixel_scale, np.deg2rad(rng.uniform(0.2, 0.8))
    steps = rng.normal(0.0, 1.0, (n_frames, 2))
    nod = np.exp(-0.5 * ((frames - nod_at * n_frames) / (nod_len / 4)) ** 2) * float(has_nod)
    shift = scales.head_motion * (t[:, None] * drift_px[None, :] + nod[:, None] * np.array([0.0, nod_px]))
    shift = shift + scales.jitter * pixel_scale * np.cumsum(steps, axis=0)
    angle = scales.head_motion * (t * drift_rad + nod * nod_rad)

    # blinks: the lids close and reopen (cosine profile)
    blink = np.zeros(n_frames)
    lengths = rng.uniform(20, 35, 3)
    depths = rng.uniform(0.7, 1.0, 3)
    for k, start in enumerate(_events(rng, scales.blinks, n_frames)):
        phase = (frames - start * n_frames) / lengths[k]
        blink = np.maximum(blink, depths[k] * np.where((phase >= 0) & (phase <= 1), np.sin(np.pi * phase) ** 2, 0.0))

    # gaze: saccades to new iris positions, held
    gaze = np.zeros((n_frames, 2))
    targets = rng.uniform(-1.0, 1.0, (3, 2)) * np.array([0.35, 0.15]) * eye_height
    durations = rng.uniform(5, 10, 3)
    for k, start in enumerate(_events(rng, scales.gaze, n_frames)):
        gaze += _smoothstep((frames - start * n_frames) / durations[k])[:, None] * targets[k][None, :]

    # lighting: slow drift of brightness and of a gradient; per-frame flicker
    gain_drift, gradient_drift = rng.normal(0.0, 0.02), rng.normal(0.0, 0.03)
    gradient_angle = float(rng.uniform(0, 2 * np.pi))
    flicker = rng.standard_normal(n_frames)
    gain = 1.0 + scales.lighting * gain_drift * t + scales.flicker * flicker
    gradient = scales.lighting * gradient_drift * t
    return NuisanceTrack(
        angle=angle.astype(np.float32), shift=shift.astype(np.float32), gaze=gaze.astype(np.float32),
        blink=np.clip(blink, 0, 1).astype(np.float32),
        gain=gain.astype(np.float32), gradient=gradient.astype(np.float32), gradient_angle=gradient_angle,
        noise=float(scales.noise), jpeg_quality=int(round(100 - 100 * min(0.9, scales.jpeg))),
    )
