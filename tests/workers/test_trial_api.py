"""The trial API a user's ``train(trial)`` receives, and how a sweep calls it (without Ray)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from workers import FusedAdam, Trial
from workers.trainable import error_reason, run_function
from workers.trial import StopTrial

CONFIG = {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7, "weight_decay": 0.1, "trial_number": 3}


def sweep_trial(rows: list, **kwargs) -> Trial:
    return Trial(
        config=CONFIG,
        number=3,
        max_epochs=kwargs.pop("max_epochs", 3),
        metric="val_loss",
        reporter=rows.append,
        **kwargs,
    )


def test_config_is_plain_adam_kwargs_plus_schedule() -> None:
    trial = Trial(config={**CONFIG, "schedule": "cosine", "warmup_fraction": 0.1, "width": 64})
    assert trial.config == {
        "lr": 0.01,
        "betas": (0.8, 0.99),
        "eps": 1e-7,
        "weight_decay": 0.1,
        "amsgrad": False,
        "decoupled_weight_decay": False,
        "schedule": "cosine",
        "warmup_fraction": 0.1,
        "width": 64,
    }
    assert trial.device == torch.device("cpu")


def test_defaults_are_torch_adams() -> None:
    trial = Trial.defaults(max_epochs=5, device="cpu")
    opt = trial.optimizer(nn.Linear(2, 2).parameters())
    reference = torch.optim.Adam(nn.Linear(2, 2).parameters()).defaults
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad"):
        assert opt.defaults[key] == reference[key]
    assert trial.max_epochs == 5 and not trial.in_sweep
    assert trial.config["schedule"] == "constant" and trial.config["warmup_fraction"] == 0.0


def test_optimizer_takes_param_groups_and_group_values_win() -> None:
    trial = Trial(config=CONFIG)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    opt = trial.optimizer([{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 0.5}])
    assert isinstance(opt, FusedAdam)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]
    assert all(g["betas"] == (0.8, 0.99) and g["eps"] == 1e-7 and g["weight_decay"] == 0.1 for g in opt.param_groups)


def test_lr_scheduler_follows_the_trials_schedule() -> None:
    trial = Trial(config={**CONFIG, "schedule": "linear", "warmup_fraction": 0.5})
    opt = trial.optimizer(nn.Linear(2, 2).parameters())
    sched = trial.lr_scheduler(opt, total_steps=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.005, 0.01, 0.01, 0.005])


def test_report_in_a_sweep_carries_epoch_and_diagnostics() -> None:
    rows: list = []
    trial = sweep_trial(rows)
    trial.optimizer(nn.Linear(2, 2).parameters())
    trial.report(val_loss=torch.tensor(0.5), val_accuracy=0.75)
    trial.report(val_loss=0.25, val_accuracy=0.8)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0]["val_loss"] == 0.5 and isinstance(rows[0]["val_loss"], float)
    assert {"adam_eps_dominated_frac", "adam_update_rms_ratio", "adam_nonfinite"} <= set(rows[1])


def test_report_outside_a_sweep_prints(capsys) -> None:
    trial = Trial.defaults(device="cpu")
    trial.report(val_loss=0.5)
    trial.report(val_loss=0.25)  # no max_epochs limit outside a sweep
    assert capsys.readouterr().out.splitlines() == ["epoch 1: val_loss=0.5", "epoch 2: val_loss=0.25"]


def test_non_finite_metric_reports_diverged_then_stops() -> None:
    rows: list = []
    trial = sweep_trial(rows)
    trial.optimizer(nn.Linear(2, 2).parameters())
    with pytest.raises(StopTrial, match="val_loss became nan at epoch 1"):
        trial.report(val_loss=math.nan)
    assert rows[-1]["diverged"] is True and rows[-1]["reason"] == "val_loss became nan at epoch 1"


def test_reports_past_max_epochs_end_the_trial() -> None:
    rows: list = []
    trial = sweep_trial(rows, max_epochs=2)
    trial.optimizer(nn.Linear(2, 2).parameters())
    trial.report(val_loss=1.0)
    trial.report(val_loss=0.9)
    with pytest.raises(StopTrial):
        trial.report(val_loss=0.8)
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("metrics", "error", "match"),
    [
        ({"val_accuracy": 0.9}, ValueError, "sweep optimizes 'val_loss'"),
        ({"val_loss": "low"}, TypeError, "must be a real number"),
        ({"val_loss": True}, TypeError, "must be a real number"),
    ],
)
def test_bad_reports_raise(metrics, error, match) -> None:
    rows: list = []
    trial = sweep_trial(rows)
    trial.optimizer(nn.Linear(2, 2).parameters())
    with pytest.raises(error, match=match):
        trial.report(**metrics)
    assert rows == []


def test_reporting_without_the_trials_optimizer_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="trial.optimizer"):
        sweep_trial([]).report(val_loss=1.0)


def _run(fn, rows: list, max_epochs: int = 3) -> None:
    run_function(
        fn,
        CONFIG,
        workload_args={"width": 8},
        max_epochs=max_epochs,
        seed=7,
        metric="val_loss",
        threads=1,
        device="cpu",
        report=rows.append,
    )


def test_run_function_seeds_and_passes_the_trial() -> None:
    seen: list = []

    def train(trial: Trial) -> None:
        seen.append((trial.number, trial.seed, trial.workload_args, torch.rand(1).item()))
        trial.optimizer(nn.Linear(2, 2).parameters())
        for _ in range(trial.max_epochs):
            trial.report(val_loss=1.0)

    rows: list = []
    _run(train, rows)
    _run(train, rows)
    assert len(rows) == 6
    assert seen[0] == seen[1] and seen[0][:3] == (3, 7, {"width": 8})


def test_run_function_ends_cleanly_on_divergence_and_past_max_epochs() -> None:
    def diverges(trial: Trial) -> None:
        trial.optimizer(nn.Linear(2, 2).parameters())
        try:
            trial.report(val_loss=math.inf)
        except Exception:  # a user's broad except must not swallow the stop
            pytest.fail("StopTrial was caught by `except Exception`")

    def loops_forever(trial: Trial) -> None:
        trial.optimizer(nn.Linear(2, 2).parameters())
        while True:
            trial.report(val_loss=1.0)

    rows: list = []
    _run(diverges, rows)
    assert rows[-1]["diverged"]
    rows.clear()
    _run(loops_forever, rows, max_epochs=4)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]


def test_run_function_without_reports_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="without calling trial.report"):
        _run(lambda trial: None, [])


def test_error_reason_names_the_exception_and_the_users_frames() -> None:
    def inner(x: float) -> float:
        return x / 0

    def train(trial: Trial) -> None:
        inner(1.0)

    with pytest.raises(ZeroDivisionError) as info:
        _run(train, [])
    reason = error_reason(info.value)
    assert reason.startswith("ZeroDivisionError: float division by zero (at test_trial_api.py:")
    assert "in inner <- test_trial_api.py:" in reason and "in train" in reason
    assert "trainable.py" not in reason and "\n" not in reason
