"""``workers.schedule``: warm-up then constant/linear/cosine decay, as a factor and as torch's LambdaLR."""

from __future__ import annotations

import math

import pytest
import torch

from workers.config import CONFIG_KEYS, AdamConfig
from workers.optim import FusedAdam
from workers.schedule import SCHEDULES, lr_multiplier, lr_scheduler
from workers.training import train

CONFIG = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def factors(schedule: str, warmup_fraction: float, total_steps: int, steps: int | None = None) -> list[float]:
    return [
        lr_multiplier(s, schedule=schedule, warmup_fraction=warmup_fraction, total_steps=total_steps)
        for s in range(total_steps if steps is None else steps)
    ]


def test_warm_up_rises_linearly_to_one_then_each_schedule_decays() -> None:
    # T = 10, W = int(0.3 * 10) = 3: steps 0, 1, 2 warm up to 1; the decay spans T - W = 7 steps.
    assert factors("constant", 0.3, 10) == [1 / 3, 2 / 3, 1.0] + [1.0] * 7
    assert factors("linear", 0.3, 10) == [1 / 3, 2 / 3, 1.0] + [1.0 - p / 7 for p in range(7)]
    cosine = factors("cosine", 0.3, 10)
    assert cosine[:4] == [1 / 3, 2 / 3, 1.0, 1.0]
    assert cosine[6] == 0.5 * (1 + math.cos(math.pi * (3 / 7)))  # progress (6 - W) / (T - W)
    assert all(a > b for a, b in zip(cosine[3:], cosine[4:]))  # strictly decreasing after warm-up
    assert 0 < cosine[-1] < 0.1 and 0 < factors("linear", 0.3, 10)[-1] == pytest.approx(1 / 7)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_past_total_steps_the_progress_stays_at_its_end(schedule: str) -> None:
    after = factors(schedule, 0.2, 10, steps=14)[10:]
    assert after == [1.0 if schedule == "constant" else 0.0] * 4


def test_no_warm_up_starts_at_the_full_lr_and_a_tiny_fraction_rounds_to_none() -> None:
    assert factors("linear", 0.0, 4) == [1.0, 0.75, 0.5, 0.25]
    assert factors("cosine", 0.0, 1) == [1.0]
    assert factors("constant", 0.09, 10) == [1.0] * 10  # int(0.09 * 10) = 0 warm-up steps
    assert factors("cosine", 0.09, 10) == factors("cosine", 0.0, 10)


def test_schedule_kwargs_defaults_and_ignores_other_keys() -> None:
    assert AdamConfig.from_config(CONFIG).schedule_kwargs() == {"schedule": "constant", "warmup_fraction": 0.0}
    got = AdamConfig.from_config({**CONFIG, "schedule": "cosine", "warmup_fraction": 0}).schedule_kwargs()
    assert got == {"schedule": "cosine", "warmup_fraction": 0.0} and type(got["warmup_fraction"]) is float
    assert {"schedule", "warmup_fraction"} <= CONFIG_KEYS


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"schedule": "step"}, "schedule must be one of constant, cosine, linear, but got schedule='step'"),
        ({"schedule": None}, "schedule must be one of"),
        ({"warmup_fraction": 1.0}, r"0 <= warmup_fraction < 1 must hold .* but got warmup_fraction=1.0"),
        ({"warmup_fraction": -0.1}, "warmup_fraction=-0.1"),
        ({"warmup_fraction": math.nan}, "warmup_fraction=nan"),
        ({"warmup_fraction": "0.1"}, "warmup_fraction='0.1'"),
        ({"warmup_fraction": True}, "warmup_fraction=True"),
    ],
)
def test_bad_schedule_values_are_rejected_with_the_rule(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdamConfig.from_config({**CONFIG, **change})
    with pytest.raises(ValueError, match=match):
        train({**CONFIG, **change}, workload="diabetes_mlp", max_epochs=1)  # at call time, not iterated


def test_bad_steps_are_rejected() -> None:
    with pytest.raises(ValueError, match="step >= 0"):
        lr_multiplier(-1, schedule="cosine", warmup_fraction=0.0, total_steps=5)
    with pytest.raises(ValueError, match=r"total_steps must be an int >= 1 .*, but got total_steps=0"):
        lr_multiplier(0, schedule="cosine", warmup_fraction=0.0, total_steps=0)
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler(torch.optim.Adam(params), schedule="cosine", total_steps=0)


@pytest.mark.parametrize("make", [FusedAdam, torch.optim.Adam], ids=["FusedAdam", "torch.optim.Adam"])
def test_lr_scheduler_sets_base_lr_times_the_factor_each_step(make) -> None:
    params = [torch.nn.Parameter(torch.ones(3))]
    optimizer = make(params, lr=0.02)
    scheduler = lr_scheduler(optimizer, schedule="cosine", warmup_fraction=0.25, total_steps=12)
    lrs = []
    for _ in range(15):
        lrs.append(optimizer.param_groups[0]["lr"])
        params[0].grad = torch.ones(3)
        optimizer.step()
        scheduler.step()
    assert lrs == [0.02 * f for f in factors("cosine", 0.25, 12, steps=15)]


def test_a_schedule_changes_the_curve_and_constant_without_warm_up_does_not() -> None:
    plain = list(train(CONFIG, workload="diabetes_mlp", max_epochs=2))
    assert (
        list(train({**CONFIG, "schedule": "constant", "warmup_fraction": 0.0}, workload="diabetes_mlp", max_epochs=2))
        == plain
    )
    for change in ({"schedule": "cosine"}, {"schedule": "linear"}, {"warmup_fraction": 0.3}):
        assert list(train({**CONFIG, **change}, workload="diabetes_mlp", max_epochs=2)) != plain
