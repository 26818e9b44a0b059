"""The synthetic world's difficulty and speed: generation time, face detection, and the linear probes.

For each preset, on a CASME II-sized set (26 subjects, 255 clips; 247 in the 5-class scheme), prints in one run:
the seconds to generate it, the share of onset frames where OpenCV's Haar cascade finds the face, and the LOSO
macro F1 of a logistic regression on the apex frame, the onset-to-apex difference and the dynamic image, for every
grid (16, 32 px) and C (0.01, 1), with the lowest and highest per input. Calibration targets (issue: "a synthetic
world that can test MPT"): default preset, apex frame within 0.05 of chance (0.20), difference and dynamic image
between 0.35 and 0.55 (hand-crafted baselines on CASME II score about 0.47); easy preset, difference at least 0.8.

    python benchmarks/bench_synthetic.py [--presets default easy] [--seed 0] [--subjects 26] [--out DIR]
                                         [--figure docs/synthetic_filmstrip.png]

``--figure`` also draws one clip of each class of the first preset (onset, apex, offset, apex - onset x8): the
README's picture.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from mpt_utils.data import (
    frame_index,
    haar_face_detector,
    load_dataset,
    make_synthetic,
    read_frame,
)
from mpt_utils.train import pixel_baselines, probe_ranges


def face_rate(samples) -> float:
    """The share of onset frames where the Haar cascade finds a face."""
    return float(np.mean([haar_face_detector(read_frame(s.frame_paths[int(frame_index(s, s.onset))])) is not None
                          for s in samples]))


def class_figure(samples, path: Path, caption: str) -> None:
    """One clip per class: onset, apex and offset frames and the apex-minus-onset difference (x8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mpt_utils.data import read_key_frame
    from mpt_utils.plotting import difference_image

    classes = ["happiness", "surprise", "disgust", "repression", "others"]
    picks = [next(s for s in samples if s.label == c) for c in classes]
    fig, axes = plt.subplots(len(picks), 4, figsize=(6.4, 1.75 * len(picks)))
    for row, s in enumerate(picks):
        frames = {k: read_key_frame(s, k, 112) for k in ("onset", "apex", "offset")}
        shown = [frames["onset"], frames["apex"], frames["offset"], difference_image(frames["onset"], frames["apex"])]
        for col, (image, title) in enumerate(zip(shown, ["onset", "apex", "offset", "apex - onset (x8)"])):
            axes[row, col].imshow(image)
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(title, fontsize=9)
        axes[row, 0].set_ylabel(f"{s.label}\nAU {s.action_units}", fontsize=8)
    fig.suptitle(caption, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["default", "easy"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subjects", type=int, default=26)
    parser.add_argument("--grids", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--C", type=float, nargs="+", default=[0.01, 1.0])
    parser.add_argument("--out", default=None, help="keep the generated sets here (default: a temporary folder)")
    parser.add_argument("--figure", default=None, help="write one clip per class of the first preset here (PNG)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out or tmp)
        for preset in args.presets:
            root = base / f"{preset}-seed{args.seed}"
            start = time.perf_counter()
            make_synthetic(root, n_subjects=args.subjects, seed=args.seed, preset=preset, progress=False)
            seconds = time.perf_counter() - start
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples = load_dataset("synthetic", root)
            frames = sum(len(s.frame_paths) for s in samples)
            print(f"\n== preset {preset}, seed {args.seed}: {len(samples)} clips of {args.subjects} subjects, "
                  f"{frames} frames, generated in {seconds:.1f} s; faces found on {face_rate(samples):.0%} of the "
                  "onset frames")
            if args.figure and preset == args.presets[0]:
                class_figure(samples, Path(args.figure),
                             f"synthetic, preset {preset}, seed {args.seed}: 112 px, as the quick profile reads it")
            table = pixel_baselines(samples, grid=args.grids, C=args.C, n_jobs=2)
            print(table.round(3).to_string())
            print(probe_ranges(table).round(3).to_string())


if __name__ == "__main__":
    main()
