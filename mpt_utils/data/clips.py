"""Reading a clip: temporal sampling onset..offset, face cropping, resizing, caching.

:func:`read_clip` turns a :class:`~mpt_utils.data.samples.Sample` into the standardised
``(T, H, W, 3)`` uint8 array every later step uses (the paper's section IV-A: T = 16 frames at 224 px):

1. ``T`` frame positions at regular intervals from onset to offset (``T = 1``: the apex);
2. when the clip has fewer than ``T`` frames in that span, linear interpolation between the two
   neighbouring frames; otherwise the nearest frame;
3. grayscale sources replicated to 3 channels (RGB order);
4. raw (uncropped) frames cropped to the face box found once, on the onset frame;
5. resized to ``size x size``.

:class:`ArrayCache` stores such arrays on disk keyed by the sample's files and the parameters,
so LOSO folds and epochs never decode the same JPEGs twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..config import PAPER
from ..io import atomic_save_npy, atomic_save_npz, atomic_write_json
from .loaders import DatasetError, frame_index
from .samples import Sample

#: Bump when the meaning of cached arrays changes, so old caches are not reused.
CACHE_VERSION = 1

FaceBox = tuple[int, int, int, int]  # x, y, width, height in pixels of the source frame


class FaceNotFoundError(DatasetError):
    """No face was detected on a raw frame that needs cropping."""


def incomplete_image(data: bytes) -> str | None:
    """Why an encoded JPEG, PNG or BMP file's bytes are not a whole image, or None when they end as they should.

    OpenCV decodes a truncated JPEG without an error (libjpeg fills the missing rows with grey and prints a
    warning that names no file), so the file's end is checked: a JPEG ends with its EOI marker (``FF D9``,
    possibly followed by padding), a PNG with its ``IEND`` chunk, a BMP is as long as its header says.
    """
    if data[:3] == b"\xff\xd8\xff":
        return None if b"\xff\xd9" in data[-1024:] else "a JPEG without its end marker (truncated)"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return None if b"IEND" in data[-64:] else "a PNG without its IEND chunk (truncated)"
    if data[:2] == b"BM" and len(data) >= 6:
        declared = int.from_bytes(data[2:6], "little")
        return None if len(data) >= declared else f"a BMP of {len(data)} bytes whose header declares {declared}"
    return None


def read_frame(path: Path) -> np.ndarray:
    """One frame as RGB uint8 ``(H, W, 3)``; grayscale files are replicated to 3 channels.

    A file that is missing, not an image, or not a whole image (:func:`incomplete_image`) raises a
    :class:`DatasetError` naming it.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read the frame {path} ({exc.strerror}); re-extract it from the dataset's "
                           "archive") from None
    problem = incomplete_image(data)
    image = None if problem else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(
            f"cannot decode the frame {path} ({problem or 'not an image, or damaged'}); "
            "re-extract it from the dataset's archive"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def sample_positions(sample: Sample, num_frames: int) -> np.ndarray:
    """Fractional positions (indices into ``frame_paths``) of the ``T`` frames to read.

    Regular intervals from onset to offset; ``T = 1`` gives the apex. Positions are rounded to
    the nearest frame when the span holds at least ``T`` frames, and left fractional (to be
    linearly interpolated) when it holds fewer.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if num_frames == 1:
        return np.array([frame_index(sample, sample.apex)])
    first, last = frame_index(sample, sample.onset), frame_index(sample, sample.offset)
    positions = np.linspace(first, last, num_frames)
    if last - first + 1 >= num_frames:
        positions = np.round(positions)
    return positions


# --- faces ---------------------------------------------------------------------------------------


def haar_face_detector(image: np.ndarray) -> FaceBox | None:
    """The largest frontal face found by OpenCV's bundled Haar cascade, or None."""
    cascade_path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(cascade_path))
    if cascade.empty():
        raise RuntimeError(f"OpenCV's face cascade could not be loaded from {cascade_path}")
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    min_side = max(24, min(gray.shape) // 6)
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def expand_box(box: FaceBox, shape: tuple[int, ...], margin: float) -> FaceBox:
    """Grow ``box`` by ``margin`` (a fraction of its size) on every side, clipped to the image."""
    x, y, w, h = box
    height, width = shape[:2]
    dx, dy = int(round(w * margin)), int(round(h * margin))
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
    return x0, y0, x1 - x0, y1 - y0


def face_box(
    sample: Sample,
    detector: Callable[[np.ndarray], FaceBox | None] = haar_face_detector,
    margin: float = 0.15,
    cache_dir: str | Path | None = None,
) -> FaceBox:
    """The face box of a raw clip, detected once on its onset frame (and cached as JSON).

    Raises :class:`FaceNotFoundError` when the detector finds no face.
    """
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / "faces" / f"{_digest(_fingerprint(sample), margin)}.json"
        if cache_file.exists():
            return tuple(json.loads(cache_file.read_text())["box"])
    onset_path = sample.frame_paths[int(round(frame_index(sample, sample.onset)))]
    image = read_frame(onset_path)
    found = detector(image)
    if found is None:
        raise FaceNotFoundError(
            f"no face found on the onset frame {onset_path} of {sample.key}; use the dataset's "
            "cropped frames (Cropped/, SAMM_CROP/, SMIC cropped HS) or crop the clip by hand"
        )
    box = expand_box(found, image.shape, margin)
    if cache_file is not None:
        atomic_write_json(cache_file, {"sample": sample.key, "box": list(box)})
    return box


# --- reading -------------------------------------------------------------------------------------


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    shrinking = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def read_clip(
    sample: Sample,
    num_frames: int = PAPER.num_frames,
    size: int = PAPER.image_size,
    crop: bool | None = None,
    face_detector: Callable[[np.ndarray], FaceBox | None] = haar_face_detector,
    cache: ArrayCache | None = None,
) -> np.ndarray:
    """Read a standardised clip: uint8 ``(T, size, size, 3)``, RGB.

    Parameters
    ----------
    sample: the clip to read.
    num_frames: T. Frames at regular intervals from onset to offset, linearly interpolated in
        time when the clip is shorter than T; ``T = 1`` returns the apex frame.
    size: output side in pixels.
    crop: crop the face before resizing; ``None`` crops exactly the raw (uncropped) sources.
    face_detector: ``image -> (x, y, w, h) | None`` used for raw frames (OpenCV's Haar cascade).
    cache: an :class:`ArrayCache`; the result (and the face box) are stored there and reused.
    """
    crop = (not sample.cropped) if crop is None else crop
    params = {"what": "clip", "T": num_frames, "size": size, "crop": crop}

    def compute() -> np.ndarray:
        box = face_box(sample, face_detector, cache_dir=cache.folder if cache else None) if crop else None
        return _read_positions(sample, sample_positions(sample, num_frames), size, box)

    _check_size(size)
    if cache is None:
        return compute()
    return cache.load_or_compute(sample, params, compute)


#: The key frames a coding sheet names, for :func:`read_key_frame`.
KEY_FRAMES = ("onset", "apex", "offset")


def read_key_frame(
    sample: Sample,
    which: str,
    size: int = PAPER.image_size,
    crop: bool | None = None,
    face_detector: Callable[[np.ndarray], FaceBox | None] = haar_face_detector,
) -> np.ndarray:
    """One coded frame of a clip, ``"onset"``, ``"apex"`` or ``"offset"``, read as :func:`read_clip` reads
    frames (face crop for raw sources, resized): uint8 ``(size, size, 3)``, RGB."""
    if which not in KEY_FRAMES:
        raise ValueError(f"which must be one of {KEY_FRAMES}, got {which!r}")
    _check_size(size)
    crop = (not sample.cropped) if crop is None else crop
    box = face_box(sample, face_detector) if crop else None
    return _read_positions(sample, np.array([frame_index(sample, getattr(sample, which))]), size, box)[0]


def _check_size(size: int) -> None:
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")


def _read_positions(sample: Sample, positions: np.ndarray, size: int, box: FaceBox | None) -> np.ndarray:
    """Frames at fractional ``positions`` of ``sample.frame_paths`` (linearly blended between neighbours),
    cropped to ``box`` and resized: uint8 ``(len(positions), size, size, 3)``."""
    needed = sorted({int(np.floor(p)) for p in positions} | {int(np.ceil(p)) for p in positions})
    frames = {}
    first_shape = None
    for i in needed:
        image = read_frame(sample.frame_paths[i])
        if first_shape is None:
            first_shape = (image.shape, sample.frame_paths[i])
        elif image.shape != first_shape[0]:
            raise DatasetError(
                f"the frame {sample.frame_paths[i]} is {image.shape[1]} x {image.shape[0]} pixels, but "
                f"{first_shape[1].name} of the same clip is {first_shape[0][1]} x {first_shape[0][0]}; "
                "re-extract the clip from the dataset's archive"
            )
        if box is not None:
            x, y, w, h = box
            image = image[y : y + h, x : x + w]
        frames[i] = _resize(image, size).astype(np.float32)
    clip = np.empty((len(positions), size, size, 3), dtype=np.uint8)
    for t, p in enumerate(positions):
        lo, hi = int(np.floor(p)), int(np.ceil(p))
        w = p - lo
        blended = frames[lo] if hi == lo else (1.0 - w) * frames[lo] + w * frames[hi]
        clip[t] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return clip


# --- cache ---------------------------------------------------------------------------------------


def _fingerprint(sample: Sample) -> dict[str, Any]:
    """What identifies a sample's content: its coding and each frame file's name, size and mtime."""
    files = []
    for p in sample.frame_paths:
        st = os.stat(p)
        files.append([p.name, st.st_size, st.st_mtime_ns])
    return {
        "key": sample.key,
        "onset": sample.onset,
        "apex": sample.apex,
        "offset": sample.offset,
        "fps": sample.fps,
        "files": files,
    }


def _digest(*parts: Any) -> str:
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


class ArrayCache:
    """Preprocessed arrays on disk, one file per (sample, parameters).

    The key hashes the sample's coding, its frame files (name, size, modification time) and the
    parameters, so editing a frame, the sheet or a parameter makes a new entry instead of
    returning a stale one. Files are written atomically; an unreadable entry is recomputed.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, sample: Sample, params: dict[str, Any]) -> Path:
        name = sample.key.replace("/", "_")
        return self.folder / params.get("what", "array") / f"{name}-{_digest(_fingerprint(sample), params)}"

    def load_or_compute(
        self,
        sample: Sample,
        params: dict[str, Any],
        compute: Callable[[], np.ndarray | dict[str, np.ndarray]],
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Return the cached result for ``(sample, params)``, computing and storing it if absent.

        ``compute`` returns one array (stored as ``.npy``) or a dict of arrays (``.npz``).
        """
        stem = self.path(sample, params)
        for suffix in (".npy", ".npz"):
            file = stem.parent / (stem.name + suffix)
            if file.exists():
                try:
                    if suffix == ".npy":
                        return np.load(file, allow_pickle=False)
                    with np.load(file, allow_pickle=False) as data:
                        return {k: data[k] for k in data.files}
                except (OSError, ValueError):
                    file.unlink(missing_ok=True)  # damaged entry: recompute below
        result = compute()
        if isinstance(result, dict):
            atomic_save_npz(stem.parent / (stem.name + ".npz"), **result)
        else:
            atomic_save_npy(stem.parent / (stem.name + ".npy"), result)
        return result
