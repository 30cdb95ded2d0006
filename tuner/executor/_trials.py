"""Optuna trial bookkeeping shared by both executors: a trial's config attributes, the
baseline trial, reopening interrupted trials, telling outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from tuner.baseline import BASELINE_ATTR, baseline_config, baseline_params
from tuner.executor._outcome import Outcome
from tuner.search_space import SearchSpace
from tuner.study import CONFIG_ATTRS, EPOCHS_ATTR, REASON_ATTR, distributions

if TYPE_CHECKING:
    import optuna

__all__ = ["ask_baseline", "config_attrs", "has_baseline", "is_baseline", "optuna_state", "reopen_interrupted", "tell"]


def is_baseline(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` is a sweep's baseline (user attribute ``baseline``)."""
    return bool(trial.user_attrs.get(BASELINE_ATTR))


def has_baseline(study: optuna.Study) -> bool:
    """Whether the study holds its baseline trial already (in any state)."""
    return any(is_baseline(t) for t in study.get_trials(deepcopy=False))


def ask_baseline(study: optuna.Study, space: SearchSpace) -> optuna.Trial:
    """Ask ``study`` for the baseline trial: the torch defaults inside ``space``'s ranges as its
    params (:func:`tuner.baseline.baseline_params`), user attributes ``baseline`` and its config.

    The trial's config is :func:`tuner.baseline.baseline_config`, not its params: defaults outside
    the searched ranges train too, but are not recorded as params (TPE would model them).
    """
    params = baseline_params(space)
    found = distributions(space)
    study.enqueue_trial(params, user_attrs={BASELINE_ATTR: True, **config_attrs(baseline_config(space))})
    return study.ask({name: found[name] for name in params})


def config_attrs(config: Mapping[str, Any]) -> dict[str, Any]:
    """The user attributes a trial gets when it starts: its config's values as it trains with them
    (:data:`tuner.study.CONFIG_ATTRS`: ``beta1``, not the study's ``one_minus_beta1``)."""
    return {key: config[key] for key in CONFIG_ATTRS}


def reopen_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[tuple[optuna.trial.FrozenTrial, int]]:
    """Trials a crashed driver left ``RUNNING``, oldest first, with their storage ids.

    A resumed sweep hands these out before asking for new ones, so each keeps its
    number and params (training is seeded: its curve repeats).

    Returns:
        ``(frozen, trial_id)`` pairs: ``frozen`` holds what was recorded before the crash.
    """
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    return [
        (frozen, storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number))
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ]


def optuna_state(outcome: Outcome) -> optuna.trial.TrialState:
    """The Optuna state of an outcome: ``COMPLETE``, ``PRUNED`` (early stop) or ``FAIL``."""
    from optuna.trial import TrialState

    return {"completed": TrialState.COMPLETE, "early-stopped": TrialState.PRUNED, "failed": TrialState.FAIL}[outcome.state]


def tell(storage: optuna.storages.BaseStorage, trial_id: int, outcome: Outcome) -> None:
    """End the stored trial ``trial_id``: ``COMPLETE`` with its value, ``PRUNED`` (early
    stop) with its last value, or ``FAIL``; with user attributes ``epochs`` and, if any, ``reason``.

    Writes the storage directly, as ``optuna.Study.tell`` does after it re-reads the
    trial twice to check it (two reads that cost more than the writes on SQLite); the
    outcome is already checked: a completed or early-stopped value is finite
    (:func:`~tuner.executor._outcome.classify`).
    """
    storage.set_trial_user_attr(trial_id, EPOCHS_ATTR, outcome.epochs)
    if outcome.reason:
        storage.set_trial_user_attr(trial_id, REASON_ATTR, outcome.reason)
    values = None if outcome.state == "failed" or outcome.value is None else [outcome.value]
    storage.set_trial_state_values(trial_id, optuna_state(outcome), values)
