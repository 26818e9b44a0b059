"""Datasets: loaders for CASME II, SAMM and SMIC-HS, the synthetic generator, the clip reader.

Typical use::

    from mpt_utils.data import make_synthetic, load_dataset, read_clip, loso_splits
    root = make_synthetic("data/synthetic")
    samples = load_dataset("synthetic", root)
    clip = read_clip(samples[0], num_frames=16, size=224)   # (16, 224, 224, 3) uint8
    apex = read_key_frame(samples[0], "apex", size=224)      # (224, 224, 3) uint8

A run (profile, data, class scheme, backbone) is put together by :func:`mpt_utils.run.resolve_run`.
"""

from .checks import MAGNIFICATION_SETTINGS, magnification_table
from .clips import (
    KEY_FRAMES,
    ArrayCache,
    FaceNotFoundError,
    expand_box,
    face_box,
    haar_face_detector,
    read_clip,
    read_frame,
    read_key_frame,
    sample_positions,
)
from .loaders import (
    DatasetError,
    detect_dataset,
    frame_index,
    frame_number,
    list_frames,
    load_casme2,
    load_dataset,
    load_samm,
    load_smic,
)
from .samples import (
    CLASS_SCHEMES,
    DEFAULT_SCHEME,
    Sample,
    apply_scheme,
    check_classes,
    class_names,
    label_indices,
    loso_splits,
    one_per_class,
    summarise,
)
from .synthetic import (
    GROUND_TRUTH_FILE,
    PRESETS,
    GroundTruth,
    clean_twin,
    load_ground_truth,
    make_synthetic,
    subject_identities,
    synthetic_params,
)

__all__ = [
    "ArrayCache",
    "CLASS_SCHEMES",
    "DEFAULT_SCHEME",
    "DatasetError",
    "FaceNotFoundError",
    "GROUND_TRUTH_FILE",
    "GroundTruth",
    "KEY_FRAMES",
    "MAGNIFICATION_SETTINGS",
    "PRESETS",
    "Sample",
    "apply_scheme",
    "check_classes",
    "class_names",
    "clean_twin",
    "detect_dataset",
    "expand_box",
    "face_box",
    "frame_index",
    "frame_number",
    "haar_face_detector",
    "label_indices",
    "list_frames",
    "load_casme2",
    "load_dataset",
    "load_ground_truth",
    "load_samm",
    "load_smic",
    "loso_splits",
    "one_per_class",
    "magnification_table",
    "make_synthetic",
    "subject_identities",
    "read_clip",
    "read_frame",
    "read_key_frame",
    "sample_positions",
    "summarise",
    "synthetic_params",
]
