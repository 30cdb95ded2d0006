"""Packed training against training each trial alone, on one device (a check, not a test).

    python bench/packed_parity.py                         # cpu, 8 configs x 4 epochs
    python bench/packed_parity.py --device cuda --epochs 8

Trains K Adam configs of a packable workload twice on the same device: as one pack
(`workers.packed.train_packed`, one stacked model and `PackedAdam`) and one by one
(`workers.training.train`, `FusedAdam`). Packing promises each member the curve its
config gets alone (same seeded weights, same batches), so it prints, per epoch, the
largest relative difference of the metric between the two, and the wall time of each
way (the pack's speed-up on this device). It needs only the `workers` package and
torch: no Ray, Optuna or MLflow, so it runs on a bare GPU node. Exit 1 when a
difference exceeds --rtol (default 1e-3: fp32 reductions in a batched matmul may sum in
another order than the single one, and training amplifies that over epochs).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from workers.packed import train_packed
from workers.training import train

# spread over the adam space: lr across decades, betas and eps off their defaults
CONFIGS = [
    {"lr": lr, "beta1": b1, "beta2": b2, "eps": eps}
    for lr, b1, b2, eps in [
        (1e-3, 0.9, 0.999, 1e-8), (3e-3, 0.9, 0.99, 1e-8), (1e-2, 0.8, 0.999, 1e-6), (3e-4, 0.95, 0.9999, 1e-8),
        (3e-2, 0.9, 0.98, 1e-7), (1e-4, 0.5, 0.999, 1e-8), (5e-3, 0.99, 0.999, 1e-5), (2e-3, 0.7, 0.95, 1e-8),
    ]
]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workload", default="workers.workloads.digits:DigitsMLP",
                        help="a packable workload: registered name or module:Class (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--metric", default="val_loss")
    parser.add_argument("--rtol", type=float, default=1e-3)
    args = parser.parse_args()

    sync(args.device)
    began = time.perf_counter()
    packed = list(train_packed(CONFIGS, workload=args.workload, max_epochs=args.epochs, device=args.device))
    sync(args.device)
    packed_s = time.perf_counter() - began

    began = time.perf_counter()
    alone = [list(train(c, workload=args.workload, max_epochs=args.epochs, device=args.device)) for c in CONFIGS]
    sync(args.device)
    alone_s = time.perf_counter() - began

    print(f"packed_parity: {len(CONFIGS)} configs x {args.epochs} epochs of {args.workload} on {args.device} "
          f"(torch {torch.__version__})")
    worst = 0.0
    for epoch, rows in enumerate(packed):
        diffs = []
        for k, row in enumerate(rows):
            a, b = row[args.metric], alone[k][epoch][args.metric]
            diffs.append(abs(a - b) / max(abs(b), 1e-12))
        worst = max(worst, *diffs)
        print(f"  epoch {epoch + 1}: max relative {args.metric} difference {max(diffs):.2e}")
    print(f"  wall: packed {packed_s:.2f} s, one by one {alone_s:.2f} s ({alone_s / packed_s:.2f}x)")
    if worst > args.rtol:
        print(f"packed_parity: FAILED, difference {worst:.2e} > rtol {args.rtol:g}")
        return 1
    print(f"packed_parity: passed (max difference {worst:.2e} <= rtol {args.rtol:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
