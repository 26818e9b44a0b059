"""FACS action units anchored to an identity's landmarks: how each moves the face, and how it changes its look.

An action unit is a list of :class:`Bump` s. A bump sits on a named landmark of the identity (plus an offset), so
a brow raiser moves *that* face's brows wherever they are. Its displacement is a Gaussian of the given width
pointing in the given direction; the clip's amplitude (pixels at 224 px) scales the direction. Sizes are in
units of the face's half width (:attr:`~.faces.Identity.scale`). Some AUs also change appearance (FACS'
furrows and wrinkles): :data:`APPEARANCE` darkens thin lines that deepen with the expression; and where skin
bunches up or is pulled down its shading changes over a broad area.

A FACS string is ``"6+12"``; ``"L12"`` / ``"R12"`` act on the image's left / right side only; ``"0"`` is the
neutral face (no action unit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .faces import Identity


@dataclass(frozen=True)
class Bump:
    """A Gaussian of displacement on a landmark. landmark: name without side (``"brow_inner"``) or a
    midline name (``"chin"``); offset (dx, dy) and sigma in face half-widths; direction (dx, dy) for the
    image's left side, mirrored (dx negated) on the right side."""

    landmark: str
    sigma: float
    direction: tuple[float, float]
    offset: tuple[float, float] = (0.0, 0.0)


_SIDED = {"brow_inner", "brow_mid", "brow_outer", "upper_lid", "lower_lid", "eye_corner", "cheek", "nose_wing",
          "nasolabial", "mouth_corner", "upper_lip", "eye"}

#: Each action unit's displacement bumps (image left side; the right side mirrors them).
MOVEMENT: dict[str, list[Bump]] = {
    "1": [Bump("brow_inner", 0.14, (0.0, -1.0))],
    "2": [Bump("brow_outer", 0.14, (0.0, -1.0))],
    "4": [Bump("brow_inner", 0.14, (0.55, 0.8)), Bump("brow_mid", 0.14, (0.2, 0.5))],
    "6": [Bump("cheek", 0.20, (0.0, -0.8)), Bump("lower_lid", 0.08, (0.0, -0.5))],
    "7": [Bump("lower_lid", 0.08, (0.0, -0.8)), Bump("upper_lid", 0.07, (0.0, 0.3))],
    "9": [Bump("nose_wing", 0.10, (0.0, -0.9)), Bump("glabella", 0.10, (0.0, 0.4))],
    "10": [Bump("upper_lip", 0.12, (0.0, -0.9))],
    "12": [Bump("mouth_corner", 0.12, (-0.6, -0.8))],
    "14": [Bump("mouth_corner", 0.09, (0.7, 0.0))],
    "15": [Bump("mouth_corner", 0.11, (-0.2, 0.9))],
    "17": [Bump("chin", 0.16, (0.0, -0.9)), Bump("lower_lip", 0.08, (0.0, -0.5))],
    "20": [Bump("mouth_corner", 0.11, (-0.9, 0.2))],
    "25": [Bump("lower_lip", 0.09, (0.0, 0.8))],
    "26": [Bump("chin", 0.25, (0.0, 1.0)), Bump("lower_lip", 0.12, (0.0, 0.6))],
}


@dataclass(frozen=True)
class Furrow:
    """A thin dark line that deepens with an AU: from landmark + start to landmark + end (face half-widths),
    ``depth`` the darkening at the apex (fraction of the brightness), ``width`` in half-widths."""

    landmark: str
    start: tuple[float, float]
    end: tuple[float, float]
    depth: float
    width: float = 0.025


#: Appearance changes (FACS): furrows between the brows (AU4), crow's feet and the cheek's fold (AU6),
#: nose wrinkles (AU9), the nasolabial fold deepening (AU9, AU10, AU12), dimples (AU14), chin wrinkles (AU17),
#: the dark gap of parted lips (AU25, AU26).
APPEARANCE: dict[str, list[Furrow]] = {
    "4": [Furrow("glabella", (-0.05, -0.10), (-0.03, 0.08), 0.25),
          Furrow("glabella", (0.05, -0.10), (0.03, 0.08), 0.25)],
    "6": [Furrow("eye_corner", (0.04, -0.06), (0.12, -0.10), 0.2),
          Furrow("eye_corner", (0.04, 0.04), (0.12, 0.08), 0.2),
          Furrow("lower_lid", (-0.12, 0.06), (0.12, 0.06), 0.15)],
    "9": [Furrow("glabella", (-0.06, 0.22), (0.06, 0.22), 0.2), Furrow("glabella", (-0.05, 0.28), (0.05, 0.28), 0.2),
          Furrow("nasolabial", (0.03, -0.12), (-0.02, 0.10), 0.2)],
    "10": [Furrow("nasolabial", (0.03, -0.12), (-0.02, 0.12), 0.25)],
    "12": [Furrow("nasolabial", (0.02, -0.10), (-0.04, 0.14), 0.2)],
    "14": [Furrow("mouth_corner", (-0.05, -0.03), (-0.05, 0.04), 0.25)],
    "17": [Furrow("chin", (-0.10, -0.04), (0.10, -0.04), 0.15), Furrow("chin", (-0.08, 0.03), (0.08, 0.03), 0.12)],
    "25": [Furrow("mouth", (-0.25, 0.0), (0.25, 0.0), 0.35, 0.04)],
    "26": [Furrow("mouth", (-0.25, 0.02), (0.25, 0.02), 0.4, 0.05)],
}

#: The action units the generator can render, in numeric order.
ACTION_UNITS: tuple[str, ...] = tuple(sorted(MOVEMENT, key=int))


def parse_aus(aus: str) -> list[tuple[str, str]]:
    """``"4+L10"`` -> ``[("4", ""), ("10", "L")]``; ``"0"`` (the neutral face) -> ``[]``."""
    parsed = []
    for part in aus.split("+"):
        part = part.strip()
        side = part[0] if part[:1] in ("L", "R") else ""
        number = part.lstrip("LR")
        if number == "0":
            continue
        if number not in MOVEMENT:
            raise ValueError(f"unknown action unit {part!r} in {aus!r}; the generator renders {list(ACTION_UNITS)} "
                             "(L/R prefix: one side only; 0: the neutral face)")
        parsed.append((number, side))
    return parsed


def action_unit_set(aus: str) -> set[str]:
    """The AU numbers of a FACS string, sides dropped: ``"4+L10"`` -> ``{"4", "10"}`` (``"0"``: none)."""
    return {au.strip().lstrip("LR") for au in aus.split("+") if au.strip() and au.strip().lstrip("LR") != "0"}


def _anchor(identity: Identity, name: str, side: str, offset: tuple[float, float]) -> tuple[float, float, float]:
    """Where a bump or furrow sits on this identity, in pixels, and its mirror sign (+1 left, -1 right)."""
    sign = 1.0 if side == "L" else -1.0
    key = f"{name}_{side}" if name in _SIDED else name
    x, y = identity.landmarks[key]
    # offsets are given for the left side: "outwards" is -x there, so mirror x on the right
    return x + sign * offset[0] * identity.scale, y + offset[1] * identity.scale, sign


def _sides(name: str, side: str) -> tuple[str, ...]:
    """The sides a bump or furrow is drawn on: both, one (``L``/``R`` AUs), or once for a midline landmark."""
    if name not in _SIDED:
        return ("L",)  # a midline landmark: drawn once, as given
    return (side,) if side else ("L", "R")


def expression_fields(identity: Identity, aus: str, amplitude_px: float, appearance: float = 1.0,
                      shading: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """An AU combination at its apex on this identity's neutral face.

    Returns ``displacement`` (H, W, 2) float32, the forward displacement (x right, y down, pixels) of the face's
    content, and ``darkening`` (H, W) float32, the fraction by which the expression darkens the skin (negative:
    brightens): its furrows, and the broad change of shading where skin bunches up (brighter, as it bulges
    towards the light) or is pulled down (darker), ``shading`` per pixel (at 224 px) of a unit direction's motion.
    ``amplitude_px``: a unit direction's peak displacement in pixels of this frame (0: nothing changes);
    ``appearance``: a factor on every furrow's depth (0: motion only), which also grows with the amplitude.
    """
    h, w = identity.height, identity.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.zeros((h, w, 2), np.float32)
    dark = np.zeros((h, w), np.float32)
    furrows = np.zeros((h, w), np.float32)
    s = identity.scale
    strength = amplitude_px * 224.0 / h  # the amplitude in pixels at 224 px: shading grows with the motion,
    deepen = 1.5 * strength / (0.5 + strength)  # furrows too, saturating (1 at 1 px, 0 without motion)
    for number, side in parse_aus(aus):
        for bump in MOVEMENT[number]:
            for sd in _sides(bump.landmark, side):
                x0, y0, sign = _anchor(identity, bump.landmark, sd, bump.offset)
                g = np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / (bump.sigma * s) ** 2)
                flow[..., 0] += amplitude_px * sign * bump.direction[0] * g
                flow[..., 1] += amplitude_px * bump.direction[1] * g
                broad = np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / (1.6 * bump.sigma * s) ** 2)
                dark += shading * strength * bump.direction[1] * broad
        for furrow in APPEARANCE.get(number, []):
            for sd in _sides(furrow.landmark, side):
                ax, ay, _ = _anchor(identity, furrow.landmark, sd, furrow.start)
                bx, by, _ = _anchor(identity, furrow.landmark, sd, furrow.end)
                furrows = np.maximum(furrows, appearance * deepen * furrow.depth * _segment(xx, yy, ax, ay, bx, by,
                                                                                 furrow.width * s))
    return flow, np.clip(dark + furrows, -0.5, 0.9)


def _segment(xx, yy, ax, ay, bx, by, width) -> np.ndarray:
    """(H, W) in 0..1: a soft line from (ax, ay) to (bx, by) of the given width (pixels)."""
    dx, dy = bx - ax, by - ay
    t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / max(dx * dx + dy * dy, 1e-6), 0.0, 1.0)
    dist2 = (xx - ax - t * dx) ** 2 + (yy - ay - t * dy) ** 2
    return np.exp(-0.5 * dist2 / max(width, 0.6) ** 2).astype(np.float32)
