"""Speed of rank pooling and Eulerian magnification per 16x224x224x3 uint8 clip, on one core.

Prints, side by side in one run: rank pooling, the fast magnification, our straightforward per-level
implementation (the textbook eqs. 4-7, like the widely used MEB toolkit EVM), and whole-dataset preprocessing
throughput (clips/s) for the synthetic set, cold and with the cache warm.

    python benchmarks/bench_motion.py [--clips 40] [--repeats 30]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy/torch start their pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mpt_utils.config import PAPER  # noqa: E402
from mpt_utils.motion import magnify, magnify_reference, rank_pool  # noqa: E402


def per_call_ms(fn, repeats: int) -> float:
    fn()  # warm-up (filter design cache, allocator)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--clips", type=int, default=40, help="clips in the throughput measurement")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    t, size = PAPER.num_frames, PAPER.image_size
    base = rng.integers(40, 200, (1, size, size, 3)).astype(np.float32)
    clip = np.clip(base + rng.normal(0, 3, (t, size, size, 3)), 0, 255).astype(np.uint8)

    rank = per_call_ms(lambda: rank_pool(clip), args.repeats)
    fast = per_call_ms(lambda: magnify(clip), args.repeats)
    reference = per_call_ms(lambda: magnify_reference(clip), max(3, args.repeats // 3))
    print(f"per {t}x{size}x{size}x3 uint8 clip (the paper's alpha {PAPER.alpha:g}), one core")
    print(f"  rank pooling                        {rank:7.2f} ms   (target <= 2 ms)")
    print(f"  magnify (fast, one T x T filter)     {fast:7.2f} ms   (target <= 25 ms)")
    print(f"  magnify_reference (per level)        {reference:7.2f} ms   ({reference / fast:.1f}x the fast one)")

    from mpt_utils.data import load_dataset, make_synthetic
    from mpt_utils.train import TrainConfig, prepare_inputs

    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic(Path(tmp) / "synthetic", n_subjects=8, n_clips=args.clips, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples = load_dataset("synthetic", root)
        config = TrainConfig()  # the paper's 224 px, T = 16
        cache = Path(tmp) / "cache"
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            prepare_inputs(samples, config, cache_dir=cache, progress=False)
            timings.append(time.perf_counter() - start)
    print(f"whole-dataset preprocessing at 224 px, T=16 ({len(samples)} synthetic clips: read, crop, resize, "
          "rank pool, magnify)")
    print(f"  cold cache   {len(samples) / timings[0]:7.1f} clips/s")
    print(f"  warm cache   {len(samples) / timings[1]:7.1f} clips/s   ({timings[0] / timings[1]:.1f}x faster)")


if __name__ == "__main__":
    main()
