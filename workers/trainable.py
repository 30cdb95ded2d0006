"""Training one trial on a worker: the Ray Tune function trainable, and a re-evaluation run.

The one module of ``workers`` that touches Ray (imported inside :func:`trainable` and
``_ray_node``, never at import): Ray ships ``workers`` to its nodes, not ``tuner``, so the
functions Ray calls on a worker live here.

Ray pickles :func:`trainable` (a sweep's trials) and :func:`retrain` (re-evaluating a
finished sweep's top configs with new seeds) by reference and runs them in a worker
process; both train through :func:`train_trial`. The
config it receives is already a plain Adam config (the driver's searcher turns
the study's samples into ``lr``, ``beta1``, ``beta2``, ``eps``, ...).
"""

from __future__ import annotations

import math
import os
import traceback
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["error_reason", "retrain", "run_function", "train_trial", "trainable"]

#: Frames of a user's traceback that a failed trial's reason keeps.
REASON_FRAMES = 3

_WORKERS_DIR = os.path.dirname(os.path.abspath(__file__))


def trainable(config: Mapping[str, Any], **kwargs: Any) -> None:
    """Train one trial, reporting each epoch's metrics dict to Ray Tune.

    ``kwargs``: the keyword arguments of :func:`train_trial` but ``report`` (Tune's is used).
    """
    from ray import tune

    train_trial(config, **kwargs, report=lambda row: tune.report(dict(row)))


def retrain(config: Mapping[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Train one config for every epoch (no scheduler) and return its epoch rows, oldest first:
    a re-evaluation with a new ``seed``. ``kwargs``: those of :func:`train_trial` but ``report``."""
    rows: list[dict[str, Any]] = []
    train_trial(config, **kwargs, report=lambda row: rows.append(dict(row)))
    return rows


def train_trial(
    config: Mapping[str, Any],
    *,
    workload: str | Callable[[Any], Any],
    workload_args: Mapping[str, Any] | None = None,
    max_epochs: int,
    seed: int,
    metric: str,
    threads: int = 1,
    device: str = "cpu",
    report: Callable[[dict[str, Any]], None],
) -> None:
    """Train one trial, passing each epoch's metrics dict to ``report``.

    A :class:`~workers.Workload` trains with :func:`workers.train`; a function
    ``train(trial)`` is called with a :class:`~workers.Trial` after torch, numpy and
    ``random`` are seeded with ``seed``.

    Inside Ray every row carries ``ray_node``, the id of the node it trained on. A
    Python exception inside training does not escape: it is reported as a last
    row ``{metric: nan, "error": reason}`` and the trial ends (the driver records it
    as failed with that reason; see :func:`error_reason`). Divergence arrives as
    ``{"diverged": True, "reason": ...}``.

    Args:
        config: ``lr``, ``beta1``, ``beta2``, ``eps`` (+ optional ``weight_decay``,
            ``amsgrad``, ``decoupled_weight_decay``, ``warmup_fraction``, ``schedule``)
            and ``trial_number``.
        workload: a registered name or ``package.module:attr`` importable here, or a function
            ``train(trial)`` itself (one defined in a notebook travels by value).
        workload_args: the spec's ``workload_args`` (already validated by the driver).
        max_epochs: epochs to train unless the scheduler stops the trial first.
        seed: seeds model init and batch order (the same for every trial of a sweep;
            a re-evaluation's own).
        metric: the sweep's metric, filled with NaN in an error report.
        threads: torch intra-op threads (the CPUs Ray reserved for the trial).
        device: ``cpu`` or ``cuda``.
        report: receives each epoch's row.
    """
    reported = {"epoch": 0}
    node = _ray_node()

    def forward(row: dict[str, Any]) -> None:
        reported["epoch"] = int(row["epoch"])
        report({**row, "ray_node": node} if node else row)

    try:
        from workers.workloads import Workload, load_workload

        loaded = load_workload(workload, workload_args) if isinstance(workload, str) else workload
        if isinstance(loaded, Workload):
            from workers.training import train

            rows = train(config, workload=loaded, max_epochs=max_epochs, seed=seed, device=device,
                         num_threads=threads, diagnostics=True)
            for row in rows:
                forward(row)
        else:
            run_function(loaded, config, workload_args=workload_args, max_epochs=max_epochs, seed=seed,
                          metric=metric, threads=threads, device=device, report=forward)
    except Exception as e:  # noqa: BLE001 - any training error becomes the trial's recorded reason
        report({metric: math.nan, "epoch": reported["epoch"], "error": error_reason(e), **({"ray_node": node} if node else {})})


def _ray_node() -> str | None:
    """The id of the Ray node this process runs on (``None`` outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def run_function(
    fn: Callable[[Any], Any],
    config: Mapping[str, Any],
    *,
    workload_args: Mapping[str, Any] | None,
    max_epochs: int,
    seed: int,
    metric: str,
    threads: int,
    device: str,
    report: Callable[[dict[str, Any]], None],
) -> None:
    """Call a user's ``fn(trial)`` as a sweep does: torch on ``threads`` threads; torch,
    numpy and ``random`` seeded with ``seed``; each epoch's row to ``report``.

    A trial that diverged or reported past ``max_epochs`` ends cleanly
    (:class:`~workers.trial.StopTrial`); any other exception from ``fn`` propagates.

    Raises:
        RuntimeError: ``fn`` returned without reporting an epoch.
    """
    import random

    import numpy as np
    import torch

    from workers.trial import StopTrial, Trial

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    trial = Trial(
        config=config,
        number=int(config.get("trial_number", 0)),
        seed=seed,
        max_epochs=max_epochs,
        device=device,
        workload_args=workload_args,
        metric=metric,
        reporter=report,
    )
    try:
        fn(trial)
    except StopTrial:
        return
    if trial.epochs_reported == 0:
        raise RuntimeError("train(trial) returned without calling trial.report(); report the metrics once per epoch")


def error_reason(error: BaseException) -> str:
    """One line for a failed trial: ``"<Type>: <message>"`` plus the last frames of the
    user's code, e.g. ``"ZeroDivisionError: division by zero (at train.py:14 in step <-
    train.py:30 in train)"``.

    Frames in ``workers`` and in installed packages (``site-packages``) are left out;
    at most :data:`REASON_FRAMES` frames, innermost first.
    """
    frames = [
        f for f in traceback.extract_tb(error.__traceback__)
        if not f.filename.startswith(_WORKERS_DIR) and "-packages" + os.sep not in f.filename
    ]
    message = f"{type(error).__name__}: {error}".strip().replace("\n", " ")
    if not frames:
        return message
    where = " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames[-REASON_FRAMES:]))
    return f"{message} (at {where})"
