"""ASHA's stopping rule on the driver, for packed trials (the rule Ray Tune's ``ASHAScheduler`` applies).

Packed members are not Ray Tune trials, so the packed executor applies the same
asynchronous successive-halving rule itself, with the spec's ``asha`` settings, as the
standard mode's scheduler (one bracket, by default ``grace_period=1``,
``reduction_factor=4``, ``max_t=max_epochs``): rungs
sit at epochs 1, 4, 16, … below ``max_t``; a member that reaches a rung is stopped
when its value is worse than the ``1 - 1/4`` quantile of the values recorded at that
rung before it (Li et al., "A System for Massively Parallel Hyperparameter Tuning",
MLSys 2020; ``ray.tune.schedulers.async_hyperband._Bracket``).
"""

from __future__ import annotations

import math
from typing import Hashable, Literal

import numpy as np

__all__ = ["AshaRule"]


class AshaRule:
    """Decides, epoch by epoch, whether a trial stops early.

    Args:
        max_epochs: epochs a trial runs unless stopped (ASHA's ``max_t``).
        mode: ``min`` or ``max``: the direction in which the metric improves.
        grace_period: epochs before the first rung.
        reduction_factor: keep the best ``1 / reduction_factor`` at each rung.
    """

    def __init__(
        self,
        *,
        max_epochs: int,
        mode: Literal["min", "max"],
        grace_period: int = 1,
        reduction_factor: float = 4,
    ) -> None:
        if not 0 < grace_period <= max_epochs:
            raise ValueError(f"0 < grace_period <= max_epochs must hold, but got {grace_period=}, {max_epochs=}")
        if not reduction_factor > 1:
            raise ValueError(f"reduction_factor > 1 must hold, but got {reduction_factor=}")
        self._sign = 1.0 if mode == "max" else -1.0  # larger signed values are better
        self._quantile = (1 - 1 / reduction_factor) * 100
        n_rungs = int(math.log(max_epochs / grace_period) / math.log(reduction_factor) + 1)
        # milestone -> {trial: signed value}, highest milestone first (as Ray's).
        self._rungs: list[tuple[float, dict[Hashable, float]]] = [
            (grace_period * reduction_factor**k, {}) for k in reversed(range(n_rungs))
        ]

    @property
    def milestones(self) -> list[float]:
        """The rungs' epochs, ascending."""
        return sorted(m for m, _ in self._rungs)

    def should_stop(self, trial: Hashable, epoch: int, value: float) -> bool:
        """Record ``trial``'s ``value`` after ``epoch``; whether ASHA stops it here.

        ``trial`` is any key that names one trial (its number, or the driver's handle).

        A value is recorded once per rung, at the first epoch at or past it. A
        non-finite value never stops a trial here (divergence is handled as a failure).
        """
        signed = self._sign * value
        for milestone, recorded in self._rungs:
            if epoch < milestone or trial in recorded:
                continue
            cutoff = np.nanpercentile(list(recorded.values()), self._quantile) if recorded else None
            if math.isfinite(signed):
                recorded[trial] = signed
            return cutoff is not None and bool(signed < cutoff)
        return False
