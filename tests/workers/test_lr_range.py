"""The lr range test (workers.lr_range): the ramp, the early stop on divergence, the suggestion."""

from __future__ import annotations

import math

import pytest

from workers import get_workload
from workers.lr_range import DIVERGED, STEEP_FRACTION, lr_range_test, run_lr_range_test, suggest_lr


def test_suggestion_is_where_the_loss_falls_fastest_per_log_lr() -> None:
    lrs = [10 ** (-5 + i * 0.25) for i in range(21)]  # 1e-5 .. 1
    # Flat, then a drop centred on lr 1e-2 (index 12), then a rise: a logistic in log10(lr).
    losses = [2.0 - 1.5 / (1 + math.exp(-(math.log10(lr) + 2) * 4)) + (5.0 if lr > 0.3 else 0.0) for lr in lrs]
    # The smoothed loss lags the raw one (an EMA, decay 0.9): its steepest point is at or up to
    # two grid steps (half a decade) above the raw curve's, never below it or at the rise.
    assert 1e-2 <= suggest_lr(lrs, losses) <= 10**-1.5 + 1e-12


def test_suggestion_ignores_what_follows_a_nonfinite_loss() -> None:
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert suggest_lr(lrs, [2.0, 1.0, 0.5, float("nan"), 0.0]) in lrs[:3]
    with pytest.raises(ValueError, match="at least 3 finite steps"):
        suggest_lr(lrs, [2.0, float("inf"), 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="same length"):
        suggest_lr(lrs, [1.0])


def test_ramp_is_exponential_over_at_most_one_epoch(one_torch_thread: None) -> None:
    workload = get_workload("digits_mlp")
    found = lr_range_test(workload, lr_min=1e-5, lr_max=1e-1, max_steps=200)
    n = workload.steps_per_epoch()
    assert len(found.lrs) == len(found.losses) == n and found.epochs == 1.0  # a bounded lr never diverges here
    assert found.lrs[0] == pytest.approx(1e-5) and found.lrs[-1] == pytest.approx(1e-1)
    ratios = {round(b / a, 9) for a, b in zip(found.lrs, found.lrs[1:])}
    assert len(ratios) == 1  # a constant factor per step
    assert found.suggested == pytest.approx(found.steepest * STEEP_FRACTION) and found.steepest in found.lrs
    again = lr_range_test(workload, lr_min=1e-5, lr_max=1e-1, max_steps=200)
    assert again.losses == found.losses  # seeded: the same test gives the same curve


def test_stops_once_the_loss_diverges(one_torch_thread: None) -> None:
    found = lr_range_test(get_workload("digits_mlp"), lr_min=1e-4, lr_max=1e4, max_steps=200)
    assert len(found.lrs) < get_workload("digits_mlp").steps_per_epoch()
    last = found.losses[-1]
    assert not math.isfinite(last) or last > min(found.losses) * DIVERGED / 2
    assert found.steepest < 1e2  # read before the blow-up


def test_bad_arguments_say_what_holds() -> None:
    with pytest.raises(ValueError, match="0 < lr_min < lr_max"):
        lr_range_test(get_workload("digits_mlp"), lr_min=1e-1, lr_max=1e-3)
    with pytest.raises(ValueError, match="max_steps >= 3"):
        lr_range_test(get_workload("digits_mlp"), lr_min=1e-5, lr_max=1.0, max_steps=2)


def test_a_function_workload_has_no_range_test() -> None:
    with pytest.raises(TypeError, match="needs a Workload class"):
        run_lr_range_test(
            workload="examples.own_model.train:train",
            workload_args={},
            lr_min=1e-5,
            lr_max=1.0,
            seed=0,
            threads=1,
            device="cpu",
        )
