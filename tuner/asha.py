"""ASHA's rungs and stopping rule, and its settings fitted to a sweep's budget.

The rule of asynchronous successive halving (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020; ``ray.tune.schedulers.async_hyperband._Bracket``):
rungs sit at ``grace_period * reduction_factor**k`` epochs below ``max_epochs``; a trial
that reaches a rung stops when its value there is worse than the ``1 - 1/reduction_factor``
quantile of the values other trials recorded at that rung. Which other trials count is
the study's decision (:class:`tuner.executor.SweepStudy`: those it has learned from, so
the same seed stops the same trials), not this module's.

One addition of ours, :meth:`Rungs.trusted`: a rung stops trials only once the completed
trials show that it ranks them as their final values do (Kendall's tau of rung value against
final value at least ``0.5`` over at least 3 of them). Where early values mislead, as when
high lrs lead early and then overfit, ASHA would stop exactly the configs that end best: on
``examples/own_model`` (20 epochs, a rung at 5) lr 2e-3 trials were stopped at epoch 5 behind
lr 1e-2..3e-2 trials that ended 60 % worse. The idea of checking how well one fidelity ranks
configs as the next one does is BOHB's (HpBandSter's "correlation across budgets" diagnostic,
Falkner et al., ICML 2018); using it as a gate is ours.

:func:`fitted_asha` chooses ``grace_period`` and ``reduction_factor`` from ``n_trials``
and ``max_epochs`` when a spec leaves ``asha`` out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from typing import Literal

import numpy as np

__all__ = ["TRUST_MIN_TAU", "TRUST_MIN_TRIALS", "Rungs", "fitted_asha"]

TRUST_MIN_TRIALS = 3  #: completed trials a rung needs before it may stop any (see Rungs.trusted)
TRUST_MIN_TAU = 0.5  #: Kendall's tau of rung value vs final value a rung needs to stop trials


class Rungs:
    """A sweep's ASHA rungs and the stopping rule at each.

    Args:
        max_epochs: epochs a trial runs unless stopped (ASHA's ``max_t``).
        mode: ``min`` or ``max``: the direction in which the metric improves.
        grace_period: epochs before the first rung.
        reduction_factor: keep the best ``1 / reduction_factor`` at each rung.

    Raises:
        ValueError: ``grace_period`` outside ``1..max_epochs`` or ``reduction_factor <= 1``.
    """

    def __init__(
        self, *, max_epochs: int, mode: Literal["min", "max"], grace_period: int, reduction_factor: float
    ) -> None:
        if not 0 < grace_period <= max_epochs:
            raise ValueError(f"0 < grace_period <= max_epochs must hold, but got {grace_period=}, {max_epochs=}")
        if not reduction_factor > 1:
            raise ValueError(f"reduction_factor > 1 must hold, but got {reduction_factor=}")
        self._sign = 1.0 if mode == "max" else -1.0  # larger signed values are better
        self._quantile = (1 - 1 / reduction_factor) * 100
        milestones, k = [], 0
        while (m := grace_period * reduction_factor**k) < max_epochs:
            milestones.append(m)
            k += 1
        self.milestones: list[float] = milestones  #: the rungs' epochs, ascending, each below max_epochs

    def rung_at(self, epoch: int) -> float | None:
        """The rung a trial reaches with ``epoch`` (epochs count 1, 2, …): the milestone in
        ``(epoch - 1, epoch]``, or ``None`` between rungs."""
        return next((m for m in self.milestones if epoch - 1 < m <= epoch), None)

    def rung_values(self, intermediate: dict[int, float]) -> dict[float, float]:
        """A trial's value at each rung it reached, from its per-epoch values."""
        found = {}
        for epoch in sorted(intermediate):
            rung = self.rung_at(epoch)
            if rung is not None and rung not in found and math.isfinite(intermediate[epoch]):
                found[rung] = intermediate[epoch]
        return found

    def stops(self, value: float, others: Iterable[float]) -> bool:
        """Whether a trial at a rung with ``value`` stops, given ``others``' values at that rung:
        it is worse than their ``1 - 1/reduction_factor`` quantile. Never with no others or a
        non-finite value (divergence is a failure, handled elsewhere)."""
        recorded = [self._sign * v for v in others if math.isfinite(v)]
        if not recorded or not math.isfinite(value):
            return False
        return bool(self._sign * value < np.percentile(recorded, self._quantile))

    def trusted(self, pairs: Iterable[tuple[float, float]]) -> bool:
        """Whether a rung may stop trials, given ``(value at the rung, final value)`` of the
        completed trials that reached it: at least :data:`TRUST_MIN_TRIALS` of them, ranked at
        the rung as at the end with Kendall's tau-a of at least :data:`TRUST_MIN_TAU` (pairs
        with a tie on either side count as neither concordant nor discordant)."""
        finite = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
        if len(finite) < TRUST_MIN_TRIALS:
            return False
        signs = [np.sign(a1 - a2) * np.sign(b1 - b2) for (a1, b1), (a2, b2) in itertools.combinations(finite, 2)]
        return float(np.mean(signs)) >= TRUST_MIN_TAU  # tau-a: (concordant - discordant) / pairs

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` in this sweep's mode."""
        return self._sign * a > self._sign * b


def fitted_asha(n_trials: int, max_epochs: int) -> tuple[int, float]:
    """ASHA's ``(grace_period, reduction_factor)`` for a budget of ``n_trials`` × ``max_epochs``.

    ``grace_period`` is a quarter of ``max_epochs`` (at least 1), so no trial is judged on one
    barely-trained epoch of eight; ``reduction_factor`` is the largest of 4, 3, 2 with which
    ASHA's expected survivors, ``n_trials / reduction_factor**rungs``, are at least 3 (at
    least 2 under 12 trials). Where none is (under 8 trials), the grace period is
    ``max_epochs``: no rung, no early stop. For 16 trials × 8 epochs: grace 2, factor 4 (one
    rung at epoch 2; about 4 trials run all 8 epochs, where Ray's default grace 1 and factor
    4 keep about 1).
    """
    grace = max(1, round(max_epochs / 4))
    wanted = 3 if n_trials >= 12 else 2
    for factor in (4, 3, 2):
        rungs = Rungs(max_epochs=max_epochs, mode="min", grace_period=grace, reduction_factor=factor)
        if n_trials / factor ** len(rungs.milestones) >= wanted:
            return grace, float(factor)
    return max_epochs, 4.0
