"""Packed training against training each trial alone, on one device (a check, not a test).

    python bench/packed_parity.py                         # cpu, 8 configs x 4 epochs
    python bench/packed_parity.py --device cuda --epochs 8
    python bench/packed_parity.py --device cuda --workload workers.workloads.char_lm:CharLM \
        --workload-args '{"n_layer": 2, "d_model": 64, "n_head": 4, "context": 64}' --metric val_bpc

Trains K Adam configs of a packable workload twice on the same device: as one pack
(`workers.packed.train_packed`, one stacked model and `PackedAdam`) and one by one
(`workers.training.train`, `FusedAdam`). Packing promises each member the curve its
config gets alone (same seeded weights, same batches), so it prints, per epoch, the
relative difference of the metric between the two for each config, and the wall time of
each way (the pack's speed-up on this device). It needs only the `workers` package and
torch: no Ray, Optuna or MLflow, so it runs on a bare GPU node.

Exit 1 when the median config's largest difference exceeds --rtol (default 1e-3). A
packing error shows in every config; fp32 rounding (a batched matmul may sum in another
order than the single one) stays near 1e-6 in a stable config but is amplified by
training in an unstable one: on char_lm the lr 1e-2 and 3e-2 configs end up to 8e-2 apart
on an H200 while the others agree to 1e-6 (docs/cluster.md, "GPU readiness"). --math-attention puts
both ways on SDPA's math backend, to rule out attention kernels as the cause.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time

import torch

from workers.packed import train_packed
from workers.training import train
from workers.workloads import get_workload

# spread over the adam space: lr across decades, betas and eps off their defaults
CONFIGS = [
    {"lr": lr, "beta1": b1, "beta2": b2, "eps": eps}
    for lr, b1, b2, eps in [
        (1e-3, 0.9, 0.999, 1e-8),
        (3e-3, 0.9, 0.99, 1e-8),
        (1e-2, 0.8, 0.999, 1e-6),
        (3e-4, 0.95, 0.9999, 1e-8),
        (3e-2, 0.9, 0.98, 1e-7),
        (1e-4, 0.5, 0.999, 1e-8),
        (5e-3, 0.99, 0.999, 1e-5),
        (2e-3, 0.7, 0.95, 1e-8),
    ]
]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--workload",
        default="workers.workloads.digits:DigitsMLP",
        help="a packable workload: registered name or module:Class (default: %(default)s)",
    )
    parser.add_argument("--workload-args", default="{}", help="the workload's arguments as JSON")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--metric", default="val_loss")
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument(
        "--math-attention",
        action="store_true",
        help="both ways on SDPA's math backend (the pack always is on CUDA): isolates kernel differences",
    )
    args = parser.parse_args()
    workload = get_workload(args.workload, json.loads(args.workload_args))  # both ways train this instance

    attention = contextlib.nullcontext()
    if args.math_attention:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        attention = sdpa_kernel(SDPBackend.MATH)
    with attention:
        sync(args.device)
        began = time.perf_counter()
        packed = list(train_packed(CONFIGS, workload=workload, max_epochs=args.epochs, device=args.device))
        sync(args.device)
        packed_s = time.perf_counter() - began

        began = time.perf_counter()
        alone = [list(train(c, workload=workload, max_epochs=args.epochs, device=args.device)) for c in CONFIGS]
        sync(args.device)
        alone_s = time.perf_counter() - began

    print(
        f"packed_parity: {len(CONFIGS)} configs x {args.epochs} epochs of {args.workload} on {args.device} "
        f"(torch {torch.__version__})"
    )
    worst = [0.0] * len(CONFIGS)  # per config, its largest difference over the epochs
    for epoch, rows in enumerate(packed):
        diffs = [
            abs(row[args.metric] - alone[k][epoch][args.metric]) / max(abs(alone[k][epoch][args.metric]), 1e-12)
            for k, row in enumerate(rows)
        ]
        worst = [max(w, d) for w, d in zip(worst, diffs, strict=True)]
        print(
            f"  epoch {epoch + 1}: relative {args.metric} difference per config " + " ".join(f"{d:.0e}" for d in diffs)
        )
    print(f"  wall: packed {packed_s:.2f} s, one by one {alone_s:.2f} s ({alone_s / packed_s:.2f}x)")
    median, largest = statistics.median(worst), max(worst)
    verdict = "FAILED" if median > args.rtol else "passed"
    print(
        f"packed_parity: {verdict} (median config's largest difference {median:.2e}, rtol {args.rtol:g}; "
        f"largest {largest:.2e})"
    )
    return 1 if median > args.rtol else 0


if __name__ == "__main__":
    sys.exit(main())
