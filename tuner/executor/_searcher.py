"""Ray Tune's side of the study protocol: a public ``Searcher`` and ``TrialScheduler`` over
:class:`~tuner.executor._study.SweepStudy`.

Ray Tune asks :class:`StudySearcher` for configs (``suggest``: the study's next trial, or
``None`` while the study waits for a trial it must learn from) and tells it how each trial
ended (``on_trial_complete``: completed, early-stopped by the scheduler, or failed with a
reason). :class:`StudyScheduler` passes each epoch's result to the study, whose ASHA rule
answers continue or stop. Tune hands every result to the scheduler first, including the
one that ends a trial, so every epoch is recorded once; a retried trial repeats its epochs
and the study keeps the first values.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from tuner.executor._cancel import Cancel
from tuner.executor._outcome import classify
from tuner.executor._study import Asked, SweepStudy

__all__ = ["StudyScheduler", "StudySearcher"]


class StudySearcher(Searcher):
    """Hands Ray Tune the study's trials as plain Adam configs (plus ``trial_number`` and, for the
    baseline, ``baseline: True``) and tells the study how they ended.

    Args:
        study: the sweep's study protocol (its writes run at once).
        metric, mode: the sweep's metric and direction.
        max_epochs: epochs a trial runs unless stopped.
        cancel: the sweep's cancel stopper (trials it cuts short fail: "sweep cancelled").
    """

    def __init__(self, study: SweepStudy, *, metric: str, mode: str, max_epochs: int, cancel: Cancel) -> None:
        super().__init__(metric=metric, mode=mode)
        self._study = study
        self._max_epochs = max_epochs
        self._cancel = cancel
        self._trials: dict[str, Asked] = {}  # Ray trial id -> the study's trial

    def asked(self, trial_id: str) -> Asked | None:
        """The study's trial behind Ray's ``trial_id`` (``None`` if this searcher did not suggest it)."""
        return self._trials.get(trial_id)

    def unfinished(self) -> list[Asked]:
        """The trials it handed out that the study has not been told the end of, in the order asked."""
        return [asked for asked in self._trials.values() if asked.outcome is None]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        asked = self._trials.get(trial_id) or self._study.ask()
        if asked is None:
            # FINISHED ends the experiment once the running trials end: the budget is spent or
            # the study stopped (fail_fast); None: ask again later (the study waits for a trial).
            return Searcher.FINISHED if self._study.asks_left <= 0 else None
        self._trials[trial_id] = asked
        return {**asked.config, "trial_number": asked.number}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        asked = self._trials.get(trial_id)
        if asked is None or asked.outcome is not None:
            return
        outcome = classify(
            result,
            metric=self.metric,
            max_epochs=self._max_epochs,
            error="the trial's worker failed (see the MLflow run)" if error else None,
            cancelled=self._cancel.triggered,
        )
        if outcome.value is not None:
            self._study.report(
                asked, outcome.epochs, outcome.value
            )  # a stop by the Cancel stopper skipped the scheduler
        self._study.tell(asked, outcome)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the stored study is the record, and a resumed sweep starts from it."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore (see :meth:`save`)."""


class StudyScheduler(FIFOScheduler):
    """Runs trials in the order suggested and stops one when the study's ASHA rule says so."""

    def __init__(self, study: SweepStudy, searcher: StudySearcher, *, metric: str) -> None:
        super().__init__()
        self._study = study
        self._searcher = searcher
        self._sweep_metric = metric

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        asked = self._searcher.asked(trial.trial_id)
        value = result.get(self._sweep_metric)
        if asked is None or "error" in result or not isinstance(value, (int, float)) or isinstance(value, bool):
            return TrialScheduler.CONTINUE
        stop = self._study.report(asked, int(result["epoch"]), float(value))
        return TrialScheduler.STOP if stop else TrialScheduler.CONTINUE
