"""Config cards load straight into torch.optim.Adam, in every export format."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from tuner.records import SweepSummary, TrialRecord
from tuner.review import config_card, render

SPEC = {"metric": "val_loss", "mode": "min", "workload": "digits_mlp"}
CONFIG = {
    "lr": 3e-3,
    "beta1": 0.85,
    "beta2": 0.9995,
    "eps": 1e-9,
    "weight_decay": 0.01,
    "amsgrad": False,
    "decoupled_weight_decay": True,
}


@pytest.fixture
def summary() -> SweepSummary:
    trials = (
        TrialRecord(0, "completed", CONFIG, 0.30, 8),
        TrialRecord(1, "completed", {**CONFIG, "lr": 1e-2}, 0.10, 8),
        TrialRecord(2, "early-stopped", CONFIG, 0.05, 1, "stopped"),
        TrialRecord(3, "failed", CONFIG, None, 2, "nan"),
    )
    return SweepSummary("s", SPEC, trials)


def test_best_ranks_completed_trials_only(summary: SweepSummary) -> None:
    assert [t.number for t in summary.best(5)] == [1, 0]
    maximize = SweepSummary("s", {**SPEC, "mode": "max"}, summary.trials)
    assert [t.number for t in maximize.best(5)] == [0, 1]


def test_json_card_builds_torch_adam(summary: SweepSummary) -> None:
    card = json.loads(render([config_card(summary, summary.best()[0], "run-1")], "json"))
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = torch.optim.Adam(params, **{k: card[k] for k in ("lr", "betas", "eps", "weight_decay")})
    assert tuple(opt.defaults["betas"]) == (0.85, 0.9995) and opt.defaults["lr"] == 1e-2
    torch.optim.Adam(params, **{k: v for k, v in card.items() if k not in ("schedule", "source")})
    assert card["schedule"] == {"name": "constant", "warmup_fraction": 0.0}  # a config stored before schedules existed
    assert card["source"] == {
        "sweep": "s",
        "trial": 1,
        "metric": "val_loss",
        "value": 0.10,
        "mlflow_run_id": "run-1",
        "workload": "digits_mlp",
        "epochs": 8,
        "objective": "last",
        "value_epoch": None,
    }


def test_top_k_is_a_list_in_json_and_yaml(summary: SweepSummary) -> None:
    cards = [config_card(summary, t, None) for t in summary.best(2)]
    assert [c["source"]["trial"] for c in json.loads(render(cards, "json"))] == [1, 0]
    assert yaml.safe_load(render(cards, "yaml")) == json.loads(render(cards, "json"))


def test_python_snippet_runs(summary: SweepSummary) -> None:
    text = render([config_card(summary, summary.best()[0], "run-1")], "python")
    scope = {"torch": torch, "model": torch.nn.Linear(2, 2)}
    exec(compile(text, "<snippet>", "exec"), scope)  # the snippet users paste
    opt = scope["optimizer"]
    assert opt.defaults["betas"] == (0.85, 0.9995) and opt.defaults["decoupled_weight_decay"] is True
    with pytest.raises(ValueError, match="unknown export format"):
        render([], "toml")


SCHEDULES = [("cosine", 0.2), ("cosine", 0.0), ("linear", 0.1), ("linear", 0.0), ("constant", 0.3), ("cosine", 0.01)]


@pytest.mark.parametrize(("schedule", "warmup_fraction"), SCHEDULES)
@pytest.mark.parametrize("total_steps", [30, 37])
def test_python_snippet_schedules_the_lr_as_the_trial_trained(
    schedule: str, warmup_fraction: float, total_steps: int
) -> None:
    """The exported LambdaLR gives, step for step, the lrs ``workers.schedule.lr_scheduler``
    gave the trial (steps past total_steps included)."""
    from workers.schedule import lr_scheduler

    config = {**CONFIG, "schedule": schedule, "warmup_fraction": warmup_fraction}
    trial = TrialRecord(0, "completed", config, 0.1, 8)
    card = config_card(SweepSummary("s", SPEC, (trial,)), trial, None)
    assert card["schedule"] == {"name": schedule, "warmup_fraction": warmup_fraction}
    text = render([card], "python")
    assert "total_steps = ...  # EDIT" in text
    scope = {"torch": torch, "math": math, "model": torch.nn.Linear(2, 2), "total_steps": total_steps}
    exec(
        compile(text.replace("total_steps = ...", f"total_steps = {total_steps}"), "<snippet>", "exec"), scope
    )  # as a user edits it
    exported, ours = scope["optimizer"], torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), lr=config["lr"])
    theirs = lr_scheduler(ours, schedule=schedule, warmup_fraction=warmup_fraction, total_steps=total_steps)
    lrs: dict[str, list[float]] = {"exported": [], "workers": []}
    for _ in range(total_steps + 5):
        for name, optimizer, scheduler in (("exported", exported, scope["scheduler"]), ("workers", ours, theirs)):
            lrs[name].append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    assert lrs["exported"] == lrs["workers"]
    assert len(set(lrs["workers"])) > 1  # the schedule moved the lr


def test_a_constant_lr_exports_no_scheduler() -> None:
    trial = TrialRecord(0, "completed", {**CONFIG, "schedule": "constant", "warmup_fraction": 0.0}, 0.1, 8)
    text = render([config_card(SweepSummary("s", SPEC, (trial,)), trial, None)], "python")
    assert "scheduler" not in text and "total_steps" not in text
    unedited = TrialRecord(0, "completed", {**CONFIG, "schedule": "cosine", "warmup_fraction": 0.1}, 0.1, 8)
    scope = {"torch": torch, "model": torch.nn.Linear(2, 2)}
    with pytest.raises(TypeError, match="ellipsis"):  # left unedited, the snippet fails at once
        exec(render([config_card(SweepSummary("s", SPEC, (unedited,)), unedited, None)], "python"), scope)
