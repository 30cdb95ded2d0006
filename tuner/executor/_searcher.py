"""Ray Tune's ``OptunaSearch`` with Adam configs and honest trial states.

Four changes to the stock searcher:

- ``suggest`` returns a ready Adam config (``beta1 = 1 - one_minus_beta1``, defaults
  filled in) plus ``trial_number``, the study's number for the trial, and records the
  config as the trial's user attributes (:func:`~tuner.executor._trials.config_attrs`);
- ``on_trial_complete`` records scheduler stops as ``PRUNED`` and errors,
  divergence and non-finite metrics as ``FAIL`` with a ``reason`` user attribute
  (the stock searcher records early stops as ``COMPLETE``, and leaves a trial
  ``RUNNING`` forever when its metric is NaN);
- the result that ends a trial is recorded too: Tune withholds it from
  ``on_trial_result`` when a scheduler stops the trial on it (ASHA does at
  ``max_epochs``), so every epoch has its intermediate value, once;
- trials a crashed driver left ``RUNNING`` in the study are handed out again first,
  with their number and params, so a resumed sweep re-runs them instead of
  adding new trials (training is deterministic, so the curves repeat);
- with ``baseline``, the first new trial is torch's default Adam (:mod:`tuner.baseline`).
"""

from __future__ import annotations

from typing import Any

from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from tuner.executor._cancel import Cancel
from tuner.executor._outcome import classify
from tuner.baseline import baseline_config
from tuner.executor._trials import ask_baseline, config_attrs, has_baseline, is_baseline, reopen_interrupted, tell
from tuner.search_space import SearchSpace

__all__ = ["AdamSearch"]


class AdamSearch(OptunaSearch):
    """``OptunaSearch`` over a :class:`SearchSpace`; keyword arguments go to ``OptunaSearch``."""

    def __init__(self, space: SearchSpace, *, max_epochs: int, cancel: Cancel, baseline: bool, **kwargs: Any) -> None:
        from optuna.trial import Trial

        from tuner.study import distributions

        super().__init__(space=distributions(space), **kwargs)
        self._adam_space = space
        self._max_epochs = max_epochs
        self._cancel = cancel
        interrupted = reopen_interrupted(self._ot_study, self._storage)
        self._interrupted = [(Trial(self._ot_study, trial_id), is_baseline(frozen)) for frozen, trial_id in interrupted]
        self._baseline_due = baseline and not has_baseline(self._ot_study)
        self._baselines: set[str] = set()  # Ray trial ids of the baseline
        self._study_id = self._storage.get_study_id_from_name(self._ot_study.study_name)
        self._last_step: dict[str, int] = {}  # trial id -> the step of its last intermediate value

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self._ot_trials and self._interrupted:
            self._ot_trials[trial_id], baseline = self._interrupted.pop(0)
            if baseline:
                self._baselines.add(trial_id)
        elif trial_id not in self._ot_trials and self._baseline_due:
            self._ot_trials[trial_id] = ask_baseline(self._ot_study, self._adam_space)
            self._baselines.add(trial_id)
            self._baseline_due = False
        sampled = super().suggest(trial_id)
        if sampled is None:
            return None
        config = baseline_config(self._adam_space) if trial_id in self._baselines else self._adam_space.to_adam_config(sampled)
        ot_trial = self._ot_trials[trial_id]
        for key, value in config_attrs(config).items():
            ot_trial.set_user_attr(key, value)
        config["trial_number"] = ot_trial.number
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        step = int(result[TRAINING_ITERATION])
        if step <= self._last_step.get(trial_id, 0):
            return  # a retried trial repeats its epochs (seeded): the study keeps the first values
        super().on_trial_result(trial_id, result)  # reports the metric at step training_iteration
        if trial_id not in self._completed_trials:
            self._last_step[trial_id] = step

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        outcome = classify(
            result,
            metric=self.metric,
            max_epochs=self._max_epochs,
            error="the trial's worker failed (see the MLflow run)" if error else None,
            cancelled=self._cancel.triggered,
        )
        ot_trial = self._ot_trials[trial_id]
        last_step = self._last_step.pop(trial_id, None)
        if outcome.value is not None and last_step != outcome.epochs:
            # The result a scheduler stopped the trial on never reached on_trial_result.
            ot_trial.report(outcome.value, outcome.epochs)
        tell(self._storage, self._storage.get_trial_id_from_study_id_trial_number(self._study_id, ot_trial.number), outcome)
        self._completed_trials.add(trial_id)
