"""How a finished trial is classified, from its last reported result (one rule for every writer)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from tuner.records import Outcome

__all__ = ["classify"]


def classify(
    result: Mapping[str, Any] | None,
    *,
    metric: str,
    max_epochs: int,
    error: str | None = None,
    cancelled: bool = False,
) -> Outcome:
    """Classify a trial that ended.

    Args:
        result: the trial's last reported result (``None`` if it never reported).
        metric: the sweep's metric key.
        max_epochs: epochs a trial runs unless stopped.
        error: the error text when the worker itself failed.
        cancelled: the sweep was cancelled, which stops every running trial.

    Returns:
        ``failed`` (error, divergence, a non-finite metric, or cut short by a
        cancel: not the config's fault, so the sampler must not learn from it),
        ``early-stopped`` (ended before ``max_epochs``: the scheduler stopped it),
        else ``completed``. ``node``: the result's ``ray_node``, the Ray node that trained it;
        ``folder``: its ``trial_dir``, the trial's own folder there.
    """
    result = result or {}
    outcome = _classify(result, metric=metric, max_epochs=max_epochs, error=error, cancelled=cancelled)
    node, folder = result.get("ray_node"), result.get("trial_dir")
    return dataclasses.replace(
        outcome,
        node=node if isinstance(node, str) else None,
        folder=folder if isinstance(folder, str) else None,
    )


def _classify(
    result: Mapping[str, Any], *, metric: str, max_epochs: int, error: str | None, cancelled: bool
) -> Outcome:
    epochs = int(result.get("epoch", 0))
    value = result.get(metric)
    value = float(value) if isinstance(value, (int, float)) else None
    reason = error or result.get("error") or (result.get("reason") if result.get("diverged") else None)
    if reason is not None:
        return Outcome("failed", None, epochs, str(reason))
    if epochs < max_epochs and cancelled:
        when = f"after epoch {epochs}" if epochs else "before the trial's first epoch"
        return Outcome("failed", None, epochs, f"sweep cancelled {when}")
    if value is None or not math.isfinite(value):
        return Outcome("failed", None, epochs, f"{metric} is {value} at epoch {epochs}")
    if epochs < max_epochs:
        return Outcome("early-stopped", value, epochs, f"stopped by the scheduler after epoch {epochs}")
    return Outcome("completed", value, epochs)
