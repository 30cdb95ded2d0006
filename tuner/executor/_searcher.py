"""Ray Tune's side of the study protocol: a public ``Searcher`` and ``TrialScheduler`` over
:class:`~tuner.executor._study.SweepStudy`, which also tell the sweep's observers each trial's
events.

Ray Tune asks :class:`StudySearcher` for configs (``suggest``: the study's next trial, or
``None`` while the study waits for a trial it must learn from) and tells it how each trial
ended (``on_trial_complete``: completed, early-stopped by the scheduler, or failed with a
reason). :class:`StudyScheduler` passes each epoch's result to the study, whose ASHA rule
answers continue or stop. Tune hands every result to the scheduler first, including the
one that ends a trial, so every epoch is recorded once; a retried trial repeats its epochs
and the study keeps the first values.

The observers (the MLflow writer, the progress view) hear a trial start when Tune adds it
(again when Tune retries it), each epoch from the scheduler and the end from the searcher,
not from a Tune ``Callback``: passing one makes Ray Tune's usage telemetry import the
tracking integrations it counts, MLflow among them (``ray.air._internal.usage.tag_callbacks``,
ray-project/ray#34904; 1.4 s of CPU in the driver here before the first trial starts), and
MLflow belongs to the writer process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from tuner.executor._cancel import Cancel
from tuner.executor._events import SweepObserver
from tuner.executor._outcome import classify
from tuner.executor._study import Asked, SweepStudy
from tuner.records import Outcome

__all__ = ["StudyScheduler", "StudySearcher"]

# Keys of a result that are not metrics: Ray's own and ours.
_NOT_METRICS = {"trial_id", "done", "experiment_tag", "epoch", "should_checkpoint", "error", "reason", "diverged"}
#: The study's reason for a trial whose worker failed (one reason for every such failure: ``fail_fast``
#: counts them as one cause); the observers get the error's own last line.
_WORKER_FAILED = "the trial's worker failed (see the MLflow run)"
_NO_ERROR_TEXT = "the trial's worker failed"  # the observers' reason when Ray gave no error


class StudySearcher(Searcher):
    """Hands Ray Tune the study's trials as plain Adam configs (plus ``trial_number`` and, for the
    baseline, ``baseline: True``), tells the study how they ended and the observers each trial's
    start, epochs and end.

    Args:
        study: the sweep's study protocol (its writes run at once).
        observer: receives every trial's events (:class:`tuner.executor.SweepObserver`).
        metric, mode: the sweep's metric and direction.
        max_epochs: epochs a trial runs unless stopped.
        cancel: the sweep's cancel stopper (trials it cuts short fail: "sweep cancelled").
    """

    def __init__(
        self, study: SweepStudy, observer: SweepObserver, *, metric: str, mode: str, max_epochs: int, cancel: Cancel
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._study = study
        self._observer = observer
        self._max_epochs = max_epochs
        self._cancel = cancel
        self._trials: dict[str, Asked] = {}  # Ray trial id -> the study's trial
        self._open: set[int] = set()  # trial numbers whose start the observers heard and not yet their end
        self._failures: dict[str, tuple[str, Mapping[str, Any] | None]] = {}  # trial id -> (reason, last result)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher with the experiment state; the observer (stores, a live
        # console) belongs to this driver process only and is not saved.
        return {**self.__dict__, "_observer": None}

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

    def started(self, trial_id: str) -> None:
        """Tune added the trial (or added it again to retry it): the observers hear it start."""
        asked = self._trials.get(trial_id)
        if asked is not None and asked.number is not None:
            self._observer.trial_started(asked.number, dict(asked.config))
            self._open.add(asked.number)

    def reported(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """The trial reported an epoch (Tune's flattened result): the observers hear its numeric metrics."""
        asked = self._trials.get(trial_id)
        if asked is None or asked.number is None or "error" in result:
            return
        metrics = {
            k: float(v)
            for k, v in result.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and "/" not in k  # a nested dict's keys, flattened (e.g. ``config/lr``)
            and k not in AUTO_RESULT_KEYS
            and k not in _NOT_METRICS
        }
        self._observer.epoch_reported(asked.number, int(result["epoch"]), metrics)

    def failing(self, trial_id: str, error: BaseException | None, last_result: Mapping[str, Any] | None) -> None:
        """The trial's worker failed (Tune retries it, or ends it next): what its end will say."""
        lines = str(error).strip().splitlines() if error is not None else []
        reason = lines[-1] if lines else _NO_ERROR_TEXT
        self._failures[trial_id] = (reason, dict(last_result) if last_result else None)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        asked = self._trials.get(trial_id)
        if asked is None or asked.outcome is not None:
            return
        metric, max_epochs, cancelled = self.metric, self._max_epochs, self._cancel.triggered
        outcome = classify(
            result, metric=metric, max_epochs=max_epochs, error=_WORKER_FAILED if error else None, cancelled=cancelled
        )
        observed = outcome
        if error:
            reason, last = self._failures.pop(trial_id, (_NO_ERROR_TEXT, None))
            observed = classify(last, metric=metric, max_epochs=max_epochs, error=reason)
        if outcome.value is not None:
            self._study.report(
                asked, outcome.epochs, outcome.value
            )  # a stop by the Cancel stopper skipped the scheduler
        self.end(asked, outcome, observed)

    def end(self, asked: Asked, outcome: Outcome, observed: Outcome | None = None) -> None:
        """Tell the study the trial's ``outcome`` and the observers ``observed`` (by default the same)."""
        self._study.tell(asked, outcome)
        if asked.number in self._open:
            self._open.discard(asked.number)
            self._observer.trial_finished(asked.number, observed or outcome)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the stored study is the record, and a resumed sweep starts from it."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore (see :meth:`save`)."""


class StudyScheduler(FIFOScheduler):
    """Runs trials in the order suggested, stops one when the study's ASHA rule says so, and passes
    Tune's trial events to the searcher's observers."""

    def __init__(self, study: SweepStudy, searcher: StudySearcher, *, metric: str) -> None:
        super().__init__()
        self._study = study
        self._searcher = searcher
        self._sweep_metric = metric

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)
        self._searcher.started(trial.trial_id)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_error(tune_controller, trial)
        self._searcher.failing(trial.trial_id, trial.get_error(), trial.last_result)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._searcher.reported(trial.trial_id, result)
        asked = self._searcher.asked(trial.trial_id)
        value = result.get(self._sweep_metric)
        if asked is None or "error" in result or not isinstance(value, (int, float)) or isinstance(value, bool):
            return TrialScheduler.CONTINUE
        stop = self._study.report(asked, int(result["epoch"]), float(value))
        return TrialScheduler.STOP if stop else TrialScheduler.CONTINUE
