"""Where an epoch's time goes: K trials trained one after another vs one pack of K.

For one workload (``--workload``, ``--workload-args``) and each K in ``--pack-sizes``,
in this process, without Ray or the stores (``bench/sweep_throughput.py`` adds those):
the epoch time of one :func:`workers.train` trial (the baseline; K of them cost K times
that) and of one epoch of a :class:`workers.packed.PackedTrainer` of K, each split into
the loops' ``torch.profiler`` ranges (``workers.training.PHASES``): data (fetching and
moving batches), forward + backward, optimizer (+ clipping and the lr schedule) and
validation, as shares of the profiled epoch; "other" is what no range covers.

Wall times are medians of ``--repeats`` unprofiled epochs after one warm-up epoch;
the shares come from one more, profiled, epoch.

    python bench/pack_epoch.py --workload char_lm --pack-sizes 4 8
    python bench/pack_epoch.py --workload digits_mlp --pack-sizes 4 8 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator

import torch

CONFIG = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def main() -> None:
    args = _parse_args()
    from workers import get_workload
    from workers.packed import PackedTrainer
    from workers.training import train

    torch.set_num_threads(args.threads)
    workload = get_workload(args.workload, json.loads(args.workload_args))
    n_params = sum(p.numel() for p in workload.build_model(0).parameters())
    print(
        f"{args.workload}: {n_params:,} params, {workload.steps_per_epoch()} steps/epoch, torch {torch.__version__}, "
        f"{args.threads} torch thread(s); epoch wall time: median of {args.repeats} after a warm-up epoch"
    )

    epochs: Iterator = train(CONFIG, workload=workload, max_epochs=args.repeats + 2)
    baseline, shares = _measure(lambda: next(epochs), args.repeats)
    print(
        "| run | epoch (s) | trials/hour-equivalent vs K single trials | data | forward+backward | optimizer | validation | other |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(_row("1 trial", baseline, "", shares))
    for k in args.pack_sizes:
        trainer = PackedTrainer([CONFIG] * k, workload=workload, max_epochs=args.repeats + 2)
        wall, shares = _measure(trainer.run_epoch, args.repeats)
        print(_row(f"pack of K={k}", wall, f"{k * baseline / wall:.2f}x", shares))


def _measure(epoch: Callable[[], object], repeats: int) -> tuple[float, dict[str, float]]:
    """Median unprofiled epoch wall time, and each phase's share of one profiled epoch."""
    from torch.profiler import ProfilerActivity, profile

    from workers.training import PHASES

    epoch()  # warm-up
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        walls.append(time.perf_counter() - start)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        epoch()
    profiled = (time.perf_counter() - start) * 1e6  # µs
    totals = {e.key: e.cpu_time_total for e in prof.key_averages()}
    shares = {name: totals.get(f"adamtune.{name}", 0.0) / profiled for name in PHASES}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    return statistics.median(walls), shares


def _row(label: str, wall: float, ratio: str, shares: dict[str, float]) -> str:
    parts = " | ".join(f"{shares[key]:.0%}" for key in ("data", "forward_backward", "optimizer", "validation", "other"))
    return f"| {label} | {wall:.3f} | {ratio} | {parts} |"


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="char_lm")
    parser.add_argument("--workload-args", default="{}", help="workload_args as JSON")
    parser.add_argument("--pack-sizes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a trial's one CPU)")
    return parser.parse_args()


if __name__ == "__main__":
    main()
