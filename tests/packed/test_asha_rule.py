"""The packed executor's ASHA rule decides as Ray Tune's ASHAScheduler (grace 1, reduction 4)."""

from __future__ import annotations

import math

import pytest

from tuner.executor._packed_asha import AshaRule


def test_rungs_for_eight_epochs_are_one_and_four() -> None:
    assert AshaRule(max_epochs=8, mode="min").milestones == [1, 4]
    assert AshaRule(max_epochs=100, mode="min").milestones == [1, 4, 16, 64]
    assert AshaRule(max_epochs=1, mode="min").milestones == [1]


def test_first_trial_at_a_rung_continues_and_worse_than_the_quantile_stops() -> None:
    rule = AshaRule(max_epochs=8, mode="min")
    assert not rule.should_stop(0, 1, 0.5)  # nothing recorded yet
    assert rule.should_stop(1, 1, 0.9)  # worse than 0.5 (the 75th percentile of max-signed {-0.5})
    assert not rule.should_stop(2, 1, 0.1)
    assert not rule.should_stop(0, 2, 10.0)  # between rungs: never stops
    assert not rule.should_stop(0, 4, 0.4)  # first at rung 4


def test_mode_max_keeps_the_largest() -> None:
    rule = AshaRule(max_epochs=8, mode="max")
    assert not rule.should_stop(0, 1, 0.5)
    assert rule.should_stop(1, 1, 0.4)
    assert not rule.should_stop(2, 1, 0.6)


def test_cutoff_is_the_top_quarter_of_recorded_values() -> None:
    rule = AshaRule(max_epochs=8, mode="min")
    for number, value in enumerate([0.1, 0.2, 0.3, 0.4, 0.5]):
        rule.should_stop(number, 1, value)
    # recorded (signed) -0.1 … -0.5; 75th percentile = -0.2: only values below 0.2 continue
    assert rule.should_stop(10, 1, 0.25)
    assert not rule.should_stop(11, 1, 0.15)


def test_a_value_is_recorded_once_per_rung_and_nan_is_not_recorded() -> None:
    rule = AshaRule(max_epochs=8, mode="min")
    assert not rule.should_stop(0, 1, math.nan)
    assert not rule.should_stop(1, 1, 0.5)  # the NaN was not recorded: still the first value
    assert not rule.should_stop(1, 1, 99.0)  # trial 1 already recorded at rung 1


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="grace_period"):
        AshaRule(max_epochs=2, mode="min", grace_period=3)
    with pytest.raises(ValueError, match="reduction_factor"):
        AshaRule(max_epochs=2, mode="min", reduction_factor=1)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_same_decisions_as_ray_tunes_asha_scheduler(mode: str) -> None:
    import random
    from types import SimpleNamespace

    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    ray_asha = ASHAScheduler(metric="v", mode=mode, max_t=20, grace_period=1, reduction_factor=4)
    ours = AshaRule(max_epochs=20, mode=mode)
    rng = random.Random(0)
    trials = {n: SimpleNamespace(trial_id=str(n)) for n in range(40)}
    for trial in trials.values():
        ray_asha.on_trial_add(None, trial)
    running = {n: 0 for n in trials}
    while running:  # interleave epochs of many trials, as concurrent packs do
        number = rng.choice(sorted(running))
        running[number] += 1
        epoch, value = running[number], rng.random()
        expected = ray_asha.on_trial_result(None, trials[number], {"training_iteration": epoch, "v": value})
        if epoch >= 20:
            del running[number]
            continue
        assert ours.should_stop(number, epoch, value) == (expected == TrialScheduler.STOP), (number, epoch)
        if expected == TrialScheduler.STOP:
            del running[number]
