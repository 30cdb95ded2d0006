"""Re-evaluation: re-train fixed configs with new seeds for every epoch, as Ray tasks.

A sweep ranks configs by one run each, so its best is partly luck (seed, batch order).
The Tuning Playbook advises re-training the top few with new seeds and picking by the
mean; each re-training here is one Ray task running :func:`workers.trainable.retrain`
(the sweep's workload, resources and ``runtime_env``; no scheduler, no sampler: these
runs are not trials, and the study's sampler never sees them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuner.executor._outcome import classify
from tuner.executor._ray import init_ray, sweep_runtime_env, trial_kwargs
from tuner.records import Outcome

if TYPE_CHECKING:
    from tuner.spec import SweepSpec

__all__ = ["Rerun", "rerun"]

# Keys of a training row that are not metrics.
_NOT_METRICS = {"epoch", "diverged", "reason", "error"}


@dataclass(frozen=True)
class Rerun:
    """One re-training: trial ``number``'s ``config`` with ``seed``."""

    number: int
    seed: int
    config: dict[str, Any]


def rerun(
    spec: SweepSpec,
    runs: list[Rerun],
    *,
    on_done: Callable[[Rerun, list[tuple[int, dict[str, float]]], Outcome], None],
    ray_address: str | None = None,
) -> None:
    """Train each of ``runs`` for ``spec.max_epochs`` epochs, in parallel as Ray's resources allow.

    Args:
        spec: the sweep's spec (workload, its args, metric, resources, ``max_failures``).
        runs: what to train.
        on_done: called on this thread as each run ends, with its epochs (``(epoch,
            metrics)`` pairs) and outcome (``completed``, or ``failed`` with a reason:
            an error, divergence, or a worker that died ``max_failures + 1`` times).
        ray_address: an existing Ray cluster; ``None`` starts (or reuses) local Ray.
    """
    import ray

    from workers.trainable import retrain

    if not runs:
        return
    init_ray(ray_address, sweep_runtime_env(spec))
    resources = spec.resources_per_trial
    task = ray.remote(retrain).options(num_cpus=resources.cpu, num_gpus=resources.gpu, max_retries=spec.max_failures)
    pending = {
        task.remote({**run.config, "trial_number": run.number}, **{**trial_kwargs(spec), "seed": run.seed}): run
        for run in runs
    }
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        run = pending.pop(ref)
        try:
            rows = ray.get(ref)
            error = None
        except ray.exceptions.RayError as e:
            rows, error = [], f"the worker failed: {type(e).__name__}"
        epochs = [(int(r["epoch"]), _metrics(r)) for r in rows if "error" not in r]
        outcome = classify(rows[-1] if rows else None, metric=spec.metric, max_epochs=spec.max_epochs, error=error)
        on_done(run, epochs, outcome)


def _metrics(row: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in row.items()
        if k not in _NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
