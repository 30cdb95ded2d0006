"""ASHA's rungs and stopping rule (tuner.asha), and its settings fitted to the budget."""

from __future__ import annotations

import math

import pytest

from tuner.asha import Rungs, fitted_asha


def rungs(max_epochs: int = 8, mode: str = "min", grace_period: int = 1, reduction_factor: float = 4) -> Rungs:
    return Rungs(max_epochs=max_epochs, mode=mode, grace_period=grace_period, reduction_factor=reduction_factor)


def test_milestones_lie_below_max_epochs() -> None:
    assert rungs().milestones == [1, 4]
    assert rungs(max_epochs=100).milestones == [1, 4, 16, 64]
    assert rungs(max_epochs=1).milestones == []
    assert rungs(grace_period=2).milestones == [2]


def test_a_rung_is_reached_at_the_first_epoch_at_or_past_it() -> None:
    r = rungs(max_epochs=20, reduction_factor=2.5)  # 1, 2.5, 6.25, 15.625
    assert [r.rung_at(e) for e in (1, 2, 3, 6, 7, 16)] == [1, None, 2.5, None, 6.25, 15.625]
    assert r.rung_values({1: 0.9, 2: 0.8, 3: 0.7, 4: math.nan}) == {1: 0.9, 2.5: 0.7}


def test_worse_than_the_quantile_of_the_others_stops() -> None:
    r = rungs()
    assert not r.stops(0.5, [])  # nothing to compare with
    assert r.stops(0.25, [0.1, 0.2, 0.3, 0.4, 0.5])  # the 75th percentile of -v is -0.2: above 0.2 stops
    assert not r.stops(0.15, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert not r.stops(math.nan, [0.1])  # divergence is a failure, not a stop


def test_mode_max_keeps_the_largest() -> None:
    r = rungs(mode="max")
    assert r.stops(0.4, [0.5]) and not r.stops(0.6, [0.5])
    assert r.better(0.6, 0.5) and not rungs().better(0.6, 0.5)


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="grace_period"):
        rungs(max_epochs=2, grace_period=3)
    with pytest.raises(ValueError, match="reduction_factor"):
        rungs(reduction_factor=1)


@pytest.mark.parametrize(
    ("n_trials", "max_epochs", "expected"),
    [(16, 8, (2, 4.0)), (8, 8, (2, 4.0)), (32, 3, (1, 4.0)), (16, 20, (5, 4.0)), (12, 40, (10, 4.0)), (6, 8, (8, 4.0))],
)
def test_fitted_settings_leave_several_trials_at_max_epochs(n_trials: int, max_epochs: int, expected: tuple) -> None:
    grace, factor = fitted_asha(n_trials, max_epochs)
    assert (grace, factor) == expected
    survivors = n_trials / factor ** len(rungs(max_epochs, grace_period=grace, reduction_factor=factor).milestones)
    assert survivors >= 2 or grace == max_epochs  # tiny sweeps: no rung


def test_a_rung_is_trusted_once_3_completed_trials_rank_there_as_at_the_end() -> None:
    rungs = Rungs(max_epochs=8, mode="min", grace_period=2, reduction_factor=4)
    assert not rungs.trusted([])
    assert not rungs.trusted([(0.4, 0.3), (0.5, 0.35)])  # too few to tell
    assert rungs.trusted([(0.4, 0.3), (0.5, 0.35), (0.6, 0.5)])  # tau 1
    assert not rungs.trusted([(0.4, 0.5), (0.5, 0.35), (0.6, 0.3)])  # tau -1: early leaders end worst
    # tau-a 4/6: one discordant pair of 6 (0.5 / 0.6 swap at the end) is still trusted ...
    assert rungs.trusted([(0.4, 0.3), (0.5, 0.6), (0.6, 0.5), (0.7, 0.7)])
    # ... two of 6 (tau 1/3) is not; non-finite values do not count
    assert not rungs.trusted([(0.4, 0.5), (0.5, 0.6), (0.6, 0.3), (0.7, 0.7), (float("nan"), 0.1)])
