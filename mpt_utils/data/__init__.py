"""Datasets: loaders for CASME II, SAMM and SMIC-HS, the synthetic generator, the clip reader.

Typical use::

    from mpt_utils.data import make_synthetic, load_dataset, read_clip, loso_splits
    root = make_synthetic("data/synthetic")
    samples = load_dataset("synthetic", root)
    clip = read_clip(samples[0], num_frames=16, size=224)   # (16, 224, 224, 3) uint8
"""

from .clips import (
    ArrayCache,
    FaceNotFoundError,
    expand_box,
    face_box,
    haar_face_detector,
    read_clip,
    read_frame,
    sample_positions,
)
from .loaders import (
    DatasetError,
    frame_number,
    list_frames,
    load_casme2,
    load_dataset,
    load_samm,
    load_smic,
)
from .resolve import default_synthetic_root, resolve_dataset
from .samples import (
    CLASS_SCHEMES,
    Sample,
    apply_scheme,
    class_names,
    label_indices,
    loso_splits,
    summarise,
)
from .synthetic import make_synthetic

__all__ = [
    "ArrayCache",
    "CLASS_SCHEMES",
    "DatasetError",
    "FaceNotFoundError",
    "Sample",
    "apply_scheme",
    "class_names",
    "default_synthetic_root",
    "expand_box",
    "face_box",
    "frame_number",
    "haar_face_detector",
    "label_indices",
    "list_frames",
    "load_casme2",
    "load_dataset",
    "load_samm",
    "load_smic",
    "loso_splits",
    "make_synthetic",
    "read_clip",
    "read_frame",
    "resolve_dataset",
    "sample_positions",
    "summarise",
]
