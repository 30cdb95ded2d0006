"""AdamSearch, driven as Ray Tune drives it, on an in-memory Optuna storage: what the study records.

Tune calls the searcher's ``on_trial_result`` for every result except one that ends the
trial (a scheduler's stop; ASHA's at ``max_epochs``), then ``on_trial_complete`` with the
last result. Without a scheduler the last epoch is an ordinary result, and the end comes
after it.
"""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.samplers import TPESampler

from tuner import parse_spec
from tuner.executor._cancel import Cancel
from tuner.executor._searcher import AdamSearch

SPEC = parse_spec({"name": "searcher", "workload": "digits_mlp", "search_space": "adam", "n_trials": 4, "max_epochs": 3})


@pytest.fixture
def storage() -> optuna.storages.BaseStorage:
    return optuna.storages.InMemoryStorage()


@pytest.fixture
def search(storage) -> AdamSearch:
    return AdamSearch(
        SPEC.search_space, max_epochs=SPEC.max_epochs, cancel=Cancel(), baseline=False, metric="val_loss", mode="min",
        sampler=TPESampler(seed=0), storage=storage, study_name=SPEC.name,
    )


def result(epoch: int, value: float) -> dict:
    return {"val_loss": value, "epoch": epoch, "training_iteration": epoch}


def drive(search: AdamSearch, trial_id: str, values: list[float], *, last_ends_it: bool) -> None:
    """Report ``values`` for epochs 1, 2, … and end the trial; with ``last_ends_it`` Tune withholds
    the last result from ``on_trial_result`` (the scheduler stopped the trial on it)."""
    search.suggest(trial_id)
    results = [result(epoch, v) for epoch, v in enumerate(values, start=1)]
    for r in results[:-1] if last_ends_it else results:
        search.on_trial_result(trial_id, r)
    search.on_trial_complete(trial_id, results[-1])


def stored(storage, number: int) -> optuna.trial.FrozenTrial:
    return optuna.load_study(study_name=SPEC.name, storage=storage).trials[number]


@pytest.mark.parametrize("last_ends_it", [True, False], ids=["asha-stops-at-max-epochs", "no-scheduler"])
def test_a_completed_trial_has_every_epoch_once(search, storage, last_ends_it: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when a step is reported twice
        drive(search, "t0", [0.9, 0.7, 0.5], last_ends_it=last_ends_it)
    trial = stored(storage, 0)
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.5
    assert trial.intermediate_values == {1: 0.9, 2: 0.7, 3: 0.5}
    assert len(trial.intermediate_values) == trial.user_attrs["epochs"]


def test_an_early_stopped_trial_has_every_epoch_once(search, storage) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drive(search, "t0", [0.9, 0.8], last_ends_it=True)  # ASHA stops it after epoch 2 of 3
    trial = stored(storage, 0)
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {1: 0.9, 2: 0.8} and trial.user_attrs["epochs"] == 2


def test_a_trial_records_its_adam_values_when_it_starts(search, storage) -> None:
    config = search.suggest("t0")
    attrs = stored(storage, 0).user_attrs
    assert {k: attrs[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "schedule", "warmup_fraction")} == {
        k: config[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "schedule", "warmup_fraction")
    }
    assert attrs["beta1"] == 1 - stored(storage, 0).params["one_minus_beta1"]


def test_the_first_trial_is_torch_default_adam_even_outside_the_space(storage) -> None:
    """Trial 0 trains with torch's defaults; the study records as params only those inside the
    searched ranges (weight_decay 0 lies outside a log range; the schedule choices lack constant)."""
    spec = parse_spec({
        "name": "searcher", "workload": "digits_mlp", "n_trials": 4, "max_epochs": 3,
        "search_space": {"params": {
            "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1},
            "weight_decay": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-1},
            "schedule": {"choices": ["cosine", "linear"]},
        }},
    })
    optuna.create_study(study_name=spec.name, storage=storage)
    search = AdamSearch(spec.search_space, max_epochs=3, cancel=Cancel(), baseline=True, metric="val_loss", mode="min",
                        sampler=TPESampler(seed=0), storage=storage, study_name=spec.name)
    first, second = search.suggest("t0"), search.suggest("t1")
    assert first["baseline"] is True and "baseline" not in second
    assert {k: first[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "schedule", "warmup_fraction")} == {
        "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "schedule": "constant", "warmup_fraction": 0.0}
    assert second["schedule"] in ("cosine", "linear") and second["weight_decay"] > 0
    drive(search, "t0", [0.9, 0.7, 0.5], last_ends_it=True)
    trial = optuna.load_study(study_name=spec.name, storage=storage).trials[0]
    assert trial.params == {"lr": 1e-3} and trial.user_attrs["baseline"] is True
    assert (trial.state, trial.value, trial.user_attrs["weight_decay"]) == (optuna.trial.TrialState.COMPLETE, 0.5, 0.0)


def test_a_retried_trial_repeating_its_epochs_keeps_the_first_values(search, storage) -> None:
    """Ray Tune restarts a trial whose worker died from epoch 1 (same trial id, same config)."""
    search.suggest("t0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when a step is reported twice
        for epoch, value in [(1, 0.9), (2, 0.8), (1, 0.9), (2, 0.8), (3, 0.5)]:
            search.on_trial_result("t0", result(epoch, value))
        search.on_trial_complete("t0", result(3, 0.5))
    trial = stored(storage, 0)
    assert trial.intermediate_values == {1: 0.9, 2: 0.8, 3: 0.5} and trial.value == 0.5
