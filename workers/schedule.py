"""Learning-rate schedules: linear warm-up, then a constant, linear or cosine decay.

A schedule scales a trial's base ``lr`` by a factor per optimizer step. With
``T = total_steps`` and ``W = int(warmup_fraction * T)`` warm-up steps, the factor
for the 0-based optimizer step ``s`` is::

    s < W:   (s + 1) / W                           linear warm-up, reaching 1 at s = W - 1
    s >= W:  p = min(1, (s - W) / max(1, T - W))   progress through the decay, in [0, 1]
             constant: 1
             linear:   1 - p
             cosine:   0.5 * (1 + cos(pi * p))     (Loshchilov & Hutter 2017, SGDR, eq. 5
                                                   with eta_min = 0 and no restarts)

Linear warm-up followed by cosine decay to 0 is the schedule of AlgoPerf's Adam-family
baselines (Dahl et al. 2023, arXiv 2306.07179; ``warmup_factor`` there is our
``warmup_fraction``). The last step, ``s = T - 1``, still has a small positive factor.
Past ``total_steps`` the progress is clamped to 1: a decaying schedule stays at 0 and
the constant one at 1, so training longer than planned never raises the lr again.

The arithmetic is plain Python floats in the order above, so
``torch.optim.lr_scheduler.LambdaLR`` over :func:`lr_multiplier` (what
:func:`lr_scheduler` builds), the packed trainer's per-member lrs and the snippet
``tuner export --format python`` writes give bit-identical lrs.

A trial's ``schedule`` and ``warmup_fraction``, their defaults (constant, no warm-up) and
their rules live in :class:`workers.config.AdamConfig`; its ``schedule_kwargs()`` are the
keyword arguments of :func:`lr_multiplier` and :func:`lr_scheduler` but ``total_steps``.

Importing this module does not import torch (:func:`lr_scheduler` does, when called).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from workers.config import SCHEDULES, check_hyperparameter

if TYPE_CHECKING:
    import torch

__all__ = ["SCHEDULES", "lr_multiplier", "lr_scheduler"]


def lr_multiplier(step: int, *, schedule: str, warmup_fraction: float, total_steps: int) -> float:
    """The factor on the base lr for optimizer step ``step`` (formula in the module docstring).

    Args:
        step: 0-based index of the optimizer step, >= 0 (past ``total_steps`` allowed).
        schedule: one of :data:`SCHEDULES`.
        warmup_fraction: fraction of ``total_steps`` spent warming up, in [0, 1).
        total_steps: optimizer steps the schedule spans, >= 1.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: a negative step, a bad schedule or warmup_fraction, total_steps < 1.
    """
    if step < 0:
        raise ValueError(f"step >= 0 must hold (steps count from 0), but got step={step}")
    _check(schedule, warmup_fraction)
    _check_total(total_steps)
    warmup = int(warmup_fraction * total_steps)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_scheduler(
    optimizer: torch.optim.Optimizer, *, schedule: str = "constant", warmup_fraction: float = 0.0, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """torch's ``LambdaLR`` over :func:`lr_multiplier`: call its ``step()`` after each ``optimizer.step()``.

    Works with any ``torch.optim.Optimizer`` (``workers.FusedAdam``,
    ``torch.optim.Adam``): it sets each param group's ``lr`` to its initial ``lr``
    times the factor, from the factor of step 0 at construction on.

    Raises:
        ValueError: total_steps < 1, a bad schedule or warmup_fraction.
    """
    from torch.optim.lr_scheduler import LambdaLR

    _check(schedule, warmup_fraction)
    _check_total(total_steps)
    fraction = float(warmup_fraction)

    def factor(step: int) -> float:
        return lr_multiplier(step, schedule=schedule, warmup_fraction=fraction, total_steps=total_steps)

    return LambdaLR(optimizer, factor)


def _check(schedule: object, warmup_fraction: object) -> None:
    check_hyperparameter("schedule", schedule)
    check_hyperparameter("warmup_fraction", warmup_fraction)


def _check_total(total_steps: object) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be an int >= 1 (optimizer steps), but got total_steps={total_steps!r}")
