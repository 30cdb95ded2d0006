"""The recommended trial against the baseline (torch's default Adam, :mod:`tuner.baseline`):
"was tuning worth it?"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuner.records import SweepSummary, TrialRecord

__all__ = ["Comparison", "compare"]


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
        return {
            "metric": self.metric,
            "value": self.baseline,
            "tuned": self.tuned,
            "change_percent": round(self.change * 100, 2),
        }


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
