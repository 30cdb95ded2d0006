"""Searching the Adam family: ``algorithm`` in a search space, packing, export and card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tuner.baseline import baseline_config, baseline_params
from tuner.errors import SpecError
from tuner.records import SweepSummary, TrialRecord
from tuner.review import adam_card, config_card, render
from tuner.search_space import SearchSpace
from tuner.spec import parse_spec

LR = {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1}
SEARCHED = {"params": {"lr": LR, "algorithm": {"choices": ["adam", "nadam", "adamax"]}}}


def test_algorithm_is_a_name_or_a_choice_and_reaches_the_trial_config() -> None:
    space = SearchSpace.model_validate(SEARCHED)
    assert space.algorithms == ("adam", "nadam", "adamax") and "algorithm" in space.searched()
    nadam = space.to_adam_config({"lr": 0.01, "algorithm": "nadam"})
    assert nadam["algorithm"] == "nadam" and nadam["momentum_decay"] == 4e-3
    assert "algorithm" not in space.to_adam_config({"lr": 0.01, "algorithm": "adam"})
    fixed = SearchSpace.model_validate({"params": {"lr": LR, "algorithm": "adamax"}})
    assert fixed.algorithms == ("adamax",) and fixed.to_adam_config({"lr": 0.01})["algorithm"] == "adamax"
    assert SearchSpace.model_validate({"params": {"lr": LR}}).algorithms == ("adam",)


def test_an_unsearched_lr_is_the_trial_algorithms_torch_default() -> None:
    searched = SearchSpace.model_validate({"params": {"beta1": 0.95, "algorithm": {"choices": ["adam", "nadam"]}}})
    assert searched.to_adam_config({"algorithm": "nadam"})["lr"] == torch.optim.NAdam([torch.zeros(1)]).defaults["lr"]
    assert searched.to_adam_config({"algorithm": "adam"})["lr"] == torch.optim.Adam([torch.zeros(1)]).defaults["lr"]
    fixed = SearchSpace.model_validate({"params": {"eps": 1e-7, "algorithm": "adamax"}})
    assert fixed.base_algorithm == "adamax" and searched.base_algorithm == "adam"
    assert fixed.to_adam_config({})["lr"] == torch.optim.Adamax([torch.zeros(1)]).defaults["lr"]


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"params": {"algorithm": "sgd"}}, "algorithm must be one of adam, nadam, adamax"),
        ({"params": {"algorithm": 1.0}}, "it takes a name"),
        (
            {"params": {"algorithm": {"choices": ["adam", "nadam"]}}, "amsgrad": True},
            "amsgrad: true is an option of Adam",
        ),
        ({"params": {"algorithm": "adamax"}, "decoupled_weight_decay": True}, "no decoupled weight decay"),
    ],
)
def test_bad_algorithm_entries_are_refused(space, match) -> None:
    with pytest.raises(ValueError, match=match):
        SearchSpace.model_validate(space)


def test_packing_refuses_a_searched_algorithm_and_takes_a_fixed_one() -> None:
    spec = {"name": "s", "workload": "digits_mlp", "search_space": SEARCHED, "n_trials": 4}
    with pytest.raises(SpecError, match="one algorithm per pack.*execution: standard or auto"):
        parse_spec({**spec, "execution": "packed"})
    assert parse_spec({**spec, "execution": "auto"}).search_space.algorithms == ("adam", "nadam", "adamax")
    fixed = {**spec, "execution": "packed", "search_space": {"params": {"lr": LR, "algorithm": "nadam"}}}
    assert parse_spec(fixed).search_space.algorithms == ("nadam",)


def test_the_baseline_follows_a_fixed_algorithm_and_is_adam_otherwise() -> None:
    assert "algorithm" not in baseline_config(SearchSpace.model_validate(SEARCHED))
    assert baseline_params(SearchSpace.model_validate(SEARCHED))["algorithm"] == "adam"
    fixed = SearchSpace.model_validate({"params": {"lr": LR, "algorithm": "nadam"}})
    assert baseline_config(fixed)["algorithm"] == "nadam"


NADAM = {
    "lr": 3e-3,
    "beta1": 0.85,
    "beta2": 0.998,
    "eps": 1e-7,
    "weight_decay": 0.01,
    "amsgrad": False,
    "decoupled_weight_decay": True,
    "algorithm": "nadam",
    "momentum_decay": 0.005,
}
ADAMAX = {**NADAM, "decoupled_weight_decay": False, "algorithm": "adamax"}
del ADAMAX["momentum_decay"]
SPEC = {"name": "s", "metric": "val_loss", "mode": "min", "workload": "digits_mlp", "max_epochs": 4}


@pytest.mark.parametrize(("config", "cls"), [(NADAM, torch.optim.NAdam), (ADAMAX, torch.optim.Adamax)])
def test_export_card_and_python_name_the_matching_torch_optimizer(config, cls) -> None:
    summary = SweepSummary("s", SPEC, (TrialRecord(1, "completed", config, 0.1, 4),))
    trial = summary.trials[0]
    card = json.loads(render([config_card(summary, trial, "run-1")], "json"))
    assert card["optimizer"] == cls.__name__
    kwargs = {k: v for k, v in card.items() if k not in ("optimizer", "schedule", "source")}
    params = [torch.nn.Parameter(torch.zeros(3))]
    optimizer = getattr(torch.optim, card["optimizer"])(params, **kwargs)
    assert type(optimizer) is cls and optimizer.defaults["lr"] == 3e-3
    with pytest.raises(TypeError, match="optimizer"):
        torch.optim.Adam(params, **{k: v for k, v in card.items() if k not in ("schedule", "source")})

    snippet = render([config_card(summary, trial, "run-1")], "python")
    assert f"optimizer = torch.optim.{cls.__name__}(" in snippet and "amsgrad" not in snippet
    model = torch.nn.Linear(3, 1)
    namespace = {"torch": torch, "model": model}
    exec(snippet, namespace)  # the snippet builds the optimizer as written
    assert type(namespace["optimizer"]) is cls
    if cls is torch.optim.NAdam:
        assert namespace["optimizer"].defaults["momentum_decay"] == 0.005
        assert namespace["optimizer"].defaults["decoupled_weight_decay"] is True

    full = adam_card(summary, trial, mlflow_run_id=None, diagnostics={})
    loaded = yaml.safe_load(yaml.safe_dump(full))
    assert loaded["optimizer"]["name"] == cls.__name__
    assert type(getattr(torch.optim, loaded["optimizer"]["name"])(params, **loaded["optimizer"]["kwargs"])) is cls


@pytest.mark.slow
def test_a_sweep_searching_algorithm_exports_a_card_that_loads_into_nadam(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny sweep over {adam, nadam, adamax}; where its best is not NAdam, a second one with nadam fixed."""
    import tuner

    monkeypatch.setenv("TUNER_HOME", str(tmp_path))
    spec = {
        "n_trials": 3,
        "max_epochs": 1,
        "scheduler": "none",
        "baseline": False,
        "execution": "standard",
        "lr_range_test": False,
    }
    result = tuner.sweep("diabetes_mlp", name="algo", search_space=SEARCHED, **spec)
    assert result.card is not None
    searched = {t.config.get("algorithm", "adam") for t in result.summary.trials}
    assert searched <= {"adam", "nadam", "adamax"}
    if result.card["optimizer"]["name"] != "NAdam":
        fixed = {"params": {"lr": LR, "algorithm": "nadam"}}
        result = tuner.sweep(
            "diabetes_mlp", name="algo-nadam", search_space=fixed, **{**spec, "execution": "packed", "n_trials": 2}
        )
    card = yaml.safe_load(yaml.safe_dump(result.card))
    assert card["optimizer"]["name"] == "NAdam"
    model = torch.nn.Linear(3, 1)
    optimizer = getattr(torch.optim, card["optimizer"]["name"])(model.parameters(), **card["optimizer"]["kwargs"])
    assert isinstance(optimizer, torch.optim.NAdam)
    assert optimizer.defaults["momentum_decay"] == 4e-3
    assert result.best_config["optimizer"] == "NAdam"
