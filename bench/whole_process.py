"""Whole-process sweep time as a user meets it: ``tuner sweep run`` from its start to its exit,
against a Ray Tune user's script (``bench/raytune_script.py``) on the same workload.

``bench/sweep_throughput.py`` times ``SweepService.run`` inside one process; a user also
waits for Python's imports, Ray's start, the stores' creation and the process's exit. This
runs each contender as a subprocess, each on a fresh local Ray (and adamtune on fresh SQLite
stores), per workload: the Ray Tune script (OptunaSearch + ASHA, ``reuse_actors``), adamtune
standard (actor reuse) and, for a Workload class that packs, adamtune packed. It prints per
contender: seconds to the first line, to the result (adamtune's ``best config:`` line, the
script's ``best <metric> <value>: {config}`` line), to the last line, to the exit, the exit's lag
after the last line, and the speed-up against the Ray Tune script (its wall time over the contender's:
above 1 is faster than the script). Issue 21's targets: standard >= 1.5x and packed >= 2.5x on
the 16-trial digits sweep; a ``train(trial)`` function (``examples/own_model``) >= 1.0x.

Beside them run the floors (``bench/ray_floor.py``): the same start, Ray and exit with nothing
trained, through Ray Tune (what standard execution and the script cannot go below) and in one
Ray actor (packed execution's). A line per target then says the exit time the target asks for,
the contender's and its floor's.

    python bench/whole_process.py        # digits_mlp and examples/own_model/train.py:train, 16 trials x 8 epochs
    python bench/whole_process.py --workloads digits_mlp --repeats 3 --pack-sizes 8 16
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


def is_result(line: str) -> bool:
    """The line that carries a contender's recommendation (see the module docstring)."""
    return line.startswith("best config:") or (line.startswith("best ") and ": {" in line)


def run_once(command: list[str], home: Path) -> tuple[float, float, float, float]:
    """Run ``command`` with ``TUNER_HOME`` at ``home``; seconds to its first line, its result line
    (:func:`is_result`), its last line and its exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")} | {"TUNER_HOME": str(home)}
    start = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = last = result = None
    lines = []
    for line in proc.stdout:
        last = time.monotonic() - start
        first = first if first is not None else last
        if result is None and is_result(line):
            result = last
        lines.append(line)
    code = proc.wait()
    end = time.monotonic() - start
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited with {code}:\n{''.join(lines[-20:])}")
    if result is None:
        raise SystemExit(f"{' '.join(command)} printed no result line:\n{''.join(lines[-20:])}")
    return first, result, last, end


def contenders(workload: str, args: argparse.Namespace, home: Path) -> tuple[dict[str, list[str]], bool]:
    """Each contender's command line for ``workload`` (its spec written under ``home``), and
    whether the workload is a function ``train(trial)``."""
    sys.path.insert(0, str(ROOT / "bench"))
    from tuning_quality import WorkloadSetup, resolve_workload

    setup = resolve_workload(WorkloadSetup(workload, workload, {}, "val_loss", "min", args.max_epochs))
    base = {
        "workload": setup.ref,
        "search_space": "adam",
        "n_trials": args.n_trials,
        "max_epochs": args.max_epochs,
        "seed": 0,
        "resources_per_trial": {"cpu": 1, "gpu": 0},
    }
    modes = {"adamtune, standard": {"execution": "standard"}}
    if setup.can_pack:
        modes.update({f"adamtune, packed K={k}": {"execution": "packed", "pack_size": k} for k in args.pack_sizes})
    commands = {
        RAY_TUNE: [
            sys.executable,
            str(ROOT / "bench" / "raytune_script.py"),
            f"--workload={setup.ref}",
            f"--n-trials={args.n_trials}",
            f"--max-epochs={args.max_epochs}",
        ]
    }
    floors = {FLOOR_TUNE: "tune", FLOOR_ACTOR: "actor"} if setup.can_pack else {FLOOR_TUNE: "tune"}
    for label, floor in floors.items():
        commands[label] = [
            sys.executable,
            str(ROOT / "bench" / "ray_floor.py"),
            f"--floor={floor}",
            f"--workload={setup.ref}",
            f"--n-trials={args.n_trials}",
            f"--max-epochs={args.max_epochs}",
        ]
    for label, fields in modes.items():
        path = home / f"{slug(label)}.yaml"
        path.write_text(yaml.safe_dump({"name": "whole", **base, **fields}))
        commands[label] = [sys.executable, "-m", "tuner", "sweep", "run", str(path)]
    return commands, setup.function


RAY_TUNE = "Ray Tune script"
FLOOR_TUNE = "floor: Ray Tune, no-op"
FLOOR_ACTOR = "floor: one Ray actor"
# Issue 21's targets, speed-up against the Ray Tune script, and the floor each contender cannot beat.
TARGETS = {"adamtune, standard": (1.5, FLOOR_TUNE), "adamtune, packed": (2.5, FLOOR_ACTOR)}
FUNCTION_TARGET = (1.0, FLOOR_TUNE)  # a train(trial) function, standard execution


def slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["digits_mlp", "examples/own_model/train.py:train"])
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--pack-sizes", type=int, nargs="+", default=[16])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(
        f"{args.n_trials} trials x {args.max_epochs} epochs, whole processes, fresh local Ray and stores each, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    for workload in args.workloads:
        with tempfile.TemporaryDirectory(prefix="whole-process-specs-") as specs:
            commands, function = contenders(workload, args, Path(specs))
            results: dict[str, list[tuple[float, float, float, float]]] = {label: [] for label in commands}
            for repeat in range(args.repeats):
                for label, command in commands.items():
                    with tempfile.TemporaryDirectory(prefix="whole-process-") as home:
                        timing = run_once(command, Path(home))
                    results[label].append(timing)
                    print(f"  {workload} [{repeat + 1}/{args.repeats}] {label:<24} {timing[3]:6.1f} s", flush=True)
        baseline = statistics.median(t[3] for t in results[RAY_TUNE])
        exits = {label: statistics.median(t[3] for t in timings) for label, timings in results.items()}
        print(f"\n{workload}")
        print(
            f"{'contender':<24} {'first line':>10} {'result':>7} {'last line':>9} {'exit':>6} {'exit lag':>8}  vs {RAY_TUNE}"
        )
        for label, timings in results.items():
            first, result, last, end = (statistics.median(t[i] for t in timings) for i in range(4))
            print(
                f"{label:<24} {first:9.1f}s {result:6.1f}s {last:8.1f}s {end:5.1f}s {end - last:7.2f}s  {baseline / end:.2f}x"
            )
        for line in target_lines(exits, baseline, function=function):
            print(line)
        print(flush=True)


def target_lines(exits: dict[str, float], baseline: float, *, function: bool) -> list[str]:
    """One line per target: the exit time it asks for, the contender's, and its floor's (the
    speed-up no contender of that kind can pass on this machine)."""
    lines = []
    for label, end in exits.items():
        kind = next((k for k in TARGETS if label.startswith(k)), None)
        if kind is None:
            continue
        target, floor = FUNCTION_TARGET if function else TARGETS[kind]
        lines.append(
            f"target {label}: >= {target:.1f}x, an exit by {baseline / target:.1f} s; it exits at {end:.1f} s "
            f"({baseline / end:.2f}x); its floor ({floor}) at {exits[floor]:.1f} s ({baseline / exits[floor]:.2f}x)"
        )
    return lines


if __name__ == "__main__":
    main()
