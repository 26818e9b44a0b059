"""Model throughput and peak memory: forward and forward+backward clips/s, small and paper configurations, of MPT
and of MA2MI's two-branch network (every weight of which is trained).

Each configuration runs in its own process so that its peak memory (resident set on CPU, allocated memory on CUDA)
is its own. Backbone weights are random: pretrained weights change no timing (and cannot be downloaded here).

    python benchmarks/bench_model.py [--device cpu|cuda] [--batch 16] [--steps 5] [--precisions fp32,bf16]

On this project's CPU (avx512_bf16) bf16 autocast is the candidate for the quick profile's default: the table
prints each precision's clips/s beside fp32's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from mpt_utils.config import PAPER
from mpt_utils.profiles import get_profile

#: The configurations timed: each a TrainConfig, so every size comes from the one place that owns it.
CONFIGS = {
    "small (quick profile: ViT-Tiny, 112 px)": get_profile("quick").train_config(),
    "paper (ViT-B/16, 224 px)": PAPER,
    "two-branch, quick (112 px)": get_profile("quick").train_config(variant="two_branch"),
    "two-branch, paper (224 px)": PAPER.replace(variant="two_branch"),
}


def measure(name: str, device: str, batch: int, steps: int, precision_name: str) -> dict:
    import torch

    from mpt_utils.model import build_model, input_names
    from mpt_utils.runtime import select_precision

    config = CONFIGS[name]
    dev = torch.device(device)
    precision = select_precision(dev, precision_name)
    model = build_model(config.replace(pretrained=False), num_classes=5).to(dev)  # random weights: timing only
    size, frames = config.image_size, config.num_frames
    shapes = {"dynamic": (batch, 3, size, size), "magnified": (batch, frames, 3, size, size),
              "onset": (batch, 3, size, size), "apex": (batch, 3, size, size)}
    inputs = [torch.rand(shapes[n], device=dev) if n == "dynamic" else
              torch.randint(0, 256, shapes[n], dtype=torch.uint8, device=dev) for n in input_names(config.variant)]
    target = torch.randint(0, 5, (batch,), device=dev)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    autocast = torch.autocast(dev.type, dtype=precision.dtype) if precision.dtype else torch.autocast(
        dev.type, enabled=False)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def forward():
        with torch.no_grad(), autocast:
            model(*inputs)

    def train_step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(*inputs).float(), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    result = {"config": name, "device": device, "precision": precision.name, "batch": batch}
    for label, fn in [("forward", forward), ("forward+backward", train_step)]:
        for _ in range(2):  # warm-up: allocator, kernel selection
            fn()
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        result[f"{label} clips/s"] = batch * steps / (time.perf_counter() - start)
    if dev.type == "cuda":
        result["peak memory (GiB)"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        result["peak memory (GiB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: auto, fp32, bf16, fp16")
    parser.add_argument("--configs", default=None, help="comma-separated numbers of the configurations (default all)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.device, args.batch, args.steps, args.precisions)))
        return
    names = list(CONFIGS)
    if args.configs:
        names = [names[int(i)] for i in args.configs.split(",")]
    rows = []
    for name in names:
        for precision in args.precisions.split(","):
            out = subprocess.run([sys.executable, __file__, "--one", name, "--device", args.device, "--batch",
                                  str(args.batch), "--steps", str(args.steps), "--precisions", precision],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("MPT with each configuration's K, r and T, and the two-branch network; random weights (timing only)")
    print(f"{'configuration':42} {'device':6} {'prec':8} {'fwd clips/s':>12} {'fwd+bwd clips/s':>16} "
          f"{'vs fp32':>8} {'peak GiB':>9}")
    fp32 = {r["config"]: r["forward+backward clips/s"] for r in rows if r["precision"] == "fp32"}
    for r in rows:
        ratio = r["forward+backward clips/s"] / fp32[r["config"]] if r["config"] in fp32 else float("nan")
        print(f"{r['config']:42} {r['device']:6} {r['precision']:8} {r['forward clips/s']:12.1f} "
              f"{r['forward+backward clips/s']:16.1f} {ratio:7.2f}x {r['peak memory (GiB)']:9.2f}")


if __name__ == "__main__":
    main()
