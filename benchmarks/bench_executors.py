"""Wall time of one small ablation grid on each executor, side by side, and whether they give the same numbers.

The grid: the ci profile's Table VIII rows (three variants), two LOSO folds each, a few epochs. The executors:
in-process (one fold after another), two local CPU workers (``--gpus cpu:2``), and a SLURM job array on the
cluster ``scripts/local_slurm.sh start`` makes (skipped, and said so, when ``sinfo`` does not answer).

    python benchmarks/bench_executors.py [--epochs 5] [--folds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def fold_bits(out: Path) -> dict[str, bytes]:
    bits = {}
    for fold in sorted(out.glob("*/*/folds/*")):
        if not fold.name.startswith("."):
            with np.load(fold / "predictions.npz") as p:
                bits[f"{fold.parent.parent.name}/{fold.name}"] = p["logits"].tobytes()
    return bits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--folds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:  # a folder SLURM tasks can see
        env = {**os.environ, "MPT_HOME": tmp, "MPT_CACHE_DIR": f"{tmp}/cache"}
        grid = [sys.executable, "-m", "mpt_utils.train", "--profile", "ci", "--ablation", "adapters", "--quiet",
                "--max-folds", str(args.folds), "--epochs", str(args.epochs)]
        # warm-up: the synthetic set, the pre-trained ci backbone and the preprocessing cache, timed by nobody
        subprocess.run([*grid, "--out", f"{tmp}/warmup", "--max-folds", "1", "--epochs", "1"], env=env, check=True,
                       capture_output=True)
        executors = {"in-process, sequential": [], "local, --gpus cpu:2": ["--executor", "local", "--gpus", "cpu:2"]}
        slurm = subprocess.run(["sinfo", "-h"], capture_output=True, text=True) if _has("sinfo") else None
        if slurm is not None and slurm.returncode == 0:
            executors["SLURM job array, --wait"] = ["--executor", "slurm", "--wait"]
        rows = []
        for name, extra in executors.items():
            out = Path(tmp) / name.split(",")[0].replace(" ", "_")
            start = time.perf_counter()
            subprocess.run([*grid, "--out", str(out), *extra], env=env, check=True, capture_output=True)
            rows.append((name, time.perf_counter() - start, fold_bits(out)))
        reference = rows[0][2]
        print(f"ci grid: 3 variants x {args.folds} folds x {args.epochs} epochs, {os.cpu_count()} CPU cores")
        print(f"{'executor':28} {'wall s':>8}  same numbers as in-process")
        for name, seconds, bits in rows:
            print(f"{name:28} {seconds:8.1f}  {bits == reference and len(bits) == 3 * args.folds}")
        if "SLURM job array, --wait" not in executors:
            print("(no SLURM cluster answers here: start one with `bash scripts/local_slurm.sh start` to time it)")


def _has(command: str) -> bool:
    from shutil import which

    return which(command) is not None


if __name__ == "__main__":
    main()
