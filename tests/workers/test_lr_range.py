"""The lr range test (workers.lr_range): the ramp, the early stop on divergence, the suggestion."""

from __future__ import annotations

import math

import pytest
import torch

from workers import get_workload
from workers.config import ALGORITHMS, AdamConfig
from workers.lr_range import DIVERGED, STEEP_FRACTION, lr_range_test, run_lr_range_test, suggest_lr
from workers.workloads import Workload


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


def torch_losses(workload: Workload, algorithm: str, lrs: tuple[float, ...], seed: int = 0) -> list[float]:
    """The range test's first ``len(lrs)`` losses, stepped by ``algorithm``'s ``torch.optim`` class at
    torch's defaults with the lrs given: the loop of :func:`lr_range_test`, written out."""
    name, kwargs = AdamConfig.torch_defaults(algorithm).torch_optimizer()
    model = workload.build_model(seed)
    optimizer = getattr(torch.optim, name)(model.parameters(), **kwargs)
    losses = []
    model.train()
    for lr, (x, y) in zip(lrs, workload.train_batches(1, seed)):
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = workload.loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if workload.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), workload.grad_clip_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def test_the_ramp_steps_the_algorithm_it_is_given(one_torch_thread: None) -> None:
    workload = get_workload("digits_mlp")
    early = {}
    for algorithm in ALGORITHMS:
        found = lr_range_test(workload, lr_min=1e-2, lr_max=1.0, max_steps=8, algorithm=algorithm)
        early[algorithm] = found.losses[:5]
        assert early[algorithm] == pytest.approx(torch_losses(workload, algorithm, found.lrs[:5]), rel=1e-5)
    # Adam, NAdam and AdaMax part within these steps, so the check above tells them apart.
    assert early["adam"][0] == early["nadam"][0] == early["adamax"][0]  # before any step
    for a, b in [("adam", "nadam"), ("adam", "adamax"), ("nadam", "adamax")]:
        assert early[a][4] != pytest.approx(early[b][4], rel=1e-3), (a, b)


def test_bad_arguments_say_what_holds() -> None:
    with pytest.raises(ValueError, match="0 < lr_min < lr_max"):
        lr_range_test(get_workload("digits_mlp"), lr_min=1e-1, lr_max=1e-3)
    with pytest.raises(ValueError, match="max_steps >= 3"):
        lr_range_test(get_workload("digits_mlp"), lr_min=1e-5, lr_max=1.0, max_steps=2)
    with pytest.raises(ValueError, match="algorithm must be one of adam, nadam, adamax"):
        lr_range_test(get_workload("digits_mlp"), lr_min=1e-5, lr_max=1.0, algorithm="sgd")


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
