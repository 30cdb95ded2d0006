"""The Ray Tune function trainable: trains one trial and reports each epoch to Tune.

Ray pickles :func:`trainable` by reference and runs it in a worker process. The
config it receives is already a plain Adam config (the driver's searcher turns
the study's samples into ``lr``, ``beta1``, ``beta2``, ``eps``, ...).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

__all__ = ["trainable"]


def trainable(
    config: Mapping[str, Any],
    *,
    workload: str,
    max_epochs: int,
    seed: int,
    metric: str,
    threads: int = 1,
    device: str = "cpu",
) -> None:
    """Train one trial with :func:`workers.train`, reporting each epoch's metrics dict.

    A Python exception inside training does not crash the sweep: it is reported
    as a last result ``{metric: nan, "error": "<Type>: <message>"}`` and the trial
    ends (the driver records it as failed with that reason). Divergence arrives
    from :func:`workers.train` as ``{"diverged": True, "reason": ...}``.

    Args:
        config: ``lr``, ``beta1``, ``beta2``, ``eps`` (+ optional ``weight_decay``,
            ``amsgrad``, ``decoupled_weight_decay``); other keys are ignored.
        workload: registered workload name.
        max_epochs: epochs to train unless the scheduler stops the trial first.
        seed: seeds model init and batch order (the same for every trial of a sweep).
        metric: the sweep's metric, filled with NaN in an error report.
        threads: torch intra-op threads (the CPUs Ray reserved for the trial).
        device: ``cpu`` or ``cuda``.
    """
    from ray import tune

    from workers.training import train

    epoch = 0
    try:
        for metrics in train(
            config, workload=workload, max_epochs=max_epochs, seed=seed, device=device, num_threads=threads, diagnostics=True
        ):
            epoch = int(metrics["epoch"])
            tune.report(dict(metrics))
    except Exception as e:  # noqa: BLE001 - any training error becomes the trial's recorded reason
        tune.report({metric: math.nan, "epoch": epoch, "error": f"{type(e).__name__}: {e}"})
