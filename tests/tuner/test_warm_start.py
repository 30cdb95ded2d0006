"""Warm start: AlgoPerf's self-tuning point (and torch's defaults without a baseline) are the
first new trials after the baseline, projected into the space, in both executors, once per study."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.samplers import TPESampler

from tuner import parse_spec
from tuner.executor import Outcome
from tuner.executor._cancel import Cancel
from tuner.executor._packed_study import PackStudy
from tuner.executor._searcher import AdamSearch
from tuner.search_space import SearchSpace, load_search_space
from tuner.study import StudyStore
from tuner.warm_start import WARM_START_CONFIGS, missing_warm_starts, warm_start_params

ALGOPERF = WARM_START_CONFIGS["algoperf-self-tuning"]
SPEC = parse_spec({"name": "warm", "workload": "digits_mlp", "search_space": "adam", "n_trials": 6, "max_epochs": 2,
                   "warm_start": True, "execution": "packed", "pack_size": 2})


def space(name: str) -> SearchSpace:
    return SearchSpace.model_validate(load_search_space(name))


def test_the_algoperf_point_in_the_adam_space_is_its_optimizer_values() -> None:
    params = warm_start_params(space("adam"), ALGOPERF)
    assert params == pytest.approx({"lr": 0.0017486387539278373, "one_minus_beta1": 0.06733926164,
                                    "one_minus_beta2": 1 - 0.9955159689799007, "eps": 1e-8})
    config = space("adam").to_adam_config(params)
    assert (config["beta1"], config["beta2"]) == pytest.approx((0.93266073836, 0.9955159689799007))
    assert (config["weight_decay"], config["schedule"]) == (0.0, "constant")  # not searched: the space's values


def test_values_outside_the_ranges_are_clipped_and_missing_choices_left_to_the_sampler() -> None:
    narrow = SearchSpace.model_validate({"params": {
        "lr": {"distribution": "log_uniform", "low": 1e-2, "high": 1e-1},
        "beta2": {"distribution": "log_uniform", "low": 1e-2, "high": 1e-1, "transform": "one_minus"},
        "schedule": {"choices": ["constant", "linear"]},
    }})
    assert warm_start_params(narrow, ALGOPERF) == {"lr": 1e-2, "one_minus_beta2": 1e-2}
    cosine = SearchSpace.model_validate({"params": {"schedule": {"choices": ["constant", "cosine"]}}})
    assert warm_start_params(cosine, ALGOPERF) == {"schedule": "cosine"}
    assert warm_start_params(space("adamw-warmup-cosine"), ALGOPERF)["warmup_fraction"] == 0.02


def test_torch_default_is_a_warm_start_only_without_a_baseline() -> None:
    study = optuna.create_study()
    assert missing_warm_starts(study, baseline=True) == ["algoperf-self-tuning"]
    assert missing_warm_starts(study, baseline=False) == ["algoperf-self-tuning", "torch-default"]


def test_standard_search_asks_the_baseline_then_the_warm_starts_then_samples() -> None:
    storage = optuna.storages.InMemoryStorage()
    spec = SPEC.with_overrides(execution="standard")
    optuna.create_study(study_name=spec.name, storage=storage)

    def search() -> AdamSearch:
        return AdamSearch(spec.search_space, max_epochs=2, cancel=Cancel(), baseline=True, warm_start=True,
                          metric="val_loss", mode="min", sampler=TPESampler(seed=0), storage=storage, study_name=spec.name)

    first = search()
    baseline, warm, sampled = (first.suggest(f"t{i}") for i in range(3))
    assert baseline["baseline"] is True and (baseline["lr"], baseline["beta2"]) == (1e-3, 0.999)
    assert (warm["lr"], warm["beta2"]) == pytest.approx((ALGOPERF["lr"], ALGOPERF["beta2"]))
    assert sampled["lr"] not in (1e-3, pytest.approx(ALGOPERF["lr"]))
    trials = optuna.load_study(study_name=spec.name, storage=storage).trials
    assert [t.user_attrs.get("warm_start") for t in trials] == [None, "algoperf-self-tuning", None]
    resumed = search()  # a resumed sweep: the three trials left running first, then a new one
    again = [resumed.suggest(f"r{i}") for i in range(4)]
    assert [c["trial_number"] for c in again] == [0, 1, 2, 3]
    assert again[1]["lr"] == pytest.approx(ALGOPERF["lr"]) and again[3]["lr"] != pytest.approx(ALGOPERF["lr"])
    trials = optuna.load_study(study_name=spec.name, storage=storage).trials
    assert sum(t.user_attrs.get("warm_start") is not None for t in trials) == 1  # not enqueued again


def test_packed_study_asks_the_warm_start_after_the_baseline_and_records_it(tmp_path: Path) -> None:
    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(SPEC)
    deferred: list[Callable[[], None]] = []
    study = PackStudy(SPEC, studies.storage, defer=deferred.append)
    baseline, warm, sampled = study.ask(), study.ask(), study.ask()
    assert (baseline.baseline, warm.baseline) == (True, False)
    assert (warm.config["lr"], warm.config["beta1"]) == pytest.approx((ALGOPERF["lr"], ALGOPERF["beta1"]))
    assert sampled.config["lr"] != pytest.approx(ALGOPERF["lr"])
    for asked in (baseline, warm, sampled):
        study.tell(asked, Outcome("completed", 0.5, 2))
    for write in deferred:
        write()
    stored = optuna.load_study(study_name=SPEC.name, storage=studies.storage).trials
    assert [t.user_attrs.get("warm_start") for t in stored] == [None, "algoperf-self-tuning", None]
    resumed = PackStudy(SPEC, studies.storage, defer=[].append).ask()
    assert not resumed.baseline and resumed.config["lr"] != pytest.approx(ALGOPERF["lr"])


def test_without_warm_start_the_sampler_follows_the_baseline(tmp_path: Path) -> None:
    spec = SPEC.with_overrides(warm_start=False)
    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(spec)
    study = PackStudy(spec, studies.storage, defer=[].append)
    study.ask()
    assert study.ask().config["lr"] != pytest.approx(ALGOPERF["lr"])
