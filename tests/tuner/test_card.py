"""The Adam config card: what it holds, that it loads back into torch.optim.Adam/AdamW and the
lr scheduler, and the square-root batch-size transfer (Malladi et al., NeurIPS 2022)."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from tuner.records import SweepSummary, TrialRecord
from tuner.review import adam_card, sqrt_scaling
from workers.schedule import lr_scheduler

CONFIG = {
    "lr": 3e-3,
    "beta1": 0.85,
    "beta2": 0.998,
    "eps": 1e-7,
    "weight_decay": 0.01,
    "amsgrad": False,
    "decoupled_weight_decay": True,
    "schedule": "cosine",
    "warmup_fraction": 0.1,
}
BASELINE = {
    **CONFIG,
    "lr": 1e-3,
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "weight_decay": 0.0,
    "decoupled_weight_decay": True,
    "schedule": "constant",
    "warmup_fraction": 0.0,
}
SPEC = {
    "name": "card",
    "workload": "digits_mlp",
    "workload_args": {"hidden": 32},
    "metric": "val_loss",
    "mode": "min",
    "max_epochs": 4,
}
FACTS = {
    "parameters": 4810,
    "batch_size": 64,
    "dtype": "float32",
    "steps_per_epoch": 23,
    "data": {"digits.sha256": "ab12"},
}


def summary(**fields) -> SweepSummary:
    trials = (
        TrialRecord(0, "completed", BASELINE, 0.20, 4, baseline=True),
        TrialRecord(1, "completed", CONFIG, 0.10, 4),
        TrialRecord(2, "early-stopped", CONFIG, 0.9, 1),
    )
    return SweepSummary(name="card", spec=SPEC, trials=trials, workload_facts=FACTS, **fields)


def test_the_card_holds_the_config_the_workload_the_baseline_and_the_diagnostics() -> None:
    s = summary()
    card = adam_card(s, s.trials[1], mlflow_run_id="run-1", diagnostics={"adam_nonfinite": 0.0})
    assert card["optimizer"] == {
        "name": "AdamW",
        "kwargs": {"lr": 3e-3, "betas": [0.85, 0.998], "eps": 1e-7, "weight_decay": 0.01, "amsgrad": False},
    }
    assert card["scheduler"] == {"name": "cosine", "warmup_fraction": 0.1, "total_steps": 4 * 23}
    assert card["workload"] == {"name": "digits_mlp", "args": {"hidden": 32}}
    assert card["training"] == {
        "parameters": 4810,
        "batch_size": 64,
        "dtype": "float32",
        "epochs": 4,
        "steps": 92,
        "data": {"digits.sha256": "ab12"},
    }
    assert card["result"] == {
        "metric": "val_loss",
        "mode": "min",
        "value": 0.10,
        "objective": "last",
        "epoch": None,
        "seeds": None,
    }
    assert card["baseline"] == {"metric": "val_loss", "value": 0.20, "tuned": 0.10, "change_percent": -50.0}
    assert card["diagnostics"] == {"adam_nonfinite": 0.0}
    assert card["source"]["trial"] == 1 and "transfer" not in card
    assert yaml.safe_load(yaml.safe_dump(card)) == card  # plain YAML types only


def test_the_card_round_trips_into_torch_optimizer_and_scheduler() -> None:
    s = summary()
    loaded = yaml.safe_load(yaml.safe_dump(adam_card(s, s.trials[1], mlflow_run_id=None, diagnostics={})))
    model = torch.nn.Linear(3, 2)
    optimizer = getattr(torch.optim, loaded["optimizer"]["name"])(model.parameters(), **loaded["optimizer"]["kwargs"])
    assert isinstance(optimizer, torch.optim.AdamW)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (3e-3, (0.85, 0.998), 1e-7, 0.01)
    sched = loaded["scheduler"]
    scheduler = lr_scheduler(
        optimizer, schedule=sched["name"], warmup_fraction=sched["warmup_fraction"], total_steps=sched["total_steps"]
    )
    lrs = []
    for _ in range(sched["total_steps"]):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(lrs) == pytest.approx(3e-3) and lrs[0] < lrs[10] and lrs[-1] < 1e-4  # warm-up, then cosine decay

    base = adam_card(s, s.trials[0], mlflow_run_id=None, diagnostics={})
    assert base["source"]["baseline_trial"] is True
    plain = {**CONFIG, "decoupled_weight_decay": False}
    adam = adam_card(summary(), TrialRecord(1, "completed", plain, 0.1, 4), mlflow_run_id=None, diagnostics={})
    assert (
        type(getattr(torch.optim, adam["optimizer"]["name"])(model.parameters(), **adam["optimizer"]["kwargs"]))
        is torch.optim.Adam
    )


def test_reevaluated_cards_report_mean_and_std_over_seeds() -> None:
    s = summary(reevaluations={1: {1: 0.11, 2: 0.13, 3: None}})
    seeds = adam_card(s, s.trials[1], mlflow_run_id=None, diagnostics={})["result"]["seeds"]
    assert seeds["mean"] == pytest.approx(0.12) and seeds["std"] == pytest.approx(math.sqrt(2) * 0.01)
    assert (seeds["values"], seeds["failed"]) == ([0.11, 0.13], 1)


def test_batch_size_transfer_follows_the_square_root_rule_and_says_it_is_a_heuristic() -> None:
    s = summary()
    transfer = adam_card(s, s.trials[1], mlflow_run_id=None, diagnostics={}, batch_size=256)["transfer"]
    kwargs = transfer["kwargs"]
    assert transfer["kappa"] == 4.0 and transfer["heuristic"] is True and "Malladi" in transfer["source"]
    assert kwargs["lr"] == pytest.approx(3e-3 * 2) and kwargs["eps"] == pytest.approx(1e-7 / 2)
    assert kwargs["betas"] == pytest.approx([1 - 4 * 0.15, 1 - 4 * 0.002])
    assert kwargs["weight_decay"] == 0.01
    back = sqrt_scaling(kwargs, batch_size=256, to_batch_size=64)["kwargs"]  # the rule inverts itself
    assert back["lr"] == pytest.approx(3e-3) and back["betas"] == pytest.approx([0.85, 0.998])


def test_a_transfer_that_pushes_a_beta_out_of_range_or_lacks_a_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="1 - beta1 = .* >= 1 .*pick a batch size below 427"):
        sqrt_scaling({"lr": 1e-3, "betas": [0.85, 0.999], "eps": 1e-8}, batch_size=64, to_batch_size=512)
    s = SweepSummary(name="card", spec=SPEC, trials=summary().trials)  # a function workload: no facts
    with pytest.raises(ValueError, match="does not declare one"):
        adam_card(s, s.trials[1], mlflow_run_id=None, diagnostics={}, batch_size=128)
    assert adam_card(s, s.trials[1], mlflow_run_id=None, diagnostics={})["training"]["parameters"] is None
