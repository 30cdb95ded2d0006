"""Plain frozen values that cross layers (store → service → CLI/HTTP).

Optuna, MLflow and Ray objects never leave their adapter modules; these do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["TrialState", "TrialRecord", "SweepSummary", "SweepStatus"]

#: A trial's final (or current) state as users see it.
TrialState = Literal["running", "completed", "early-stopped", "failed"]


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a sweep.

    Attributes:
        number: the study's trial number (0-based, unique within a sweep).
        state: see :data:`TrialState`; ``early-stopped`` = stopped by the scheduler.
        config: the Adam hyperparameters it trained with (``lr``, ``beta1``, ``beta2``,
            ``eps``, ``weight_decay``, ``amsgrad``, ``decoupled_weight_decay``).
        value: the sweep metric at its last epoch (``None`` if it failed or never reported).
        epochs: epochs it trained.
        reason: why it failed or stopped, if it did.
    """

    number: int
    state: TrialState
    config: dict[str, Any]
    value: float | None = None
    epochs: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class SweepSummary:
    """A sweep as the stores know it: its spec, trials and tracking ids."""

    name: str
    spec: dict[str, Any]
    trials: tuple[TrialRecord, ...] = field(default_factory=tuple)

    def count(self, state: TrialState) -> int:
        """Number of trials in ``state``."""
        return sum(t.state == state for t in self.trials)

    @property
    def finished(self) -> int:
        """Trials that ended (completed, early-stopped or failed); they count towards ``n_trials``."""
        return len(self.trials) - self.count("running")

    def best(self, top: int = 1) -> list[TrialRecord]:
        """The ``top`` completed trials, best first by the spec's metric and mode."""
        done = [t for t in self.trials if t.state == "completed" and t.value is not None]
        return sorted(done, key=lambda t: t.value, reverse=self.spec["mode"] == "max")[:top]


@dataclass(frozen=True)
class SweepStatus:
    """What a user asks about a sweep: its queue state, trial counts, best so far and MLflow ids.

    Attributes:
        name: the sweep's name (unique).
        state: ``queued`` / ``running`` / ``completed`` / ``failed`` / ``cancelled``
            from the queue; for a sweep run with ``tuner sweep run`` (not queued),
            ``completed`` once ``n_trials`` trials finished, else ``incomplete``.
        id: the queue id (``None`` for sweeps run directly from the CLI).
        n_trials: trials the spec asks for.
        trials: counts by trial state (``completed``, ``early-stopped``, ``failed``, ``running``).
        best: the best completed trial (``trial``, ``value``, ``config``), if any.
        error: why the sweep failed, if it did.
    """

    name: str
    state: str
    workload: str
    metric: str
    mode: str
    n_trials: int
    trials: dict[str, int]
    id: str | None = None
    best: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False
    mlflow_experiment_id: str | None = None
    mlflow_run_id: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
