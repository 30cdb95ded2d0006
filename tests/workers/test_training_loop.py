"""``workers.training.train``: one trial, one metric dict per epoch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from workers.config import AdamConfig
from workers.training import train
from workers.workloads import UnknownWorkloadError, get_workload
from workers.workloads.digits import DigitsMLP

CONFIG = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


@pytest.mark.parametrize("name", ["digits_mlp", "diabetes_mlp"])
def test_yields_one_plain_dict_per_epoch(name: str) -> None:
    workload = get_workload(name)
    rows = list(train(CONFIG, workload=name, max_epochs=3))
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert set(row) == {"epoch", "train_loss", *workload.metrics}
        assert type(row["epoch"]) is int
        assert all(type(row[k]) is float and math.isfinite(row[k]) for k in set(row) - {"epoch"})
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_sensible_config_learns_digits() -> None:
    rows = list(train(CONFIG, workload="digits_mlp", max_epochs=8))
    assert len(rows) == 8
    assert rows[-1]["val_accuracy"] >= 0.9
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]


def test_diabetes_beats_predicting_the_mean() -> None:
    rows = list(train(CONFIG, workload="diabetes_mlp", max_epochs=8))
    assert rows[-1]["val_r2"] > 0.2
    assert rows[-1]["val_loss"] < 1.0


def test_same_config_and_seed_give_an_identical_curve() -> None:
    first = list(train(CONFIG, workload="digits_mlp", max_epochs=3, seed=7))
    torch.manual_seed(999)  # the global RNG must not matter
    torch.randn(10)
    second = list(train(CONFIG, workload=DigitsMLP(), max_epochs=3, seed=7))
    assert first == second


@pytest.mark.parametrize(
    "change",
    [
        {"lr": 3e-3},
        {"beta1": 0.5},
        {"eps": 1e-1},
        {"weight_decay": 0.1},
        {"amsgrad": True},
    ],
)
def test_each_hyperparameter_changes_the_curve(change: dict) -> None:
    base = list(train(CONFIG, workload="diabetes_mlp", max_epochs=2))
    changed = list(train({**CONFIG, **change}, workload="diabetes_mlp", max_epochs=2))
    assert base != changed


def test_decoupled_weight_decay_differs_from_coupled() -> None:
    config = {**CONFIG, "weight_decay": 0.1}
    coupled = list(train(config, workload="diabetes_mlp", max_epochs=2))
    decoupled = list(train({**config, "decoupled_weight_decay": True}, workload="diabetes_mlp", max_epochs=2))
    assert coupled != decoupled


def test_seed_changes_the_curve() -> None:
    a = list(train(CONFIG, workload="diabetes_mlp", max_epochs=1, seed=0))
    b = list(train(CONFIG, workload="diabetes_mlp", max_epochs=1, seed=1))
    assert a != b


def test_config_maps_onto_adam_arguments() -> None:
    assert AdamConfig.from_config({**CONFIG, "weight_decay": 0.01, "amsgrad": True}).torch_kwargs() == {
        "lr": 1e-2,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.01,
        "amsgrad": True,
        "decoupled_weight_decay": False,
    }


def test_keys_outside_the_adam_config_are_ignored() -> None:
    plain = list(train(CONFIG, workload="diabetes_mlp", max_epochs=1))
    extra = list(train({**CONFIG, "trial_number": 3}, workload="diabetes_mlp", max_epochs=1))
    assert plain == extra
    assert AdamConfig.from_config({**CONFIG, "trial_number": 3}) == AdamConfig.from_config(CONFIG)


class _PoisonedDigits(DigitsMLP):
    """Digits whose training loss turns ``value`` at a given training step (1-based, global)."""

    def __init__(self, at_step: int, value: float) -> None:
        super().__init__()
        self.at_step = at_step
        self.value = value
        self.steps = 0

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        loss = super().loss(output, target)
        if torch.is_grad_enabled():  # training steps only, not evaluation
            self.steps += 1
            if self.steps == self.at_step:
                return loss * self.value
        return loss


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_loss_ends_the_run_with_a_reason(value: float) -> None:
    workload = _PoisonedDigits(at_step=0, value=value)
    steps_per_epoch = math.ceil(len(workload.load_data()[0].x) / workload.batch_size)
    workload.at_step = steps_per_epoch + 5  # epoch 2, step 5

    rows = list(train(CONFIG, workload=workload, max_epochs=8))

    assert len(rows) == 2
    assert "diverged" not in rows[0] and math.isfinite(rows[0]["train_loss"])
    last = rows[-1]
    assert last["epoch"] == 2
    assert last["diverged"] is True
    assert last["reason"] == f"train_loss became {value} at epoch 2, step 5"
    assert not math.isfinite(last["train_loss"])
    assert set(last) == {"epoch", "train_loss", "diverged", "reason", *workload.metrics}


def test_huge_learning_rate_diverges_without_raising() -> None:
    rows = list(train({**CONFIG, "lr": 1e10}, workload="diabetes_mlp", max_epochs=8))
    assert rows[-1]["diverged"] is True
    assert rows[-1]["reason"].startswith("train_loss became ")
    assert len(rows) < 8


class _MislabelledDigits(DigitsMLP):
    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        return {**super().evaluate(output, target), "val_f1": 0.0}


def test_evaluate_must_match_declared_metrics() -> None:
    with pytest.raises(ValueError, match="val_f1"):
        list(train(CONFIG, workload=_MislabelledDigits(), max_epochs=1))


@pytest.mark.parametrize("missing", ["lr", "beta1", "beta2", "eps"])
def test_missing_key_raises_at_call_time(missing: str) -> None:
    config = {k: v for k, v in CONFIG.items() if k != missing}
    with pytest.raises(KeyError, match=missing):
        train(config, workload="digits_mlp", max_epochs=1)  # not iterated


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"lr": -1.0}, "lr > 0"),
        ({"lr": 0.0}, "lr > 0"),
        ({"lr": "0.01"}, "real number"),
        ({"beta1": 1.0}, "beta1 < 1"),
        ({"warmup_fraction": 1.0}, "0 <= warmup_fraction < 1"),
        ({"beta2": -0.1}, "beta2 < 1"),
        ({"eps": math.nan}, "eps > 0"),
        ({"eps": 0.0}, "eps > 0"),
        ({"weight_decay": -0.5}, "weight_decay >= 0"),
        ({"amsgrad": "yes"}, "amsgrad"),
        ({"decoupled_weight_decay": 2}, "decoupled_weight_decay"),
    ],
)
def test_bad_config_values_raise_value_error(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train({**CONFIG, **change}, workload="digits_mlp", max_epochs=1)


@pytest.mark.parametrize("max_epochs", [0, -1, 1.5, True])
def test_bad_max_epochs(max_epochs: object) -> None:
    with pytest.raises(ValueError, match="max_epochs"):
        train(CONFIG, workload="digits_mlp", max_epochs=max_epochs)  # type: ignore[arg-type]


def test_bad_num_threads() -> None:
    with pytest.raises(ValueError, match="num_threads"):
        train(CONFIG, workload="digits_mlp", max_epochs=1, num_threads=0)


def test_unknown_workload_name() -> None:
    with pytest.raises(UnknownWorkloadError, match="'nope'"):
        train(CONFIG, workload="nope", max_epochs=1)
