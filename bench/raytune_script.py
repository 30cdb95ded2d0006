"""A Ray Tune user's sweep as one whole process: ``bench/whole_process.py``'s contender.

What a user without adamtune runs: local Ray with the workload's code as the job's
``runtime_env``, then ``tune.Tuner`` + ``OptunaSearch(seed)`` + ``ASHAScheduler`` over lr,
betas and eps (:func:`tuning_quality.raytune_optuna_asha`, the same trainable as the tuning
benchmark's Ray Tune contender), then ``ResultGrid.get_best_result()`` printed. No stores,
no analysis: the process ends once Ray Tune returns.

    python bench/raytune_script.py --workload digits_mlp --n-trials 16 --max-epochs 8
    python bench/raytune_script.py --workload examples/own_model/train.py:train --n-trials 16 --max-epochs 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tuning_quality beside this file


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="digits_mlp", help="what a spec's `workload:` takes")
    parser.add_argument("--workload-args", type=json.loads, default={})
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--metric", default="val_loss")
    parser.add_argument("--mode", default="min", choices=["min", "max"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"Ray Tune script: {args.workload}, {args.n_trials} trials x {args.max_epochs} epochs", flush=True)

    import tuning_quality
    from ray import cloudpickle
    from tuning_quality import WorkloadSetup, raytune_optuna_asha, resolve_workload, worker_import

    from tuner.executor import start_local_ray
    from tuner.workload import runtime_env

    setup = resolve_workload(
        WorkloadSetup(args.workload, args.workload, args.workload_args, args.metric, args.mode, args.max_epochs)
    )
    start_local_ray(runtime_env(setup.ref))
    # The trainable lives in tuning_quality, which the workers cannot import (the job ships the
    # workload's folder, not bench/): it travels by value, as a script's own functions do.
    cloudpickle.register_pickle_by_value(tuning_quality)
    with tempfile.TemporaryDirectory(prefix="raytune-script-") as storage:
        results = raytune_optuna_asha(
            worker_import(setup.ref)[0],
            setup.args,
            function=setup.function,
            metric=args.metric,
            mode=args.mode,
            max_epochs=args.max_epochs,
            seed=args.seed,
            num_samples=args.n_trials,
            storage_path=storage,
            name="raytune-script",
            callbacks=[],
        )
        best = results.get_best_result(metric=args.metric, mode=args.mode, scope="last")
    print(f"best {args.metric} {best.metrics[args.metric]:.5g}: {json.dumps(best.config)}", flush=True)


if __name__ == "__main__":
    main()
