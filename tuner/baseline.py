"""The baseline: torch's default Adam, trial 0 of every sweep, and the tuned result against it.

Unless a spec says ``baseline: false``, a sweep's first trial trains with
``torch.optim.Adam``'s defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8,
weight_decay 0) and a constant lr, whatever the search space says: it
answers "was tuning worth it?". It runs every epoch (the scheduler never stops it
early), so its value is the untuned model's at ``max_epochs``.

In the study it carries the user attribute ``baseline`` and, as params, only the
defaults that lie inside the searched ranges (TPE then learns from it; Optuna's
samplers skip a trial for a param it lacks). In MLflow its run is tagged
``adamtune.baseline = true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuner.records import SweepSummary, TrialRecord
from tuner.search_space import Choice, SearchSpace
from workers.config import AdamConfig

__all__ = ["BASELINE_ATTR", "Comparison", "baseline_config", "baseline_params", "compare"]

#: The Optuna trial user attribute (and Ray config key) that marks the baseline trial.
BASELINE_ATTR = "baseline"


def baseline_config(space: SearchSpace) -> dict[str, Any]:
    """The baseline's trial config: ``torch.optim.Adam``'s defaults, constant lr, plus ``baseline: True``.

    Keys as :meth:`~tuner.search_space.SearchSpace.to_adam_config` returns them; ``amsgrad``
    and ``decoupled_weight_decay`` as ``space`` sets them (both false unless it asks:
    decoupling changes nothing at weight_decay 0, and a pack's members must agree on both).
    """
    defaults = AdamConfig(amsgrad=space.amsgrad, decoupled_weight_decay=space.decoupled_weight_decay)
    return {**defaults.to_config(), BASELINE_ATTR: True}


def baseline_params(space: SearchSpace) -> dict[str, Any]:
    """The baseline's values as the study records them: only the searched entries whose torch
    default lies inside the searched range (``one_minus_beta2 = 0.001`` for a searched ``beta2``)."""
    config = baseline_config(space)
    params: dict[str, Any] = {}
    for name, entry in space.searched().items():
        key = name.removeprefix("one_minus_")
        value = float(f"{1.0 - config[key]:.12g}") if name != key else config[key]  # one_minus_<beta>: 1 - beta
        inside = value in entry.choices if isinstance(entry, Choice) else entry.low <= value <= entry.high
        if inside:
            params[name] = value
    return params


@dataclass(frozen=True)
class Comparison:
    """The best tuned trial against the baseline.

    Attributes:
        metric: the sweep's metric, e.g. ``val_loss``.
        tuned: the best completed trial's value (the baseline itself when it is best).
        baseline: the baseline trial's value at ``max_epochs``.
        change: ``(tuned - baseline) / |baseline|``, a fraction (``-0.37`` = 37 % lower).
        baseline_best: whether no tuned trial beat the baseline.
    """

    metric: str
    tuned: float
    baseline: float
    change: float
    baseline_best: bool

    def __str__(self) -> str:
        if self.baseline_best:
            return f"{self.metric} {self.baseline:.4g} with torch's defaults: no tuned config beat them"
        return f"{self.metric} {self.tuned:.4g} vs {self.baseline:.4g} with torch's defaults, {self.change * 100:+.0f} %".replace(
            "-", "\N{MINUS SIGN}"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values for a card or JSON: ``metric``, ``value``, ``tuned``, ``change_percent``."""
        return {"metric": self.metric, "value": self.baseline, "tuned": self.tuned, "change_percent": round(self.change * 100, 2)}


def compare(summary: SweepSummary, tuned: TrialRecord | None = None) -> Comparison | None:
    """The sweep's best completed trial (or ``tuned``) against its baseline; ``None`` without a
    completed baseline or a completed trial."""
    base = next((t for t in summary.trials if t.baseline and t.state == "completed" and t.value is not None), None)
    best = tuned or next(iter(summary.best()), None)
    if base is None or best is None or best.value is None:
        return None
    change = (best.value - base.value) / abs(base.value) if base.value else 0.0
    maximize = summary.spec["mode"] == "max"
    beaten = best.value > base.value if maximize else best.value < base.value
    return Comparison(summary.spec["metric"], best.value, base.value, change, not beaten)
