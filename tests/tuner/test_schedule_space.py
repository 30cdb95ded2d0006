"""The lr schedule in search spaces: warmup_fraction and schedule fixed or searched, validated,
sampled through both executors' samplers, and filled into every trial config."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tuner import Choice, Dimension, SearchSpace, parse_spec
from tuner.search_space import SCHEDULES
from tuner.study import StudyStore, distributions

LR = {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2}
SEARCHED = {
    "lr": LR,
    "warmup_fraction": {"distribution": "uniform", "low": 0.0, "high": 0.2},
    "schedule": {"choices": ["constant", "cosine", "linear"]},
}


def space(**params) -> SearchSpace:
    return SearchSpace.model_validate({"params": params})


def test_fixed_schedule_keys_fill_the_config_and_absent_ones_default() -> None:
    fixed = space(lr=LR, warmup_fraction=0.05, schedule="cosine")
    assert set(fixed.searched()) == {"lr"}
    config = fixed.to_adam_config({"lr": 1e-3})
    assert (config["warmup_fraction"], config["schedule"]) == (0.05, "cosine")
    plain = space(lr=LR).to_adam_config({"lr": 1e-3})
    assert (plain["warmup_fraction"], plain["schedule"]) == (0.0, "constant")


def test_searched_schedule_keys_are_a_float_and_a_categorical_distribution() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    searched = space(**SEARCHED)
    assert searched.searched()["schedule"] == Choice(choices=("constant", "cosine", "linear"))
    assert isinstance(searched.searched()["warmup_fraction"], Dimension)
    dists = distributions(searched)
    assert dists["schedule"] == CategoricalDistribution(("constant", "cosine", "linear"))
    assert dists["warmup_fraction"] == FloatDistribution(0.0, 0.2)
    config = searched.to_adam_config({"lr": 1e-3, "warmup_fraction": 0.1, "schedule": "linear"})
    assert (config["warmup_fraction"], config["schedule"]) == (0.1, "linear")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"schedule": "step"},
            "params.schedule: schedule='step' breaks the rule: schedule must be one of constant, cosine, linear",
        ),
        ({"schedule": {"choices": ["cosine", "step"]}}, "params.schedule.choices: schedule='step' breaks the rule"),
        ({"schedule": {"choices": ["cosine", "cosine"]}}, "each choice must appear once"),
        ({"schedule": {"choices": []}}, "at least 1 item"),
        ({"schedule": 0.5}, r"params.schedule: got 0.5, but it takes a name \(constant, cosine, linear\) or \{choices"),
        (
            {"warmup_fraction": 1.0},
            "params.warmup_fraction: warmup_fraction=1 breaks the rule: 0 <= warmup_fraction < 1",
        ),
        ({"warmup_fraction": -0.1}, "warmup_fraction=-0.1 breaks the rule"),
        (
            {"warmup_fraction": {"distribution": "uniform", "low": 0.0, "high": 1.0}},
            "params.warmup_fraction.high: warmup_fraction=1 breaks",
        ),
        ({"warmup_fraction": {"distribution": "uniform", "low": -0.1, "high": 0.1}}, "params.warmup_fraction.low"),
        ({"warmup_fraction": "cosine"}, "params.warmup_fraction: got 'cosine', but warmup_fraction takes a number"),
        ({"lr": {"choices": ["cosine"]}}, "names and choices are for schedule and algorithm only"),
        ({"lr": "1e-3"}, "YAML reads 1e-3 as text: write it with a dot"),
    ],
)
def test_bad_schedule_entries_name_the_field_the_value_and_the_rule(params: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        space(**params)


def test_the_bundled_warmup_cosine_space_parses() -> None:
    spec = parse_spec({"name": "t", "workload": "digits_mlp", "search_space": "adamw-warmup-cosine"})
    adamw = parse_spec({"name": "t", "workload": "digits_mlp", "search_space": "adamw"}).search_space
    got = spec.search_space
    assert got.decoupled_weight_decay and got.params["schedule"] == "cosine"
    assert got.searched() == {
        **adamw.searched(),
        "warmup_fraction": Dimension(distribution="uniform", low=0.0, high=0.2),
    }
    config = got.to_adam_config({name: 0.01 for name in got.searched()})
    assert (config["schedule"], config["warmup_fraction"]) == ("cosine", 0.01)
    # The spec as stored in the study (JSON) validates back to the same space.
    assert SearchSpace.model_validate(spec.model_dump(mode="json")["search_space"]) == got


INLINE = {
    "name": "sched",
    "workload": "digits_mlp",
    "n_trials": 12,
    "max_epochs": 2,
    "search_space": {"params": SEARCHED},
}


def test_the_study_samples_every_choice_and_records_it(tmp_path: Path) -> None:
    from tuner.executor import SweepStudy

    spec = parse_spec({**INLINE, "baseline": False})
    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(spec)
    study = SweepStudy(spec, studies.storage, n_trials=12, window=12)
    asked = [study.ask() for _ in range(12)]
    assert {a.config["schedule"] for a in asked} == set(SCHEDULES)
    assert all(0.0 <= a.config["warmup_fraction"] <= 0.2 for a in asked)
    assert [t.config for t in studies.summary(spec.name).trials] == [a.config for a in asked]

    resumed = SweepStudy(spec, studies.storage, n_trials=12, window=12).ask()  # the trials above were left running
    assert (resumed.number, resumed.config) == (0, asked[0].config)
