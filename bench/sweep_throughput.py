"""Sweep throughput: standard execution (with and without actor reuse) vs packed execution.

Runs one sweep per mode, in this process, on the same workload, search space, seed
and number of trials, one after another through one ``SweepService`` as a server runs
them (SQLite stores in a temporary ``TUNER_HOME`` under ``--home``, by default the
system's temp dir, opened before the first timed run), and prints one table row per
mode: wall time of ``SweepService.run`` (study, MLflow runs,
Ray Tune or packs, everything a user waits for), trials/hour, the best final
``val_loss`` and ``val_accuracy`` among completed trials, and trials/hour relative to
standard execution with actor reuse. Repeat ``r`` runs every mode with seed
``--seed + r`` (the sampler's seed and the training seed), so the spread of the best
values over repeats is the noise a comparison of best values must beat.

Every run starts on a fresh local Ray, untimed, as ``tuner sweep run`` starts one:
Ray starts a few idle worker processes with it, and the first trial actors (or the
pack) take those instead of starting a process (~0.3 s here). With ``--shared-ray``
one Ray serves every run, as ``tuner serve`` keeps one: only the first run finds idle
workers, and the result depends on the order of the modes.

    python bench/sweep_throughput.py                       # digits_mlp, 32 trials, K = 4, 8, 16
    python bench/sweep_throughput.py --repeats 5           # modes interleaved, medians over seeds 0-4
    python bench/sweep_throughput.py --gpu 1 --workload my_big_mlp        # packs and trials on CUDA
    python bench/sweep_throughput.py --workload char_lm --pack-sizes 4 8 --n-trials 16 --max-epochs 4 --skip-no-reuse

On a shared machine wall times are noisy: use ``--repeats`` and read the spread.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuner.service import Stores, SweepService
    from tuner.spec import SweepSpec


@dataclass
class Mode:
    """One way to run the sweep."""

    label: str
    execution: str
    reuse_actors: bool = True
    pack_size: int = 1
    walls: list[float] = field(default_factory=list)
    best_loss: list[float] = field(default_factory=list)
    best_accuracy: list[float] = field(default_factory=list)


def main() -> None:
    args = _parse_args()
    from tuner.executor import connect
    from tuner.service import Stores
    from tuner.settings import Settings
    from tuner.spec import parse_spec
    from tuner.workload import check_workload
    from workers import get_workload

    modes = [Mode("standard, no actor reuse", "standard", reuse_actors=False)] if not args.skip_no_reuse else []
    modes.append(Mode("standard, actor reuse", "standard"))
    modes += [Mode(f"packed, K={k}", "packed", pack_size=k) for k in args.pack_sizes]

    base = {
        "workload": args.workload,
        "workload_args": json.loads(args.workload_args),
        "search_space": args.search_space,
        "n_trials": args.n_trials,
        "max_epochs": args.max_epochs,
        "scheduler": args.scheduler,
        "seed": args.seed,
        "resources_per_trial": {"cpu": args.cpu, "gpu": args.gpu},
    }
    warm_up = parse_spec({"name": "warm-up", **base})
    check_workload(
        warm_up.workload, warm_up.workload_args, metric=warm_up.metric
    )  # imports torch and the workload untimed
    workload = get_workload(args.workload, warm_up.workload_args)
    next(iter(workload.train_batches(1, 0)))  # fills the prepared-data cache: every mode's workers start alike
    if args.shared_ray:
        connect(warm_up, None)  # else each run starts its own (_restart_ray)
    root = Path(tempfile.mkdtemp(prefix="sweep-bench-", dir=args.home))
    stores = Stores(Settings(home=root))
    stores.open()  # the stores and the MLflow writer process, before timing, as a server does
    print(
        f"{args.workload}, {args.n_trials} trials x {args.max_epochs} epochs, scheduler {args.scheduler}, "
        f"seed {args.seed}{f'-{args.seed + args.repeats - 1}' if args.repeats > 1 else ''}, {args.cpu:g} CPU/{args.gpu:g} GPU per trial or pack, "
        f"{'one Ray for all runs' if args.shared_ray else 'a fresh Ray per run'}; stores under {root}",
        flush=True,
    )
    for repeat in range(args.repeats):
        for i, mode in enumerate(modes):
            name = f"bench-{i}-{repeat}"
            spec = parse_spec(
                {
                    "name": name,
                    **base,
                    "seed": args.seed + repeat,
                    "execution": mode.execution,
                    "pack_size": mode.pack_size,
                }
            )
            if not args.shared_ray:
                _restart_ray(spec)
            wall, loss, accuracy = _run(_service(stores, reuse_actors=mode.reuse_actors), spec)
            mode.walls.append(wall)
            mode.best_loss.append(loss)
            mode.best_accuracy.append(accuracy)
            print(f"  [{repeat + 1}/{args.repeats}] {mode.label:<26} {wall:7.1f} s", flush=True)
    _print_table(modes, args.n_trials)


def _service(stores: Stores, *, reuse_actors: bool) -> SweepService:
    """A sweep service on the benchmark's open stores whose standard execution reuses Ray Tune's
    trial actors or not (``run_standard(reuse_actors=...)``)."""
    from tuner.executor import execute
    from tuner.service import SweepService

    return SweepService(stores.settings, stores=stores, executor=functools.partial(execute, reuse_actors=reuse_actors))


def _run(service: SweepService, spec: SweepSpec) -> tuple[float, float, float]:
    """Run one sweep; its wall time, best val_loss and best val_accuracy."""
    from mlflow.tracking import MlflowClient

    start = time.perf_counter()
    summary = service.run(spec)
    wall = time.perf_counter() - start
    client = MlflowClient(tracking_uri=service.settings.tracking_uri)
    runs = client.search_runs(
        [service.tracker.experiment_id(spec.name)], "tags.`adamtune.state` = 'completed'", max_results=10_000
    )
    accuracy = max((r.data.metrics.get("val_accuracy", float("nan")) for r in runs), default=float("nan"))
    best = summary.best()
    return wall, best[0].value if best else float("nan"), accuracy


def _restart_ray(spec: SweepSpec) -> None:
    """A fresh local Ray, with the idle workers a new Ray starts."""
    from tuner.executor import connect, disconnect

    disconnect()
    connect(spec, None)


def _print_table(modes: list[Mode], n_trials: int) -> None:
    reference = next((m for m in modes if m.label == "standard, actor reuse"), modes[0])
    reference_rate = n_trials / statistics.median(reference.walls) * 3600
    print()
    print("| mode | wall time (s) | trials/hour | best val_loss | best val_accuracy | vs standard with reuse |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in modes:
        wall = statistics.median(mode.walls)
        rate = n_trials / wall * 3600
        loss, accuracy = _median_spread(mode.best_loss, ".4f"), _median_spread(mode.best_accuracy, ".4f")
        print(
            f"| {mode.label} | {_median_spread(mode.walls, '.1f')} | {rate:,.0f} | {loss} | {accuracy} | {rate / reference_rate:.2f}x |"
        )
    if any(len(m.walls) > 1 for m in modes):
        print("\nmedian (min–max) over repeats, one seed each; trials/hour and the ratio from the median wall time")


def _median_spread(values: list[float], fmt: str) -> str:
    median = format(statistics.median(values), fmt)
    return f"{median} ({format(min(values), fmt)}–{format(max(values), fmt)})" if len(values) > 1 else median


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="digits_mlp")
    parser.add_argument(
        "--workload-args", default="{}", help="the spec's workload_args as JSON, e.g. '{\"n_layer\": 2}'"
    )
    parser.add_argument("--search-space", default="adam")
    parser.add_argument("--n-trials", type=int, default=32)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--scheduler", choices=("asha", "none"), default="asha")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pack-sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--cpu", type=float, default=1.0, help="CPUs per trial (standard) or per pack (packed)")
    parser.add_argument("--gpu", type=float, default=0.0, help="GPUs per trial or pack (> 0 trains on CUDA)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per mode, interleaved; repeat r uses seed --seed + r"
    )
    parser.add_argument("--skip-no-reuse", action="store_true", help="leave out standard without actor reuse (slow)")
    parser.add_argument(
        "--shared-ray", action="store_true", help="one Ray for every run instead of a fresh one per run"
    )
    parser.add_argument(
        "--home", default=None, help="parent folder of the temporary stores (default: the system temp dir)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
