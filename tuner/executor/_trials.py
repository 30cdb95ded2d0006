"""Optuna trial bookkeeping shared by both executors: reopening interrupted trials, telling outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner.executor._outcome import Outcome
from tuner.study import EPOCHS_ATTR, REASON_ATTR

if TYPE_CHECKING:
    import optuna

__all__ = ["optuna_state", "reopen_interrupted", "tell"]


def reopen_interrupted(
    study: optuna.Study, storage: optuna.storages.BaseStorage
) -> list[tuple[optuna.trial.FrozenTrial, optuna.Trial]]:
    """Trials a crashed driver left ``RUNNING``, oldest first, reopened as live trials.

    A resumed sweep hands these out before asking for new ones, so each keeps its
    number and params (training is seeded: its curve repeats).

    Returns:
        ``(frozen, live)`` pairs: ``frozen`` holds what was recorded before the crash.
    """
    from optuna.trial import Trial, TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    return [
        (frozen, Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)))
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ]


def optuna_state(outcome: Outcome) -> optuna.trial.TrialState:
    """The Optuna state of an outcome: ``COMPLETE``, ``PRUNED`` (early stop) or ``FAIL``."""
    from optuna.trial import TrialState

    return {"completed": TrialState.COMPLETE, "early-stopped": TrialState.PRUNED, "failed": TrialState.FAIL}[outcome.state]


def tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """End ``trial``: ``COMPLETE`` with its value, ``PRUNED`` (early stop) or ``FAIL``,
    with user attributes ``epochs`` and, if any, ``reason``."""
    trial.set_user_attr(EPOCHS_ATTR, outcome.epochs)
    if outcome.reason:
        trial.set_user_attr(REASON_ATTR, outcome.reason)
    study.tell(trial, outcome.value if outcome.state == "completed" else None, state=optuna_state(outcome))
