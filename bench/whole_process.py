"""Whole-process sweep time as a user meets it: ``tuner sweep run`` from its start to its exit.

``bench/sweep_throughput.py`` times ``SweepService.run`` inside one process; a user also
waits for Python's imports, Ray's start, the stores' creation and the process's exit. This
runs ``tuner sweep run`` as a subprocess per mode, each on a fresh local Ray and fresh
SQLite stores, and prints per mode: seconds to the first line, to the summary's last line,
to the exit, the exit's lag after the summary, and the whole wall time relative to standard
execution with actor reuse (the baseline named in every row).

    python bench/whole_process.py                      # digits_mlp, 32 trials x 8 epochs, standard vs packed K=16
    python bench/whole_process.py --repeats 3 --pack-sizes 8 16
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_once(spec: dict, home: Path) -> tuple[float, float, float]:
    """Run ``tuner sweep run`` on ``spec``; seconds to its first line, its last line and its exit."""
    path = home / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")} | {"TUNER_HOME": str(home)}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner", "sweep", "run", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = last = None
    for _ in proc.stdout:
        last = time.monotonic() - start
        first = first if first is not None else last
    code = proc.wait()
    end = time.monotonic() - start
    if code != 0:
        raise SystemExit(f"tuner sweep run exited with {code}")
    return first, last, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="digits_mlp")
    parser.add_argument("--n-trials", type=int, default=32)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--pack-sizes", type=int, nargs="+", default=[16])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    base = {
        "workload": args.workload,
        "search_space": "adam",
        "n_trials": args.n_trials,
        "max_epochs": args.max_epochs,
        "seed": 0,
        "resources_per_trial": {"cpu": 1, "gpu": 0},
    }
    modes = {"standard, actor reuse": {"execution": "standard"}}
    modes.update({f"packed, K={k}": {"execution": "packed", "pack_size": k} for k in args.pack_sizes})
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label in modes}
    print(
        f"{args.workload}, {args.n_trials} trials x {args.max_epochs} epochs, whole `tuner sweep run` processes, "
        f"fresh local Ray and stores each, {os.cpu_count()} CPUs",
        flush=True,
    )
    for repeat in range(args.repeats):
        for label, fields in modes.items():
            with tempfile.TemporaryDirectory(prefix="whole-process-") as home:
                timing = run_once({"name": f"whole-{repeat}", **base, **fields}, Path(home))
            results[label].append(timing)
            print(f"  [{repeat + 1}/{args.repeats}] {label:<22} {timing[2]:6.1f} s", flush=True)
    baseline = statistics.median(t[2] for t in results["standard, actor reuse"])
    print(f"\n{'mode':<22} {'first line':>10} {'summary':>8} {'exit':>6} {'exit lag':>8}  vs standard, actor reuse")
    for label, timings in results.items():
        first, last, end = (statistics.median(t[i] for t in timings) for i in range(3))
        print(f"{label:<22} {first:9.1f}s {last:7.1f}s {end:5.1f}s {end - last:7.2f}s  {baseline / end:.2f}x")


if __name__ == "__main__":
    main()
