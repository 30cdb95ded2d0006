"""Plain frozen values that cross layers (store, study, executor → service → tracker, CLI/HTTP).

Optuna, MLflow and Ray objects never leave their adapter modules; these do.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["MlflowIds", "Outcome", "SeedStats", "SweepStatus", "SweepSummary", "TrialRecord", "TrialState"]

#: A trial's final (or current) state as users see it.
TrialState = Literal["running", "completed", "early-stopped", "failed"]


@dataclass(frozen=True)
class Outcome:
    """How a trial ended (:func:`tuner.executor.classify`): its final state, its last metric value,
    epochs trained, why it ended early (if it did), the Ray node id of the worker it last
    trained on (``None`` where unknown), and ``folder``, the trial's own folder on that node
    (``trial.dir`` of a function or script trial; ``None`` for a Workload's): the tracker logs
    the files there. Executors emit it; the tracker, the progress views and re-evaluation read it."""

    state: TrialState
    value: float | None
    epochs: int
    reason: str | None = None
    node: str | None = None
    folder: str | None = None


@dataclass(frozen=True)
class MlflowIds:
    """What a sweep's study remembers of its MLflow runs, so that listing, showing and exporting
    it opens no MLflow store (importing MLflow and opening its store take ~1.5 s): the sweep's
    driver copies them there through its MLflow writer process (:class:`tuner.service.SweepRunner`).
    A reader falls back to MLflow for what is missing: a sweep from before they were kept, or
    trials that ended after the last copy.

    Attributes:
        experiment_id, run_id: the sweep's MLflow experiment and parent run, recorded when its run
            starts (``None``: not recorded).
        trial_runs: trial number -> its child run's id, recorded when the sweep ends.
        diagnostics: trial number -> the ``adam_*`` metrics of its last epoch (see
            ``workers.training.train``), for the trials recommended when the sweep ended.
    """

    experiment_id: str | None = None
    run_id: str | None = None
    trial_runs: dict[int, str] = field(default_factory=dict)
    diagnostics: dict[int, dict[str, float]] = field(default_factory=dict)


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
        baseline: whether it is the sweep's baseline, torch's default Adam (:mod:`tuner.baseline`).
        value_epoch: the epoch (1-based) ``value`` was reported at: its last, or with the spec's
            ``objective: best`` its best (``None`` without a value).
        continues: for a continuation, the number of the early-stopped trial whose config it
            trained again to ``max_epochs`` (:class:`tuner.executor.SweepStudy`); else ``None``.
    """

    number: int
    state: TrialState
    config: dict[str, Any]
    value: float | None = None
    epochs: int = 0
    reason: str | None = None
    baseline: bool = False
    continues: int | None = None
    value_epoch: int | None = None


@dataclass(frozen=True)
class SweepSummary:
    """A sweep as the stores know it: its spec, trials, re-evaluations and workload.

    Attributes:
        reevaluations: per re-evaluated trial number, the final value per new seed
            (``None``: that run failed); see :meth:`SweepService.reevaluate`.
        workload_facts: ``parameters``, ``batch_size``, ``dtype``, ``steps_per_epoch`` of a
            Workload class and ``data``, its data fingerprint (:class:`tuner.workload.WorkloadInfo`;
            empty for a function, or a sweep stored before they were recorded).
        lr_range: the lr range test run before its trials (spec ``lr_range_test``): ``steps``,
            ``epochs`` (its length in epochs), ``lr_min`` and ``lr_max`` (the ramp), ``steepest``,
            ``suggested``, ``low`` and ``high`` (the lr range searched); ``None`` without one.
        mlflow: the MLflow ids its study holds (:class:`MlflowIds`; empty for an older sweep).
    """

    name: str
    spec: dict[str, Any]
    trials: tuple[TrialRecord, ...] = field(default_factory=tuple)
    reevaluations: dict[int, dict[int, float | None]] = field(default_factory=dict)
    workload_facts: dict[str, Any] = field(default_factory=dict)
    lr_range: dict[str, Any] | None = None
    mlflow: MlflowIds = field(default_factory=MlflowIds)

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

    def seed_stats(self, number: int) -> SeedStats | None:
        """Trial ``number``'s re-evaluation: mean and std over the seeds that finished, or ``None``."""
        values = [v for v in self.reevaluations.get(number, {}).values() if v is not None]
        if not values:
            return None
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return SeedStats(mean, std, tuple(values), len(self.reevaluations[number]) - len(values))

    def pick(self, top: int = 1) -> list[TrialRecord]:
        """The ``top`` recommended trials: once trials were re-evaluated, those best by their mean
        over the new seeds (the Tuning Playbook's advice: one lucky run is no evidence), then the
        rest of :meth:`best`; without re-evaluations, :meth:`best`."""
        ranked = [t for t in self.best(len(self.trials)) if self.seed_stats(t.number) is not None]
        ranked.sort(key=lambda t: self.seed_stats(t.number).mean, reverse=self.spec["mode"] == "max")
        rest = [t for t in self.best(len(self.trials)) if t not in ranked]
        return (ranked + rest)[:top]


@dataclass(frozen=True)
class SeedStats:
    """A config's final metric over re-evaluation seeds.

    Attributes:
        mean, std: over the finished seeds (``std`` is the sample std; 0 for one seed).
        values: each finished seed's value.
        failed: seeds whose run failed.
    """

    mean: float
    std: float
    values: tuple[float, ...]
    failed: int = 0


@dataclass(frozen=True)
class SweepStatus:
    """What a user asks about a sweep: its queue state, trial counts, best so far and MLflow ids.

    Attributes:
        name: the sweep's name (unique).
        state: ``queued`` / ``running`` / ``completed`` / ``failed`` / ``cancelled``
            from the queue (``failed`` also when no trial completed); for a sweep run with
            ``tuner sweep run`` (not queued), ``incomplete`` until ``n_trials`` trials finished,
            then ``completed``, or ``failed`` when none of them completed.
        id: the queue id (``None`` for sweeps run directly from the CLI).
        n_trials: trials the spec asks for.
        trials: counts by trial state (``completed``, ``early-stopped``, ``failed``, ``running``).
        best: the recommended trial (``trial``, ``value``, ``config``): the best completed one,
            or the best by mean once re-evaluated; ``None`` before any completed.
        baseline: the best against torch's default Adam (``metric``, ``value`` (the baseline's),
            ``tuned``, ``change_percent``, ``summary``: one line), if the baseline completed.
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
    baseline: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False
    mlflow_experiment_id: str | None = None
    mlflow_run_id: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
