"""Synthetic faces: an identity's landmarks, and its face rendered with shading.

An identity is drawn once per subject: face shape, where its brows, eyes, nose, mouth and cheeks sit
(:attr:`Identity.landmarks`, pixel coordinates of the neutral face), skin tone and texture, brow and lip
colour, a height map for shading. :func:`render_face` lights it for one recording session, returning the
face with open eyes and the same face with closed lids (a blink blends between the two).

Landmark names end in ``_L`` / ``_R`` for the image's left / right side.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Identity:
    """One synthetic subject, neutral. Arrays are (H, W, ...) on the stored frame's pixel grid.

    landmarks: name -> (x, y) in pixels. scale: the face's half width in pixels (action units are sized by it).
    albedo_open / albedo_closed: (H, W, 3) float32 colour in 0..1, eyes open / lids closed.
    normals: (H, W, 3) float32 unit surface normals (x right, y down, z towards the camera).
    aperture: (H, W) float32 in 0..1, the visible eyeball (where a lid can cover and the iris can move).
    lid_top / lid_height: (2,) float32, each eye's upper lid line (y) and aperture height in pixels (L, R).
    expressivity: how much this person moves (a factor on every action unit's amplitude).
    """

    height: int
    width: int
    scale: float
    landmarks: dict[str, tuple[float, float]]
    albedo_open: np.ndarray
    albedo_closed: np.ndarray
    normals: np.ndarray
    aperture: np.ndarray
    lid_top: np.ndarray
    lid_height: np.ndarray
    expressivity: float


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Zero-mean, unit-variance noise (H, W) float32 with features of about ``scale`` pixels."""
    small = rng.standard_normal((max(2, int(h / scale)), max(2, int(w / scale)))).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (big - big.mean()) / (big.std() + 1e-6)


def _gauss(xx, yy, x0, y0, sx, sy, angle: float = 0.0) -> np.ndarray:
    """An (H, W) elliptical Gaussian of peak 1 centred on (x0, y0), axes sx, sy (pixels), rotated by angle."""
    ca, sa = np.cos(angle), np.sin(angle)
    du, dv = (xx - x0) * ca + (yy - y0) * sa, -(xx - x0) * sa + (yy - y0) * ca
    return np.exp(-0.5 * ((du / sx) ** 2 + (dv / sy) ** 2)).astype(np.float32)


def _paint(albedo: np.ndarray, weight: np.ndarray, colour) -> None:
    """Blend ``colour`` into ``albedo`` (in place) with a per-pixel weight in 0..1."""
    w = np.clip(weight, 0.0, 1.0)[..., None]
    albedo *= 1.0 - w
    albedo += w * np.asarray(colour, np.float32)[None, None, :]


def draw_identity(rng: np.random.Generator, expressivity_spread: float = 0.3, variation: float = 1.0) -> Identity:
    """Draw one identity: geometry, landmarks, colours, texture and a height map (for shading).

    ``variation`` scales how much faces differ in their place and size within the crop (1: as much as in
    CASME II's crops; 0: every face centred alike; features still differ)."""
    h, w = int(rng.integers(160, 181)), int(rng.integers(130, 151))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # face ellipse: the crop holds the whole face with a little hair and background, as CASME II's crops do
    cx, cy = w * (0.5 + variation * rng.uniform(-0.04, 0.04)), h * (0.545 + variation * rng.uniform(-0.035, 0.035))
    rx, ry = w * (0.40 + variation * rng.uniform(-0.04, 0.04)), h * (0.415 + variation * rng.uniform(-0.035, 0.035))
    r2 = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    inside = np.clip((1.0 - r2) * 14.0, 0.0, 1.0)

    eye_y = cy - ry * rng.uniform(0.14, 0.22)
    eye_dx = rx * rng.uniform(0.40, 0.48)
    eye_w = rx * rng.uniform(0.22, 0.27)
    eye_h = eye_w * rng.uniform(0.36, 0.44)  # half height of the open eye
    brow_y = eye_y - eye_h * rng.uniform(1.9, 2.6)
    nose_y = cy + ry * rng.uniform(0.14, 0.22)
    nose_w = rx * rng.uniform(0.17, 0.22)
    mouth_y = cy + ry * rng.uniform(0.44, 0.52)
    mouth_w = rx * rng.uniform(0.34, 0.42)
    lip_h = ry * rng.uniform(0.05, 0.07)
    chin_y = cy + ry * 0.86

    marks: dict[str, tuple[float, float]] = {
        "glabella": (cx, brow_y + eye_h * 0.3),
        "nose_tip": (cx, nose_y),
        "upper_lip": (cx, mouth_y - lip_h),
        "lower_lip": (cx, mouth_y + lip_h),
        "mouth": (cx, mouth_y),
        "chin": (cx, chin_y),
    }
    for side, sign in (("L", -1.0), ("R", 1.0)):
        ex = cx + sign * eye_dx
        marks[f"eye_{side}"] = (ex, eye_y)
        marks[f"brow_inner_{side}"] = (ex - sign * eye_w * 0.8, brow_y + eye_h * 0.15)
        marks[f"brow_mid_{side}"] = (ex, brow_y - eye_h * 0.25)
        marks[f"brow_outer_{side}"] = (ex + sign * eye_w * 0.9, brow_y + eye_h * 0.1)
        marks[f"upper_lid_{side}"] = (ex, eye_y - eye_h)
        marks[f"lower_lid_{side}"] = (ex, eye_y + eye_h * 1.1)
        marks[f"eye_corner_{side}"] = (ex + sign * eye_w * 1.05, eye_y)
        marks[f"cheek_{side}"] = (cx + sign * eye_dx * 1.05, eye_y + (nose_y - eye_y) * 0.85)
        marks[f"nose_wing_{side}"] = (cx + sign * nose_w, nose_y - lip_h * 0.3)
        marks[f"nasolabial_{side}"] = (cx + sign * (nose_w + mouth_w) * 0.62, (nose_y + mouth_y) / 2)
        marks[f"mouth_corner_{side}"] = (cx + sign * mouth_w, mouth_y)
        marks[f"upper_lip_{side}"] = (cx + sign * mouth_w * 0.45, mouth_y - lip_h)

    # height map: a rounded face with brow ridge, eye sockets, nose, cheekbones, lips and chin
    z = np.sqrt(np.clip(1.0 - r2, 0.0, None)).astype(np.float32) * rx * 0.9
    z += rx * 0.08 * _gauss(xx, yy, cx, brow_y, rx * 0.7, eye_h * 1.8) * inside  # brow ridge
    z += rx * 0.22 * _gauss(xx, yy, cx, (eye_y + nose_y) / 2, nose_w * 0.45, (nose_y - eye_y) * 0.7)  # nose
    z += rx * 0.10 * _gauss(xx, yy, cx, nose_y - lip_h, nose_w * 0.6, lip_h * 1.4)  # nose tip
    z += rx * 0.05 * _gauss(xx, yy, cx, mouth_y, mouth_w * 0.9, lip_h * 1.6)  # lips
    z += rx * 0.06 * _gauss(xx, yy, cx, chin_y - lip_h, mouth_w * 0.6, lip_h * 2.0)  # chin
    for side, sign in (("L", -1.0), ("R", 1.0)):
        ex = cx + sign * eye_dx
        z -= rx * 0.10 * _gauss(xx, yy, ex, eye_y, eye_w * 1.3, eye_h * 1.6)  # eye socket
        z += rx * 0.07 * _gauss(xx, yy, *marks[f"cheek_{side}"], eye_w * 1.2, eye_h * 1.8)  # cheekbone
    z = cv2.GaussianBlur(z, (0, 0), 1.2)
    gy, gx = np.gradient(z)
    normals = np.stack([-gx, -gy, np.ones_like(z)], axis=-1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)

    # colours: skin with texture, hair above the forehead, background behind
    red = rng.uniform(0.55, 0.90)
    green = red * rng.uniform(0.70, 0.84)
    tone = np.array([red, green, green * rng.uniform(0.78, 0.92)], np.float32)
    texture = (0.025 * smooth_noise(rng, h, w, 20) + 0.015 * smooth_noise(rng, h, w, 5)
               + 0.010 * smooth_noise(rng, h, w, 1.5))
    skin = tone[None, None, :] * (1.0 + texture[..., None])
    # the background is darker than the skin, as behind CASME II's lit subjects
    level = max(0.05, float(tone.mean()) - rng.uniform(0.2, 0.35))
    background = np.full((h, w, 3), level, np.float32) * (1 + 0.05 * smooth_noise(rng, h, w, 30))[..., None]
    albedo = background * (1 - inside[..., None]) + skin * inside[..., None]
    hairline = brow_y - ry * rng.uniform(0.30, 0.42)
    hair_colour = tone * rng.uniform(0.10, 0.30)
    hair = np.clip((hairline - yy) / 3.0 + 0.5, 0, 1) * np.clip((1.25 - r2) * 4, 0, 1)
    _paint(albedo, hair * (1 + 0.15 * smooth_noise(rng, h, w, 8)), hair_colour)

    brow_colour = tone * rng.uniform(0.18, 0.35)
    lip_colour = tone * np.array([0.95, 0.55, 0.58], np.float32) * rng.uniform(0.85, 1.05)
    _paint(albedo, 0.8 * _gauss(xx, yy, cx, mouth_y - lip_h * 0.6, mouth_w * 0.95, lip_h * 0.75), lip_colour)
    _paint(albedo, 0.85 * _gauss(xx, yy, cx, mouth_y + lip_h * 0.8, mouth_w * 0.85, lip_h * 0.9), lip_colour)
    _paint(albedo, 0.85 * _gauss(xx, yy, cx, mouth_y, mouth_w * 0.65, max(0.7, lip_h * 0.18)), tone * 0.25)
    apertures = np.zeros((h, w), np.float32)
    for side, sign in (("L", -1.0), ("R", 1.0)):
        ex = cx + sign * eye_dx
        bx, by = marks[f"brow_mid_{side}"]
        _paint(albedo, 0.9 * _gauss(xx, yy, bx, by, eye_w * 1.1, eye_h * 0.45, angle=sign * 0.1), brow_colour)
        _paint(albedo, 0.35 * _gauss(xx, yy, cx + sign * nose_w * 0.45, nose_y, nose_w * 0.18, lip_h * 0.5),
               tone * 0.3)  # nostril
        _paint(albedo, 0.25 * _gauss(xx, yy, *marks[f"nasolabial_{side}"], 1.2, (mouth_y - nose_y) * 0.45,
                                     angle=-sign * 0.45), tone * 0.65)  # nasolabial fold
        _paint(albedo, 0.45 * _gauss(xx, yy, ex, eye_y, eye_w * 1.3, eye_h * 1.7) * inside, tone * 0.5)  # socket
        # the eye's aperture: an almond shape; inside it sclera, iris and pupil
        aperture = np.clip((1.0 - ((xx - ex) / eye_w) ** 2 - ((yy - eye_y) / eye_h) ** 2) * 4, 0, 1)
        apertures = np.maximum(apertures, aperture)
    open_ = albedo.copy()
    _paint(open_, apertures, [0.74, 0.72, 0.70])
    iris_colour = np.array(rng.uniform(0.08, 0.35, 3), np.float32)
    for sign in (-1.0, 1.0):
        ex = cx + sign * eye_dx
        iris = np.clip((eye_h * 0.95 - np.hypot(xx - ex, yy - eye_y)) * 1.5, 0, 1) * apertures
        _paint(open_, iris, iris_colour)
        _paint(open_, np.clip((eye_h * 0.4 - np.hypot(xx - ex, yy - eye_y)) * 1.5, 0, 1) * apertures, [0.03] * 3)
        _paint(open_, 0.8 * _gauss(xx, yy, ex, eye_y - eye_h * 0.95, eye_w * 0.95, 1.0), tone * 0.2)  # upper lid line
    closed = albedo.copy()
    for sign in (-1.0, 1.0):  # closed lids: skin, a lash line at the bottom
        ex = cx + sign * eye_dx
        _paint(closed, 0.8 * _gauss(xx, yy, ex, eye_y + eye_h * 0.7, eye_w * 0.9, 1.0), tone * 0.25)

    tops = np.array([eye_y - eye_h] * 2, np.float32)
    return Identity(
        height=h, width=w, scale=float(rx), landmarks=marks,
        albedo_open=np.clip(open_, 0, 1), albedo_closed=np.clip(closed, 0, 1),
        normals=normals.astype(np.float32), aperture=apertures,
        lid_top=tops, lid_height=np.array([2 * eye_h] * 2, np.float32),
        expressivity=float(np.exp(rng.normal(0.0, expressivity_spread))),
    )


def render_face(identity: Identity, light: np.ndarray, ambient: float) -> tuple[np.ndarray, np.ndarray]:
    """The identity lit by a directional ``light`` (3,) plus ``ambient``: (open, closed), each (H, W, 3) float32
    in 0..255. A session of recordings has its own light; the frames of one clip share it."""
    light = np.asarray(light, np.float32) / np.linalg.norm(light)
    diffuse = np.clip(identity.normals @ light, 0.0, None)
    shade = (ambient + (1.0 - ambient) * diffuse)[..., None] * 255.0
    soften = lambda img: cv2.GaussianBlur(img, (0, 0), 0.5)  # noqa: E731  (the optics' slight blur)
    return soften(identity.albedo_open * shade), soften(identity.albedo_closed * shade)
