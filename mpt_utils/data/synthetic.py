"""A synthetic micro-expression dataset written in the real CASME II layout.

The real datasets are licensed, so the tutorial's default data is generated. It is built to
behave like CASME II where that matters for learning MER:

- **identity**: every subject has their own face geometry, skin tone, skin texture and lighting;
  identity differences are far larger than any expression;
- **action units**: each emotion is a combination of FACS action units (happiness AU6+AU12,
  surprise AU1+AU2 with AU25/26, disgust AU4/AU9/AU10, repression AU14/AU15/AU17, others mixed
  and one-sided AUs), rendered as smooth local displacement fields;
- **subtlety**: displacements of about 0.5-2 px at 224 px (``amplitude``), so a single frame
  says almost nothing and the onset-to-apex change carries the class;
- **timing**: 200 fps, 40-100 frames from onset to offset, the apex in between, a few frames
  before the onset and after the offset, frame numbers that do not start at 1;
- **nuisances**: head jitter, sensor noise, illumination flicker, JPEG compression;
- **class imbalance**: CASME II's proportions (others > disgust > happiness ~ repression >
  surprise, plus a few fear and sadness clips that the 5-class scheme drops).

``make_synthetic`` writes ``CASME2-coding-synthetic.xlsx`` and ``Cropped/subNN/EPxx_yy/
reg_imgN.jpg`` under ``root``, so :func:`~mpt_utils.data.load_casme2` is the reader. The same
seed gives the same dataset, byte for byte, the coding sheet included (its time stamps are fixed).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from ..io import atomic_write_text, atomic_write_xlsx
from ..motion import expression_intensity
from .loaders import SYNTHETIC_MARKER

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

#: Action-unit recipes per emotion: one is drawn per clip. "L"/"R": one side of the face only.
EMOTION_AUS = {
    "happiness": ["6+12", "6+12", "12", "L12", "6+12+25"],
    "surprise": ["1+2", "1+2+25", "1+2+26", "1+2"],
    "disgust": ["4+9", "4+10", "9", "9+10", "4+7+9", "10"],
    "repression": ["14", "15", "17", "15+17", "14+17"],
    "others": ["7", "L12", "R14", "L10", "R2", "25", "L15", "7+25", "R1"],
    "fear": ["1+4+20"],
    "sadness": ["1+4+15"],
}

# Each action unit as Gaussian bumps of displacement: (u, v, sigma, dx, dy) in face-relative
# coordinates (u right, v down, both in [0, 1]); (dx, dy) is the direction of the motion, scaled
# by the clip's amplitude. Bumps with u < 0.5 are the image's left side.
_AU_BUMPS: dict[str, list[tuple[float, float, float, float, float]]] = {
    "1": [(0.40, 0.30, 0.06, 0.0, -1.0), (0.60, 0.30, 0.06, 0.0, -1.0)],
    "2": [(0.26, 0.30, 0.07, 0.0, -1.0), (0.74, 0.30, 0.07, 0.0, -1.0)],
    "4": [(0.38, 0.31, 0.07, 0.45, 0.8), (0.62, 0.31, 0.07, -0.45, 0.8)],
    "6": [(0.30, 0.52, 0.09, 0.0, -0.8), (0.70, 0.52, 0.09, 0.0, -0.8)],
    "7": [(0.33, 0.42, 0.05, 0.0, -0.7), (0.67, 0.42, 0.05, 0.0, -0.7)],
    "9": [(0.44, 0.54, 0.05, 0.0, -0.9), (0.56, 0.54, 0.05, 0.0, -0.9)],
    "10": [(0.44, 0.71, 0.06, 0.0, -0.9), (0.56, 0.71, 0.06, 0.0, -0.9)],
    "12": [(0.35, 0.75, 0.06, -0.6, -0.8), (0.65, 0.75, 0.06, 0.6, -0.8)],
    "14": [(0.35, 0.75, 0.05, -0.9, 0.0), (0.65, 0.75, 0.05, 0.9, 0.0)],
    "15": [(0.36, 0.76, 0.06, -0.2, 0.9), (0.64, 0.76, 0.06, 0.2, 0.9)],
    "17": [(0.50, 0.87, 0.08, 0.0, -0.9), (0.50, 0.80, 0.05, 0.0, -0.5)],
    "20": [(0.36, 0.76, 0.06, -0.9, 0.2), (0.64, 0.76, 0.06, 0.9, 0.2)],
    "25": [(0.50, 0.79, 0.06, 0.0, 0.8)],
    "26": [(0.50, 0.85, 0.12, 0.0, 1.0), (0.50, 0.79, 0.06, 0.0, 0.6)],
}

#: The action units the generator can render, in numeric order.
ACTION_UNITS: tuple[str, ...] = tuple(sorted(_AU_BUMPS, key=int))


def action_unit_set(aus: str) -> set[str]:
    """The AU numbers of a FACS string, sides dropped: ``"4+L10"`` -> ``{"4", "10"}``."""
    return {au.strip().lstrip("LR") for au in aus.split("+") if au.strip()}


@dataclass(frozen=True)
class _Identity:
    """One synthetic subject: a rendered neutral face and its crop size."""

    face: np.ndarray  # (H, W, 3) float32, 0..255, RGB
    height: int
    width: int


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    """Zero-mean, unit-variance noise with features of about ``scale`` pixels."""
    small = rng.standard_normal((max(2, h // scale), max(2, w // scale))).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (big - big.mean()) / (big.std() + 1e-6)


def _render_identity(rng: np.random.Generator) -> _Identity:
    """Draw a neutral face with its own geometry, skin tone, texture and lighting."""
    h = int(rng.integers(160, 181))
    w = int(rng.integers(130, 151))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / w, yy / h

    tone = np.array([rng.uniform(150, 225), rng.uniform(110, 175), rng.uniform(85, 150)], np.float32)
    background = np.array(rng.uniform(40, 110, 3), np.float32)
    cx, cy = 0.5 + rng.uniform(-0.02, 0.02), 0.53 + rng.uniform(-0.02, 0.02)
    rx, ry = rng.uniform(0.44, 0.50), rng.uniform(0.47, 0.52)
    inside = ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2
    mask = np.clip((1.0 - inside) * 12.0, 0.0, 1.0)[..., None]

    texture = (
        rng.uniform(4, 8) * _smooth_noise(rng, h, w, 24)
        + rng.uniform(3, 6) * _smooth_noise(rng, h, w, 6)
        + rng.uniform(2, 4) * _smooth_noise(rng, h, w, 2)
    )
    skin = tone[None, None, :] + texture[..., None]
    face = mask * skin + (1 - mask) * background[None, None, :]

    def blot(uc, vc, su, sv, color, strength, angle=0.0):
        """Add a soft elliptical feature (brow, eye, lip ...) of the given colour."""
        ca, sa = np.cos(angle), np.sin(angle)
        du, dv = (u - uc) * ca + (v - vc) * sa, -(u - uc) * sa + (v - vc) * ca
        weight = strength * np.exp(-0.5 * ((du / su) ** 2 + (dv / sv) ** 2))[..., None]
        return weight, np.asarray(color, np.float32)

    features = []
    eye_v, brow_gap = rng.uniform(0.39, 0.43), rng.uniform(0.08, 0.11)
    eye_sep = rng.uniform(0.16, 0.19)
    brow_dark = tone * rng.uniform(0.25, 0.45)
    arch = rng.uniform(-0.4, 0.4)
    for side in (-1, 1):
        ex = 0.5 + side * eye_sep
        # brows as a row of overlapping blots: a thick, arched stroke with some texture
        for k in np.linspace(-1, 1, 7):
            features.append(
                blot(ex + k * 0.09, eye_v - brow_gap - 0.015 * (1 - k**2) * (1 + arch), 0.03, 0.012, brow_dark, 0.9)
            )
        features.append(blot(ex, eye_v, 0.07, 0.025, [235, 232, 228], 0.9))  # sclera
        features.append(blot(ex, eye_v, 0.025, 0.022, tone * 0.25, 1.0))  # iris
        features.append(blot(ex, eye_v - 0.028, 0.075, 0.008, tone * 0.55, 0.8))  # upper lid line
        features.append(blot(ex, eye_v + 0.07, 0.08, 0.02, tone * 0.85, 0.5))  # lower lid shadow
        features.append(blot(0.5 + side * 0.2, 0.56, 0.08, 0.06, tone * [1.05, 0.85, 0.85], 0.4))  # cheek
        features.append(blot(0.5 + side * 0.035, 0.63, 0.015, 0.01, tone * 0.35, 0.9))  # nostril
        features.append(  # nasolabial fold
            blot(0.5 + side * 0.12, 0.68, 0.012, 0.06, tone * 0.7, 0.5, angle=-side * 0.5)
        )
    features.append(blot(0.5, 0.52, 0.025, 0.09, tone * 1.12, 0.5))  # nose bridge highlight
    mouth_v, mouth_w = rng.uniform(0.74, 0.78), rng.uniform(0.12, 0.16)
    lip = tone * [1.0, 0.62, 0.62]
    features.append(blot(0.5, mouth_v - 0.018, mouth_w, 0.016, lip, 0.9))  # upper lip
    features.append(blot(0.5, mouth_v + 0.02, mouth_w * 0.9, 0.02, lip * 1.05, 0.9))  # lower lip
    features.append(blot(0.5, mouth_v, mouth_w * 1.05, 0.005, tone * 0.3, 1.0))  # lip line
    features.append(blot(0.5, 0.9, 0.08, 0.03, tone * 0.8, 0.35))  # chin shadow
    for weight, color in features:
        weight = weight * mask
        face = face * (1 - weight) + weight * color[None, None, :]

    # directional lighting and a vignette
    angle = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.08, 0.25) * ((u - 0.5) * np.cos(angle) + (v - 0.5) * np.sin(angle))
    face = face * light[..., None] * (1.0 - 0.15 * inside.clip(0, 2)[..., None] / 2)
    face = cv2.GaussianBlur(face.astype(np.float32), (0, 0), 0.6)
    return _Identity(face=np.clip(face, 0, 255).astype(np.float32), height=h, width=w)


def _au_field(aus: str, h: int, w: int, amplitude_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Displacement field (dx, dy), each (H, W) in pixels, of an AU combination at its apex."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / w, yy / h
    dx, dy = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    for au in aus.split("+"):
        side = au[0] if au[0] in "LR" else ""
        for uc, vc, sigma, ddx, ddy in _AU_BUMPS[au.lstrip("LR")]:
            if (side == "L" and uc > 0.5) or (side == "R" and uc < 0.5):
                continue
            g = np.exp(-0.5 * (((u - uc) / sigma) ** 2 + ((v - vc) / sigma) ** 2))
            dx += amplitude_px * ddx * g
            dy += amplitude_px * ddy * g
    return dx, dy


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


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"JPEG encoding failed for {path}")
    path.write_bytes(buffer.tobytes())


def synthetic_params(root: str | Path) -> dict | None:
    """The parameters of the complete synthetic set in ``root`` (as ``make_synthetic`` wrote them), or None when
    ``root`` holds none (or only an interrupted one)."""
    marker = Path(root) / SYNTHETIC_MARKER
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return saved.get("params") if saved.get("complete", True) else None


def make_synthetic(
    root: str | Path,
    n_subjects: int = 26,
    seed: int = 0,
    n_clips: int | None = None,
    amplitude: float | tuple[float, float] = (0.5, 2.0),
    noise: float = 1.5,
    jitter: float = 0.05,
    flicker: float = 0.006,
    jpeg_quality: int = 95,
    recipes: dict[str, Sequence[str]] | None = None,
    progress: bool = True,
) -> Path:
    """Write a synthetic micro-expression dataset in the CASME II layout; return ``root``.

    Parameters
    ----------
    root: output folder (created). A synthetic set there with the same parameters is kept, one with
        other parameters is replaced; a non-empty folder without one is refused (FileExistsError).
    n_subjects: number of subjects (LOSO folds).
    seed: everything (identities, AU choice, timing, noise) follows from it.
    n_clips: number of clips; ``None`` gives CASME II's 255 (247 in the 5-class scheme).
    amplitude: peak displacement in pixels *at 224 px* (one number, or a (low, high) range drawn
        per clip). The difficulty knob: 0.5-2 px is CASME II-like, 6-10 px makes an easy set.
    noise: sensor noise, standard deviation in grey levels per pixel and frame.
    jitter: head jitter, standard deviation in pixels of a random walk step per frame.
    flicker: illumination flicker, relative standard deviation of the brightness per frame.
    jpeg_quality: JPEG quality of the written frames.
    recipes: the action-unit combinations drawn per emotion (default :data:`EMOTION_AUS`). The
        backbone pre-training corpus (:mod:`mpt_utils.train.pretrain`) passes the same AU list for
        every emotion, so that its AUs say nothing about the emotion column.
    progress: show a progress bar.
    """
    root = Path(root)
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be at least 1, got {n_subjects}")
    lo, hi = (amplitude, amplitude) if np.isscalar(amplitude) else amplitude
    if not 0 <= lo <= hi:
        raise ValueError(f"amplitude must be a number >= 0 or a range (low, high), got {amplitude}")
    recipes = EMOTION_AUS if recipes is None else recipes
    missing = [e for e in CASME2_COUNTS if not recipes.get(e)]
    unknown = sorted({au for combos in recipes.values() for c in combos for au in c.split("+")
                      if au.lstrip("LR") not in _AU_BUMPS})
    if missing or unknown:
        raise ValueError(f"recipes need AU combinations for every emotion {list(CASME2_COUNTS)} built from the "
                         f"AUs {list(ACTION_UNITS)}; missing emotions {missing}, unknown AUs {unknown}")
    params = dict(n_subjects=n_subjects, seed=seed, n_clips=n_clips, amplitude=[lo, hi], noise=noise,
                  jitter=jitter, flicker=flicker, jpeg_quality=jpeg_quality, version=1)
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

    # claim the folder first: a run interrupted from here on leaves an incomplete marker, never a foreign folder
    atomic_write_text(marker, json.dumps({"params": params, "complete": False}, indent=2))
    rng = np.random.default_rng(seed)
    identities = [_render_identity(rng) for _ in range(n_subjects)]
    emotions = [e for e, n in counts.items() for _ in range(n)]
    rng.shuffle(emotions)
    # every subject gets a clip, the rest follow uneven per-subject weights (as in CASME II)
    weights = rng.dirichlet(np.full(n_subjects, 1.5))
    owners = list(range(n_subjects)) + list(rng.choice(n_subjects, len(emotions) - n_subjects, p=weights))
    rng.shuffle(owners)

    rows, episode = [], {}
    frames_root = root / "Cropped"
    for emotion, owner in tqdm(list(zip(emotions, owners)), desc="synthetic clips", disable=not progress):
        ident = identities[owner]
        subject = f"sub{owner + 1:02d}"
        episode[owner] = episode.get(owner, 0) + 1
        clip = f"EP{episode[owner]:02d}_{int(rng.integers(1, 20)):02d}{'f' if rng.random() < 0.3 else ''}"
        aus = str(rng.choice(list(recipes[emotion])))
        span = int(rng.integers(40, 101))
        first = int(rng.integers(1, 300))
        onset = first + int(rng.integers(3, 11))
        apex = onset + int(round(span * rng.uniform(0.3, 0.6)))
        offset = onset + span
        last = offset + int(rng.integers(3, 11))
        numbers = np.arange(first, last + 1)
        amp_px = rng.uniform(lo, hi) * ident.height / 224.0
        dx, dy = _au_field(aus, ident.height, ident.width, amp_px)
        intensity = expression_intensity(numbers, onset, apex, offset).astype(np.float32)
        steps = rng.normal(0.0, jitter, (len(numbers), 2)).astype(np.float32)
        shifts = np.cumsum(steps, axis=0)
        gains = 1.0 + flicker * rng.standard_normal(len(numbers)).astype(np.float32)
        yy, xx = np.mgrid[0 : ident.height, 0 : ident.width].astype(np.float32)
        folder = frames_root / subject / clip
        folder.mkdir(parents=True, exist_ok=True)
        for n, s, (sx, sy), gain in zip(numbers, intensity, shifts, gains):
            # backward warp: the pixel at x shows the neutral face at x - displacement(x)
            map_x = xx - s * dx - sx
            map_y = yy - s * dy - sy
            frame = cv2.remap(ident.face, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            frame = frame * gain + rng.normal(0.0, noise, frame.shape).astype(np.float32)
            _write_jpeg(folder / f"reg_img{n}.jpg", np.clip(np.rint(frame), 0, 255).astype(np.uint8), jpeg_quality)
        rows.append(
            {"Subject": owner + 1, "Filename": clip, "OnsetFrame": onset, "ApexFrame": apex,
             "OffsetFrame": offset, "Action Units": aus, "Estimated Emotion": emotion}
        )

    header = list(rows[0])
    ordered = sorted(rows, key=lambda r: (r["Subject"], r["Filename"]))
    atomic_write_xlsx(root / "CASME2-coding-synthetic.xlsx", header, [[r[k] for k in header] for r in ordered])
    done = {"params": params, "complete": True, "note": "synthetic data, not CASME II"}
    atomic_write_text(marker, json.dumps(done, indent=2))
    return root
