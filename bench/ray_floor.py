"""The least a whole process on a fresh local Ray pays: ``bench/whole_process.py``'s floors.

Two processes that train nothing, each started, run and ended as the other contenders are
(Python's start, local Ray with the workload's code as the job's ``runtime_env``, the work,
Ray's shutdown at exit):

- ``--floor tune``: Ray Tune runs ``--n-trials`` trials with actor reuse, each reporting the
  metric ``--max-epochs`` times from its config (no model, no data, no search algorithm, no
  scheduler): what any sweep that runs its trials through Ray Tune pays before its first epoch
  and after its last (adamtune's standard execution, the Ray Tune script).
- ``--floor actor``: one Ray actor that imports torch and ``workers`` and answers once: what
  a sweep that trains in one Ray worker process pays (adamtune's packed execution).

Each prints a result line as the Ray Tune script does (``best <metric> <value>: {config}``), so
``bench/whole_process.py`` times it the same way. A contender cannot beat its floor's exit
time, so a speed-up target against the Ray Tune script above the floor's is out of reach
while trials run on a fresh local Ray.

    python bench/ray_floor.py --floor tune --n-trials 16 --max-epochs 8
    python bench/ray_floor.py --floor actor
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor", choices=["tune", "actor"], default="tune")
    parser.add_argument(
        "--workload", default="digits_mlp", help="what a spec's `workload:` takes (its code is shipped)"
    )
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--metric", default="val_loss")
    args = parser.parse_args(argv)
    print(f"Ray floor ({args.floor}): {args.workload}, {args.n_trials} trials x {args.max_epochs} reports", flush=True)

    from tuner.executor import start_local_ray
    from tuner.workload import runtime_env

    start_local_ray(runtime_env(args.workload))
    best = tune_floor(args) if args.floor == "tune" else actor_floor()
    print(f"best {args.metric} {best[0]:.5g}: {json.dumps(best[1])}", flush=True)


def tune_floor(args: argparse.Namespace) -> tuple[float, dict[str, float]]:
    """Ray Tune's trials with nothing in them; the best (value, config)."""
    from ray import tune

    metric, epochs = args.metric, args.max_epochs

    def trainable(config: dict[str, float]) -> None:
        for epoch in range(1, epochs + 1):
            tune.report({metric: config["x"] / epoch})

    with tempfile.TemporaryDirectory(prefix="ray-floor-") as storage:
        results = tune.Tuner(
            trainable,
            param_space={"x": tune.uniform(0.0, 1.0)},
            tune_config=tune.TuneConfig(num_samples=args.n_trials, metric=metric, mode="min", reuse_actors=True),
            run_config=tune.RunConfig(name="ray-floor", storage_path=storage, verbose=0),
        ).fit()
        best = results.get_best_result(metric=metric, mode="min", scope="last")
    return best.metrics[metric], best.config


def actor_floor() -> tuple[float, dict[str, float]]:
    """One Ray worker process that imports what a pack's process imports; (0, {})."""
    import ray

    @ray.remote(num_cpus=1)
    class Imports:
        def ready(self) -> float:
            for name in ("torch", "workers"):  # what their imports cost is what is measured
                importlib.import_module(name)
            return 0.0

    return ray.get(Imports.remote().ready.remote()), {}


if __name__ == "__main__":
    main()
