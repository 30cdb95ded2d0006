"""The value rules of a trial's hyperparameters, in one table.

A trial config (:func:`workers.training.adam_kwargs`, :func:`workers.schedule.schedule_kwargs`)
and a search space's fixed values, bounds and choices (``tuner.search_space``) are checked
against the same :data:`RULES`. They follow ``torch.optim.Adam``'s own checks
(torch/optim/adam.py: ``0 <= lr``, ``0 <= betas[i] < 1``, ``0 <= eps``,
``0 <= weight_decay``), two made strict for tuning: ``lr > 0`` (lr 0 trains nothing) and
``eps > 0`` (with eps 0 a parameter whose gradients are all 0 gets 0 / 0 = NaN from the
update m_hat / (sqrt(v_hat) + eps), Kingma & Ba 2014, Algorithm 1). ``beta = 1`` stays
out: the moment estimate would never move and the bias correction 1 - beta^t divides by 0.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from workers.schedule import SCHEDULES

__all__ = ["RULES", "check_hyperparameter"]

#: hyperparameter -> (predicate on a checked value, the rule as the error states it)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (lambda v: v > 0, "lr > 0 must hold"),
    "beta1": (lambda v: 0 <= v < 1, "0 <= beta1 < 1 must hold"),
    "beta2": (lambda v: 0 <= v < 1, "0 <= beta2 < 1 must hold"),
    "eps": (lambda v: v > 0, "eps > 0 must hold"),
    "weight_decay": (lambda v: v >= 0, "weight_decay >= 0 must hold"),
    "warmup_fraction": (lambda v: 0 <= v < 1, "0 <= warmup_fraction < 1 must hold (a fraction of the optimizer "
                        "steps; 0 for no warm-up)"),
    "schedule": (lambda v: v in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
}


def check_hyperparameter(key: str, value: Any) -> None:
    """Check one hyperparameter's value against :data:`RULES`.

    Args:
        key: a key of :data:`RULES` (``lr``, ``beta1``, …, ``schedule``).
        value: a real number (not a bool; NaN fails every rule), or for ``schedule`` a name.

    Raises:
        KeyError: ``key`` has no rule.
        ValueError: ``"<rule>, but got <key>=<value>"``.
    """
    ok, rule = RULES[key]
    numeric = key != "schedule"
    bad_type = numeric and (isinstance(value, bool) or not isinstance(value, numbers.Real))
    if bad_type or (numeric and math.isnan(value)) or not ok(value):
        raise ValueError(f"{rule}, but got {key}={value!r}")
