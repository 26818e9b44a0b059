"""The :class:`Sample` record, the class schemes of the three datasets, and LOSO splits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..runtime import say_once


@dataclass(frozen=True)
class Sample:
    """One micro-expression clip as described by its dataset.

    Attributes
    ----------
    dataset: ``"casme2"``, ``"samm"``, ``"smic"`` or ``"synthetic"``.
    subject: subject id as the dataset writes it (``"sub01"``, ``"006"``, ``"s3"``).
    clip: clip id (``"EP02_01f"``, ``"006_1_2"``, ``"s3_po_01"``).
    frame_paths: every frame file of the clip, sorted by the frame number in the file name.
    frame_numbers: the frame number parsed from each file name (same order as ``frame_paths``).
    onset, apex, offset: frame numbers (not list indices) of the expression's key frames.
    emotion: the label exactly as the coding sheet (or the folder, for SMIC) gives it.
    label: class name under the chosen class scheme.
    fps: recording frame rate in frames per second.
    action_units: FACS action units from the sheet (``"4+L10"``), empty when unknown.
    cropped: True when the frames are already face crops; raw frames get a face crop on reading.
    apex_estimated: True when the apex was not coded and the middle frame stands in for it.
    """

    dataset: str
    subject: str
    clip: str
    frame_paths: tuple[Path, ...]
    frame_numbers: tuple[int, ...]
    onset: int
    apex: int
    offset: int
    emotion: str
    label: str
    fps: float
    action_units: str = ""
    cropped: bool = True
    apex_estimated: bool = False

    def __repr__(self) -> str:  # one readable line instead of every frame path
        apex = f"{self.apex}{' (estimated)' if self.apex_estimated else ''}"
        return (f"Sample({self.key}: {self.label!r} (sheet: {self.emotion!r}), AUs {self.action_units or '?'}, "
                f"onset {self.onset} / apex {apex} / offset {self.offset} at {self.fps:g} fps, "
                f"{len(self.frame_paths)} frames #{self.frame_numbers[0]}..#{self.frame_numbers[-1]} in "
                f"{self.frame_paths[0].parent})")

    @property
    def group(self) -> str:
        """The LOSO group: dataset and subject (subjects of different datasets never merge)."""
        return f"{self.dataset}/{self.subject}"

    @property
    def key(self) -> str:
        """A unique, human-readable id: ``dataset/subject/clip``."""
        return f"{self.dataset}/{self.subject}/{self.clip}"

    @property
    def duration_s(self) -> float:
        """Onset-to-offset duration in seconds."""
        return (self.offset - self.onset) / self.fps


# --- class schemes -------------------------------------------------------------------------------
# A scheme maps a normalised emotion name (lower case, "other" -> "others") to a class name. The
# tuple order is the class order (label index) used everywhere.

_MEGC_NEGATIVE = ("negative", "repression", "anger", "contempt", "disgust", "fear", "sadness")

CLASS_SCHEMES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    # CASME II, 5 classes (the paper's Table I): fear and sadness are dropped.
    "casme2": (
        ("happiness", "surprise", "disgust", "repression", "others"),
        {e: e for e in ("happiness", "surprise", "disgust", "repression", "others")},
    ),
    # SAMM, the 5 classes with more than 10 samples (the paper's Table II).
    "samm": (
        ("anger", "contempt", "happiness", "surprise", "others"),
        {e: e for e in ("anger", "contempt", "happiness", "surprise", "others")},
    ),
    # SMIC-HS, 3 classes.
    "smic": (
        ("positive", "negative", "surprise"),
        {e: e for e in ("positive", "negative", "surprise")},
    ),
    # MEGC 2019 composite: negative / positive / surprise across all three datasets; CASME II's
    # and SAMM's "others" are left out.
    "megc2019": (
        ("negative", "positive", "surprise"),
        {
            **{e: "negative" for e in _MEGC_NEGATIVE},
            "happiness": "positive",
            "positive": "positive",
            "surprise": "surprise",
        },
    ),
}

DEFAULT_SCHEME = {"casme2": "casme2", "synthetic": "casme2", "samm": "samm", "smic": "smic"}


def normalise_emotion(emotion: str) -> str:
    """Lower-case, trimmed emotion name; SAMM's ``Other`` becomes ``others``."""
    e = str(emotion).strip().lower()
    return "others" if e == "other" else e


def class_names(scheme: str) -> tuple[str, ...]:
    """The ordered class names of a scheme (label index = position)."""
    return _scheme(scheme)[0]


def _scheme(scheme: str) -> tuple[tuple[str, ...], dict[str, str]]:
    if scheme not in CLASS_SCHEMES:
        raise ValueError(
            f"unknown class scheme {scheme!r}; choose one of {sorted(CLASS_SCHEMES)} "
            "(or pass classes=None for the dataset's own scheme)"
        )
    return CLASS_SCHEMES[scheme]


def apply_scheme(samples: Sequence[Sample], scheme: str) -> list[Sample]:
    """Label ``samples`` under ``scheme``; samples whose emotion is outside it are dropped.

    The number dropped per emotion is said once (:func:`mpt_utils.runtime.say_once`), never silently.
    """
    _, mapping = _scheme(scheme)
    kept, dropped = [], Counter()
    for s in samples:
        cls = mapping.get(normalise_emotion(s.emotion))
        if cls is None:
            dropped[normalise_emotion(s.emotion)] += 1
        else:
            kept.append(replace(s, label=cls))
    if dropped:
        detail = ", ".join(f"{e}: {n}" for e, n in sorted(dropped.items()))
        say_once(f"class scheme {scheme!r}: {sum(dropped.values())} of {len(samples)} samples left out, their "
                 f"emotion is not one of its classes ({detail})")
    return kept


def one_per_class(samples: Sequence[Sample], classes: Sequence[str]) -> dict[str, Sample]:
    """One example clip per class (in ``classes`` order), each from a different subject where the data allow it,
    so that figures comparing classes do not show the same face again and again. A class without samples is left
    out. Deterministic: the first clip, in ``samples`` order, of a subject not shown yet."""
    chosen: dict[str, Sample] = {}
    for cls in classes:
        of_class = [s for s in samples if s.label == cls]
        if of_class:
            shown = {c.group for c in chosen.values()}
            chosen[cls] = next((s for s in of_class if s.group not in shown), of_class[0])
    return chosen


def label_indices(samples: Sequence[Sample], classes: Sequence[str]) -> np.ndarray:
    """Integer labels (N,) of ``samples`` in the order of ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({s.label for s in samples} - set(index))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {list(classes)}")
    return np.array([index[s.label] for s in samples], dtype=np.int64)


def check_classes(samples: Sequence[Sample], classes: Sequence[str]) -> None:
    """Raise a :class:`ValueError` unless LOSO can score every class: the dataset is not empty, every class has
    samples somewhere in it, and no sample carries a label outside ``classes``."""
    if not samples:
        raise ValueError("the dataset is empty: nothing to train on (check the data folder and the class scheme)")
    present = {s.label for s in samples}
    missing = [c for c in classes if c not in present]
    if missing:
        raise ValueError(
            f"class(es) {missing} of the scheme have no samples in the whole dataset, so LOSO cannot score them; "
            "choose a class scheme without them, or check the labels"
        )
    label_indices(samples, classes)  # raises on labels outside the classes


def loso_splits(samples: Sequence[Sample]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Leave-one-subject-out folds: ``(subject group, train indices, test indices)`` per subject.

    The partition and its order are those of scikit-learn's ``LeaveOneGroupOut`` with
    ``groups = [s.group for s in samples]`` (groups in sorted order).
    """
    if len(samples) == 0:
        raise ValueError("loso_splits needs at least one sample; the dataset is empty")
    groups = np.array([s.group for s in samples])
    folds = []
    for g in np.unique(groups):
        test = np.flatnonzero(groups == g)
        train = np.flatnonzero(groups != g)
        folds.append((str(g), train, test))
    return folds


def summarise(samples: Sequence[Sample]):
    """A pandas table: one row per subject group, one column per class label, with totals."""
    import pandas as pd

    frame = pd.DataFrame({"subject": [s.group for s in samples], "label": [s.label for s in samples]})
    table = pd.crosstab(frame["subject"], frame["label"], margins=True, margins_name="total")
    return table
