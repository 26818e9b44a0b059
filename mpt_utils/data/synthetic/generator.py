"""``make_synthetic``: write a synthetic micro-expression dataset in the real CASME II layout, with ground truth.

Per clip: an identity (:mod:`.faces`), an emotion and its action units anchored to that face
(:mod:`.actions`), CASME II-like timing, nuisances with their own timing (:mod:`.nuisances`). Each frame is the
neutral face warped by the expression (scaled by its intensity curve) and the gaze, darkened by the AU's furrows,
covered by the lids during a blink, moved by the head, lit, noised and JPEG-compressed. The exact ground truth
(:mod:`.ground_truth`) is written beside the frames.

Two random streams: ``[seed, 0]`` draws everything about the content (identities, sessions, emotions, AUs,
amplitudes, timing), ``[seed, 1]`` the nuisances. Changing a nuisance scale changes only the nuisances.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from joblib import Parallel, delayed

from ...io import atomic_write_text, atomic_write_xlsx
from ...motion import expression_intensity
from ...runtime import progress_bar
from ..loaders import SYNTHETIC_MARKER
from .actions import ACTION_UNITS, expression_fields
from .faces import Identity, draw_identity, render_face
from .ground_truth import GroundTruth, write_ground_truth
from .nuisances import NuisanceScales, NuisanceTrack, draw_track

#: CASME II's emotion counts (the paper's 5 classes plus the fear/sadness clips it drops).
CASME2_COUNTS = {
    "happiness": 32,
    "surprise": 25,
    "disgust": 64,
    "repression": 27,
    "others": 99,
    "fear": 2,
    "sadness": 6,
}

#: Action-unit recipes per emotion, one drawn per clip ("L"/"R": one side of the face only). As in CASME II's
#: coding sheet, "others" shares AUs with the other classes (AU4, AU12, AU14, AU1/2, AU10, AU15).
EMOTION_AUS = {
    "happiness": ["6+12", "6+12", "12", "L12", "6+12+25", "12+25"],
    "surprise": ["1+2", "1+2+25", "1+2+26", "1+2", "R1+R2"],
    "disgust": ["4+9", "4+10", "9", "9+10", "4+7+9", "10", "4+7"],
    "repression": ["14", "15", "17", "15+17", "14+17", "L14"],
    "others": ["4", "7", "L12", "R14", "L10", "R2", "25", "L15", "7+25", "R1", "4+7", "1+4"],
    "fear": ["1+4+20"],
    "sadness": ["1+4+15"],
}


@dataclass(frozen=True)
class Preset:
    """A named world: the expression's amplitude range (pixels at 224 px, times the person's expressivity),
    how much people differ in expressivity (std of its log) and in the place and size of their face in the crop
    (``variation``, 1 as in CASME II's crops), how deep the AUs' furrows get (a factor on
    :data:`~.actions.APPEARANCE`) and how much the bunching skin's shading changes, the range of the
    expression's strength left at the coded offset (a fraction
    of the apex's), the nuisances, and whether classes have their own temporal profile."""

    amplitude: tuple[float, float]
    expressivity: float
    variation: float
    appearance: float
    shading: float
    residual: tuple[float, float]
    nuisances: NuisanceScales
    nuisance: float = 1.0
    class_dynamics: bool = False
    duration: float = 1.0


#: ``default``: CASME II-like difficulty (the tutorial's default). ``easy``: large motion, few nuisances (the
#: learning test and the first notebooks). ``macro``: macro-expressions for pre-training (MA2MI): several pixels
#: of motion, deeper furrows, onset to offset 1.5 times as long, CASME II's nuisances.
PRESETS: dict[str, Preset] = {
    "default": Preset(amplitude=(0.3, 1.35), expressivity=0.35, variation=1.0, appearance=0.2, shading=0.015,
                      residual=(0.2, 0.6), nuisances=NuisanceScales()),
    "easy": Preset(amplitude=(8.0, 12.0), expressivity=0.1, variation=0.3, appearance=1.0, shading=0.015,
                   residual=(0.2, 0.6), nuisances=NuisanceScales(), nuisance=0.1),
    "macro": Preset(amplitude=(3.0, 8.0), expressivity=0.35, variation=1.0, appearance=1.0, shading=0.015,
                    residual=(0.0, 0.3), nuisances=NuisanceScales(), duration=1.5),
}

#: With ``processes=None``, one more process renders clips per this many clips (up to one per CPU core).
CLIPS_PER_PROCESS = 40

# Temporal profiles with class_dynamics=True: (median onset-to-offset frames, apex position as a fraction)
_CLASS_TIMING = {"surprise": (40, 0.25), "repression": (100, 0.65), "happiness": (75, 0.4), "disgust": (60, 0.45)}


def class_counts(n_clips: int | None) -> dict[str, int]:
    """CASME II's emotion proportions scaled to ``n_clips`` (every 5-class emotion at least 2)."""
    total = sum(CASME2_COUNTS.values())
    if n_clips is None:
        return dict(CASME2_COUNTS)
    if n_clips < 10:
        raise ValueError(f"n_clips must be at least 10 (2 per class), got {n_clips}")
    raw = {e: n * n_clips / total for e, n in CASME2_COUNTS.items()}
    counts = {e: int(np.floor(x)) for e, x in raw.items()}
    for e in ("happiness", "surprise", "disgust", "repression", "others"):
        counts[e] = max(counts[e], 2)
    order = sorted(raw, key=lambda e: raw[e] - np.floor(raw[e]), reverse=True)
    i = 0
    while sum(counts.values()) < n_clips:
        counts[order[i % len(order)]] += 1
        i += 1
    while sum(counts.values()) > n_clips:  # only possible through the minimum of 2
        biggest = max(counts, key=counts.get)
        counts[biggest] -= 1
    return counts


def _timing(rng: np.random.Generator, emotion: str, class_dynamics: bool,
            duration: float = 1.0) -> tuple[int, int, int, int, int]:
    """(first, onset, apex, offset, last) frame numbers. CASME II-like: 200 fps, onset to offset about 60
    frames (30-130) times ``duration``, the apex 15-85 % of the way; with ``class_dynamics`` some classes have
    their own profile."""
    median, apex_at = _CLASS_TIMING.get(emotion, (62, 0.45)) if class_dynamics else (62, 0.45)
    span = int(np.clip(round(duration * median * np.exp(rng.normal(0.0, 0.3))), 30 * duration, 130 * duration))
    fraction = float(np.clip(apex_at + rng.normal(0.0, 0.12), 0.15, 0.85))
    first = int(rng.integers(1, 300))
    onset = first + int(rng.integers(3, 11))
    apex = onset + max(1, int(round(span * fraction)))
    offset = onset + span
    return first, onset, apex, offset, offset + int(rng.integers(3, 11))


def _intensity(numbers: np.ndarray, onset: int, apex: int, offset: int, residual: float) -> np.ndarray:
    """The expression's strength per frame: :func:`~mpt_utils.motion.expression_intensity`'s rise from 0 at the
    onset to 1 at the apex, then a fall to ``residual`` at the coded offset (as in CASME II, a face is often not
    quite neutral again when the coder marks the offset), fading to 0 by the last frame."""
    base = expression_intensity(numbers, onset, apex, offset)
    out = np.where(numbers > apex, residual + (1.0 - residual) * base, base)
    after = numbers > offset
    if after.any():
        out[after] = residual * (numbers[-1] - numbers[after]) / max(numbers[-1] - offset, 1)
    return out.astype(np.float32)


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"JPEG encoding failed for {path}")
    path.write_bytes(buffer.tobytes())


class _Pose:
    """The rigid head pose of one frame: rotation by ``angle`` about ``centre`` then a shift (pixels)."""

    def __init__(self, angle: float, shift: np.ndarray, centre: tuple[float, float]):
        self.cos, self.sin = float(np.cos(angle)), float(np.sin(angle))
        self.shift, self.centre = np.asarray(shift, np.float32), centre

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cx, cy = self.centre
        return (cx + self.cos * (x - cx) - self.sin * (y - cy) + self.shift[0],
                cy + self.sin * (x - cx) + self.cos * (y - cy) + self.shift[1])

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cx, cy = self.centre
        u, v = x - self.shift[0] - cx, y - self.shift[1] - cy
        return cx + self.cos * u + self.sin * v, cy - self.sin * u + self.cos * v

    def rotate(self, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.cos * dx - self.sin * dy, self.sin * dx + self.cos * dy


class _SensorNoise:
    """Per-frame sensor noise, standard normal (H, W, 3): windows at random offsets into a few larger noise
    images (drawing every frame's pixels afresh would make noise the generator's slowest part)."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, n_frames: int, pad: int = 24):
        self.pool = rng.standard_normal((4, h + pad, w + pad, 3), dtype=np.float32)
        self.picks = rng.integers(0, [4, pad, pad], size=(n_frames, 3))
        self.h, self.w = h, w

    def frame(self, t: int) -> np.ndarray:
        k, oy, ox = self.picks[t]
        return self.pool[k, oy : oy + self.h, ox : ox + self.w]


def _sample(field: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """``field`` (H, W, C) at the (float) points (px, py), bilinear, zero outside."""
    return cv2.remap(field, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class _Clip:
    """Everything needed to render one clip's frames and ground truth.

    field: (H, W, 3) float32 in the neutral face's coordinates: the expression's apex displacement (x, y) and the
    eye aperture (where the iris moves with the gaze, and the lids close).
    """

    def __init__(self, identity: Identity, faces: tuple[np.ndarray, np.ndarray], aus: str, amplitude_px: float,
                 intensity: np.ndarray, track: NuisanceTrack, offset: np.ndarray, world: Preset):
        flow, dark = expression_fields(identity, aus, amplitude_px, world.appearance, world.shading)
        self.identity, self.intensity, self.track = identity, intensity, track
        self.open, self.closed = faces
        self.open_dark = self.open * dark[..., None]
        self.closed_dark = self.closed * dark[..., None]
        self.dark = dark
        self.field = np.dstack([flow, identity.aperture]).astype(np.float32)
        self.centre = (identity.width / 2.0, identity.height / 2.0)
        self.offset = offset
        h, w = identity.height, identity.width
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = self.centre
        angle = track.gradient_angle
        self.ramp = (((self.xx - cx) * np.cos(angle) + (self.yy - cy) * np.sin(angle)) / cx).astype(np.float32)

    def pose(self, t: int) -> _Pose:
        return _Pose(float(self.track.angle[t]), self.track.shift[t] + self.offset, self.centre)

    def deformation(self, t: int, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The face's own deformation at neutral points (px, py) in frame t: expression plus gaze; and the
        aperture there."""
        f = _sample(self.field, px, py)
        s, (gx, gy) = float(self.intensity[t]), self.track.gaze[t].tolist()
        return s * f[..., 0] + gx * f[..., 2], s * f[..., 1] + gy * f[..., 2], f[..., 2]

    def neutral_points(self, t: int, guess: tuple[np.ndarray, np.ndarray] | None = None, tolerance: float = 0.01,
                       max_steps: int = 12) -> tuple[np.ndarray, np.ndarray]:
        """For every pixel of frame t, the neutral-face point it shows: solve pose(p + deformation(p)) = x for p by
        fixed-point iteration, until no point moves by more than ``tolerance`` pixels or the steps stop shrinking
        (OpenCV samples the deformation at 1/32 pixel: where it is steep, as in the easy preset, the steps settle
        at a few hundredths of a pixel). ``guess``: the deformation (dx, dy) a neighbouring frame solved for, to
        start from (at 200 fps it changes little from frame to frame)."""
        qx, qy = self.pose(t).inverse(self.xx, self.yy)
        if not (self.intensity[t] > 0 or np.any(self.track.gaze[t] != 0)):
            return qx, qy
        px, py = (qx, qy) if guess is None else (qx - guess[0], qy - guess[1])
        previous = np.inf
        for _ in range(max_steps):
            dx, dy, _ = self.deformation(t, px, py)
            nx, ny = qx - dx, qy - dy
            change = max(float(np.abs(nx - px).max()), float(np.abs(ny - py).max()))
            px, py = nx, ny
            if change < tolerance or change > 0.8 * previous:
                break
            previous = change
        return px, py

    def frames(self, sensor: _SensorNoise) -> Iterator[np.ndarray]:
        """The clip's frames in order, each (H, W, 3) uint8 RGB (each frame's solution starts the next's)."""
        guess = None
        for t in range(len(self.intensity)):
            px, py = self.neutral_points(t, guess)
            qx, qy = self.pose(t).inverse(self.xx, self.yy)
            guess = (qx - px, qy - py)
            yield self.render(t, px, py, sensor.frame(t))

    def render(self, t: int, px: np.ndarray, py: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Frame t as (H, W, 3) uint8 RGB, each pixel showing the neutral face's point (px, py) (see
        :meth:`neutral_points`). ``noise``: (H, W, 3) standard normal draws (the sensor)."""
        s = float(self.intensity[t])
        source = self.open - s * self.open_dark if s > 0 else self.open
        image = cv2.remap(source, px, py, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        closure = float(self.track.blink[t])
        if closure > 0.01:
            shut = cv2.remap(self.closed - s * self.closed_dark, px, py, cv2.INTER_CUBIC,
                             borderMode=cv2.BORDER_REFLECT)
            ident = self.identity
            aperture = _sample(ident.aperture, px, py)
            lid = ident.lid_top[0] + closure * ident.lid_height[0]
            cover = aperture * np.clip((lid - py) / 1.5 + 0.5, 0.0, 1.0) * min(1.0, closure * 1.5)
            image = image + cover[..., None] * (shut - image)
        tr = self.track
        image = image * (tr.gain[t] * (1.0 + tr.gradient[t] * self.ramp))[..., None] + tr.noise * noise
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)

    def ground_truth(self, aus: str, onset: int, apex: int) -> GroundTruth:
        """Flows from frame ``onset`` to frame ``apex`` (indices into the stored frames) on the onset grid."""
        px, py = self.neutral_points(onset)
        f = _sample(self.field, px, py)
        s_on, s_ap = float(self.intensity[onset]), float(self.intensity[apex])
        (gx_on, gy_on), (gx_ap, gy_ap) = self.track.gaze[onset], self.track.gaze[apex]
        on, ap = self.pose(onset), self.pose(apex)
        x0, y0 = on.forward(px + s_on * f[..., 0] + gx_on * f[..., 2], py + s_on * f[..., 1] + gy_on * f[..., 2])
        # apex position with the expression held at its onset strength: the nuisances' motion alone
        xn, yn = ap.forward(px + s_on * f[..., 0] + gx_ap * f[..., 2], py + s_on * f[..., 1] + gy_ap * f[..., 2])
        ex, ey = ap.rotate((s_ap - s_on) * f[..., 0], (s_ap - s_on) * f[..., 1])
        magnitude = np.hypot(f[..., 0], f[..., 1])
        dark = np.abs(_sample(self.dark[..., None].repeat(3, -1), px, py)[..., 0])
        peak_move = float(np.hypot(*self.field[..., :2].transpose(2, 0, 1)).max())
        peak_dark = float(np.abs(self.dark).max())
        mask = np.zeros(magnitude.shape, bool)
        if peak_move > 0:
            mask |= magnitude >= 0.1 * peak_move
        if peak_dark > 0:
            mask |= dark >= 0.1 * peak_dark
        head = np.stack([self.track.angle, self.track.shift[:, 0] + self.offset[0],
                         self.track.shift[:, 1] + self.offset[1]], axis=1)
        return GroundTruth(
            expression_flow=np.dstack([ex, ey]).astype(np.float32),
            nuisance_flow=np.dstack([xn - x0, yn - y0]).astype(np.float32),
            au_mask=mask, aus=aus, intensity=self.intensity.astype(np.float32),
            blink=self.track.blink.astype(np.float32), head=head.astype(np.float32),
        )


@dataclass(frozen=True)
class _ClipPlan:
    """One clip's random draws: its folder, whose face, the session's light and position of the face, the
    expression's amplitude (pixels), frame numbers, intensity curve and nuisances, the seed of its sensor noise,
    and its row of the coding sheet (with its action units and onset and apex frame numbers)."""

    folder: Path
    identity: Identity
    light: np.ndarray
    ambient: float
    offset: np.ndarray
    amplitude_px: float
    numbers: np.ndarray
    intensity: np.ndarray
    track: NuisanceTrack
    sensor_seed: int
    row: dict


def _write_clip(plan: _ClipPlan, world: Preset) -> dict:
    """Render one clip's frames and ground truth into ``plan.folder``; return its coding-sheet row."""
    ident, row, first = plan.identity, plan.row, int(plan.numbers[0])
    render = _Clip(ident, render_face(ident, plan.light, plan.ambient), row["Action Units"], plan.amplitude_px,
                   plan.intensity, plan.track, plan.offset, world)
    sensor = _SensorNoise(np.random.default_rng(plan.sensor_seed), ident.height, ident.width, len(plan.numbers))
    plan.folder.mkdir(parents=True, exist_ok=True)
    for n, image in zip(plan.numbers, render.frames(sensor)):
        _write_jpeg(plan.folder / f"reg_img{n}.jpg", image, plan.track.jpeg_quality)
    write_ground_truth(plan.folder, render.ground_truth(row["Action Units"], row["OnsetFrame"] - first,
                                                        row["ApexFrame"] - first))
    return row


def _processes(processes: int | None, n_clips: int) -> int:
    """How many processes render clips: ``processes``, or with None one per CPU core but at most one per
    :data:`CLIPS_PER_PROCESS` clips (starting a process costs about as much as rendering that many)."""
    if processes is None:
        return max(1, min(os.cpu_count() or 1, n_clips // CLIPS_PER_PROCESS))
    if processes < 1:
        raise ValueError(f"processes must be None or at least 1, got {processes}")
    return processes


def synthetic_params(root: str | Path) -> dict | None:
    """The parameters of the complete synthetic set in ``root`` (as ``make_synthetic`` wrote them), or None when
    ``root`` holds none (or only an interrupted one)."""
    marker = Path(root) / SYNTHETIC_MARKER
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return saved.get("params") if saved.get("complete", True) else None


def _world(preset: str, amplitude, expressivity, appearance, shading, nuisance, class_dynamics, scales: dict) -> Preset:
    """The preset with every explicitly given parameter overriding its value."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    base = PRESETS[preset]
    if amplitude is None:
        lo, hi = base.amplitude
    else:
        lo, hi = (amplitude, amplitude) if np.isscalar(amplitude) else amplitude
    if not 0 <= lo <= hi:
        raise ValueError(f"amplitude must be a number >= 0 or a range (low, high), got {amplitude}")
    given = {k: float(v) for k, v in scales.items() if v is not None}
    bad = {k: v for k, v in given.items() if v < 0}
    if bad or (nuisance is not None and nuisance < 0):
        raise ValueError(f"nuisance scales must be >= 0 (0 turns one off), got {bad or {'nuisance': nuisance}}")
    return Preset(
        amplitude=(float(lo), float(hi)),
        expressivity=base.expressivity if expressivity is None else float(expressivity),
        appearance=base.appearance if appearance is None else float(appearance),
        shading=base.shading if shading is None else float(shading),
        residual=base.residual,
        variation=base.variation,
        nuisances=NuisanceScales(**{**asdict(base.nuisances), **given}),
        nuisance=base.nuisance if nuisance is None else float(nuisance),
        class_dynamics=base.class_dynamics if class_dynamics is None else bool(class_dynamics),
        duration=base.duration,
    )


def _draw_identities(rng: np.random.Generator, n_subjects: int, world: Preset) -> list[Identity]:
    """The subjects of a set, the first draws of its content stream."""
    return [draw_identity(rng, world.expressivity, world.variation) for _ in range(n_subjects)]


def subject_identities(seed: int, n_subjects: int, preset: str = "default") -> list[Identity]:
    """The identities :func:`make_synthetic` gives the subjects of a set of this ``seed`` and ``preset``, without
    rendering a frame (for example to show that a pre-training corpus shares no face with an evaluation set)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return _draw_identities(np.random.default_rng([seed, 0]), n_subjects, PRESETS[preset])


def make_synthetic(
    root: str | Path,
    n_subjects: int = 26,
    seed: int = 0,
    n_clips: int | None = None,
    preset: str = "default",
    amplitude: float | tuple[float, float] | None = None,
    nuisance: float | None = None,
    noise: float | None = None,
    jitter: float | None = None,
    flicker: float | None = None,
    head_motion: float | None = None,
    blinks: float | None = None,
    gaze: float | None = None,
    lighting: float | None = None,
    jpeg: float | None = None,
    expressivity: float | None = None,
    appearance: float | None = None,
    shading: float | None = None,
    class_dynamics: bool | None = None,
    recipes: dict[str, Sequence[str]] | None = None,
    processes: int | None = None,
    progress: bool = True,
) -> Path:
    """Write a synthetic micro-expression dataset in the CASME II layout, ground truth beside every clip; return
    ``root``.

    Parameters
    ----------
    root: output folder (created). A synthetic set there with the same parameters is kept, one with
        other parameters is replaced; a non-empty folder without one is refused (FileExistsError).
    n_subjects: number of subjects (LOSO folds).
    seed: everything follows from it (content and nuisances from two separate streams).
    n_clips: number of clips; ``None`` gives CASME II's 255 (247 in the 5-class scheme).
    preset: ``"default"`` (CASME II-like difficulty), ``"easy"`` (large motion, few nuisances) or ``"macro"``
        (macro-expressions, for pre-training), see :data:`PRESETS`. Every parameter below given explicitly
        overrides the preset's value.
    amplitude: an action unit's peak displacement in pixels *at 224 px* (one number, or a (low, high) range
        drawn per clip), times the subject's expressivity.
    nuisance: one factor on every nuisance scale (0: clean clips, for verification).
    noise, jitter, flicker, head_motion, blinks, gaze, lighting, jpeg: the nuisance scales,
        :class:`~.nuisances.NuisanceScales`.
    expressivity: how much people differ in how much they move (std of the log of a per-subject factor).
    appearance: how deep the AUs' furrows and wrinkles get (a factor on :data:`~.actions.APPEARANCE`).
    shading: how much the shading changes where skin bunches up or is pulled down (fraction of the brightness
        per pixel of motion at 224 px).
    class_dynamics: give classes their own temporal profile (surprise fast, repression slow); off in the
        presets, for teaching the temporal windows only.
    recipes: the action-unit combinations drawn per emotion (default :data:`EMOTION_AUS`). The backbone
        pre-training corpus passes the same list for every emotion, so that its AUs say nothing about emotion.
    processes: how many processes render clips (the bytes written do not depend on it). None: one per CPU core,
        at most one per :data:`CLIPS_PER_PROCESS` clips.
    progress: show a progress bar.
    """
    root = Path(root)
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be at least 1, got {n_subjects}")
    world = _world(preset, amplitude, expressivity, appearance, shading, nuisance, class_dynamics,
                   dict(noise=noise, jitter=jitter, flicker=flicker, head_motion=head_motion, blinks=blinks,
                        gaze=gaze, lighting=lighting, jpeg=jpeg))
    recipes = EMOTION_AUS if recipes is None else recipes
    missing = [e for e in CASME2_COUNTS if not recipes.get(e)]
    unknown = sorted({au.strip().lstrip("LR") for combos in recipes.values() for c in combos for au in c.split("+")
                      if au.strip().lstrip("LR") not in (*ACTION_UNITS, "0")})
    if missing or unknown:
        raise ValueError(f"recipes need AU combinations for every emotion {list(CASME2_COUNTS)} built from the "
                         f"AUs {list(ACTION_UNITS)} (0: the neutral face); missing emotions {missing}, "
                         f"unknown AUs {unknown}")
    params = dict(n_subjects=n_subjects, seed=seed, n_clips=n_clips, preset=preset, world=asdict(world),
                  version=3)
    params["world"]["amplitude"] = list(world.amplitude)
    params["world"]["residual"] = list(world.residual)
    if world.duration == 1.0:  # as sets made before durations existed record it, so that they are kept
        del params["world"]["duration"]
    if recipes is not EMOTION_AUS:
        params["recipes"] = {e: list(recipes[e]) for e in CASME2_COUNTS}
    marker = root / SYNTHETIC_MARKER
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("params") == params and saved.get("complete", True):
            return root
        # another (or an interrupted) synthetic set lives here: replace it whole, so none of its clips survive
        shutil.rmtree(root / "Cropped", ignore_errors=True)
    elif root.is_dir() and any(root.iterdir()):
        raise FileExistsError(
            f"{root} is not empty and holds no synthetic dataset (no SYNTHETIC.json); refusing to write into it. "
            "Choose an empty or new folder for synthetic data (is this a real dataset? then name it as the dataset)"
        )
    counts = class_counts(n_clips)
    if n_subjects > sum(counts.values()):
        raise ValueError(f"n_subjects ({n_subjects}) cannot exceed the number of clips ({sum(counts.values())})")
    workers = _processes(processes, sum(counts.values()))

    # claim the folder first: a run interrupted from here on leaves an incomplete marker, never a foreign folder
    atomic_write_text(marker, json.dumps({"params": params, "complete": False}, indent=2))
    rng = np.random.default_rng([seed, 0])  # content: identities, sessions, emotions, AUs, timing
    nuisance_rng = np.random.default_rng([seed, 1])  # nuisances only
    scales = world.nuisances.times(world.nuisance)
    identities = _draw_identities(rng, n_subjects, world)
    lights = [np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.6, -0.1), 1.0]) for _ in range(n_subjects)]
    emotions = [e for e, n in counts.items() for _ in range(n)]
    rng.shuffle(emotions)
    # every subject gets a clip, the rest follow uneven per-subject weights (as in CASME II)
    weights = rng.dirichlet(np.full(n_subjects, 1.5))
    owners = list(range(n_subjects)) + list(rng.choice(n_subjects, len(emotions) - n_subjects, p=weights))
    rng.shuffle(owners)

    def plans() -> Iterator[_ClipPlan]:
        """Every clip's random draws, in order (whichever process renders a clip, its bytes are the same)."""
        episode: dict[int, int] = {}
        for emotion, owner in zip(emotions, owners):
            ident = identities[owner]
            episode[owner] = episode.get(owner, 0) + 1
            clip = f"EP{episode[owner]:02d}_{int(rng.integers(1, 20)):02d}{'f' if rng.random() < 0.3 else ''}"
            aus = str(rng.choice(list(recipes[emotion])))
            first, onset, apex, offset, last = _timing(rng, emotion, world.class_dynamics, world.duration)
            numbers = np.arange(first, last + 1)
            pixel_scale = ident.height / 224.0
            amp_px = rng.uniform(*world.amplitude) * ident.expressivity * pixel_scale
            # the session: its own light and a slightly different position of the face in the crop
            light = lights[owner] + rng.normal(0.0, 0.08, 3) * np.array([1.0, 1.0, 0.0])
            ambient = rng.uniform(0.30, 0.45)
            offset_px = rng.normal(0.0, 1.0, 2).astype(np.float32) * pixel_scale
            track = draw_track(nuisance_rng, len(numbers), scales, pixel_scale, float(ident.lid_height[0]))
            sensor_seed = int(nuisance_rng.integers(2**63))
            intensity = _intensity(numbers, onset, apex, offset, float(rng.uniform(*world.residual)))
            row = {"Subject": owner + 1, "Filename": clip, "OnsetFrame": onset, "ApexFrame": apex,
                   "OffsetFrame": offset, "Action Units": aus, "Estimated Emotion": emotion}
            yield _ClipPlan(root / "Cropped" / f"sub{owner + 1:02d}" / clip, ident, light, ambient, offset_px,
                            amp_px, numbers, intensity, track, sensor_seed, row)

    written = Parallel(n_jobs=workers, return_as="generator")(delayed(_write_clip)(plan, world) for plan in plans())
    rows = list(progress_bar(written, total=len(emotions), desc="synthetic clips", disable=not progress))

    header = list(rows[0])
    ordered = sorted(rows, key=lambda r: (r["Subject"], r["Filename"]))
    atomic_write_xlsx(root / "CASME2-coding-synthetic.xlsx", header, [[r[k] for k in header] for r in ordered])
    done = {"params": params, "complete": True, "note": "synthetic data, not CASME II"}
    atomic_write_text(marker, json.dumps(done, indent=2))
    return root


def clean_twin(root: str | Path, twin_root: str | Path | None = None, processes: int | None = None,
               progress: bool = True) -> Path:
    """The synthetic set in ``root`` rendered again without any nuisance; return the twin's folder.

    The twin has the same seed, subjects, clips, action units, timing and expression, with every nuisance scale
    at 0 (no head motion, blinks, gaze shifts, lighting change, sensor noise or JPEG): clip for clip, what the
    expression alone looks like. Subtracting it from the original isolates the nuisances, which is how
    magnification is scored (:func:`~mpt_utils.data.magnification_table`). ``twin_root`` defaults to
    ``ROOT-clean`` beside ``root``; an existing twin with the same parameters is kept.
    """
    root = Path(root)
    params = synthetic_params(root)
    if params is None:
        raise ValueError(f"{root} holds no complete synthetic set (no finished SYNTHETIC.json): a clean twin can "
                         "only be rendered for a set made by make_synthetic")
    world = params["world"]
    twin_root = Path(twin_root) if twin_root is not None else root.with_name(root.name + "-clean")
    return make_synthetic(
        twin_root, n_subjects=params["n_subjects"], seed=params["seed"], n_clips=params["n_clips"],
        preset=params["preset"], amplitude=tuple(world["amplitude"]), expressivity=world["expressivity"],
        appearance=world["appearance"], shading=world["shading"], class_dynamics=world["class_dynamics"],
        recipes=params.get("recipes"), nuisance=0.0, processes=processes, progress=progress,
        **world["nuisances"],
    )
