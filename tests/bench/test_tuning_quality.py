"""The pure scoring helpers of ``bench/tuning_quality.py``: picking, prefixes, ranks with ties,
trial-epochs to reach a target, and the re-train cache's keys. No Ray, no training."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "tuning_quality.py"


def _load() -> ModuleType:
    """The bench script as a module of its own name (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_tuning_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


tq = _load()
T = tq.TrialResult
ADAM = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def test_importing_the_script_starts_nothing_heavy() -> None:
    assert "ray" not in vars(tq) and "torch" not in vars(tq)


# -- prefixes and picks ------------------------------------------------------------------------


def test_prefix_takes_the_first_trials_by_number_not_by_list_order() -> None:
    trials = [T(3, ADAM, 0.1, 4), T(0, ADAM, 0.5, 4), T(2, ADAM, 0.3, 4), T(1, ADAM, 0.2, 4)]
    assert [t.number for t in tq.prefix(trials, 2)] == [0, 1]
    assert [t.number for t in tq.prefix(trials, 10)] == [0, 1, 2, 3]


def test_pick_skips_failed_nonfinite_and_early_stopped_trials() -> None:
    trials = [
        T(0, ADAM, 0.50, 6),
        T(1, ADAM, None, 2, completed=False),  # diverged
        T(2, ADAM, float("nan"), 6),
        T(3, ADAM, 0.10, 1, completed=False),  # early-stopped: its value is an epoch-1 value
        T(4, ADAM, 0.30, 6),
    ]
    assert tq.pick(trials, "min").number == 4
    assert tq.pick(trials, "min", completed_only=False).number == 3  # Ray Tune's scope="last"
    assert tq.pick(trials, "max").number == 0
    assert tq.pick([T(0, ADAM, None, 1, completed=False)], "min") is None


def test_pick_breaks_ties_by_the_lower_trial_number() -> None:
    assert tq.pick([T(5, ADAM, 0.2, 6), T(1, ADAM, 0.2, 6)], "min").number == 1


def test_a_prefix_scores_only_its_own_trials() -> None:
    run = tq.SearchRun("random", "w", 0, 4, [T(i, {**ADAM, "lr": 10.0 ** -i}, v, 6) for i, v in enumerate([0.4, 0.3, 0.1, 0.2])],
                       wall_s=8.0)
    config, epochs, _ = run.view(2, "min")
    assert config["lr"] == 10.0 ** -1 and epochs == 12
    config, epochs, _ = run.view(4, "min")
    assert config["lr"] == 10.0 ** -2 and epochs == 24


def test_a_no_search_contender_costs_nothing() -> None:
    run = tq.SearchRun("torch-default", "w", 0, 0, [], 0.0, fixed=dict(ADAM))
    assert run.view(32, "min") == (ADAM, 0, 0.0)


def test_prefix_wall_adds_the_runs_tail_to_the_last_prefix_trials_end() -> None:
    trials = [T(0, ADAM, 0.1, 6, finished_s=2.0), T(1, ADAM, 0.1, 6, finished_s=5.0), T(2, ADAM, 0.1, 6, finished_s=4.0),
              T(3, ADAM, 0.1, 6, finished_s=9.0)]
    assert tq.prefix_wall(trials, 2, wall=12.0) == 5.0 + 3.0
    assert tq.prefix_wall(trials, 4, wall=12.0) == 12.0
    unknown = [*trials[:3], T(3, ADAM, 0.1, 6)]
    assert tq.prefix_wall(unknown, 2, wall=12.0) == 12.0


# -- ranks ------------------------------------------------------------------------------------


def test_rank_gives_ties_the_mean_of_their_ranks() -> None:
    assert tq.rank([0.3, 0.1, 0.3, 0.2], "min") == [3.5, 1.0, 3.5, 2.0]
    assert tq.rank([0.3, 0.1, 0.3, 0.2], "max") == [1.5, 4.0, 1.5, 3.0]
    assert tq.rank([0.5, 0.5, 0.5], "min") == [2.0, 2.0, 2.0]


def test_rank_puts_diverged_and_nan_last_tied() -> None:
    assert tq.rank([math.inf, 0.1, float("nan")], "min") == [2.5, 1.0, 2.5]
    assert tq.rank([-math.inf, 0.9], "max") == [2.0, 1.0]


def test_median_ranks_ranks_per_seed_then_takes_the_median() -> None:
    scores = {"a": [0.1, 0.3, 0.1], "b": [0.2, 0.1, 0.2], "c": [0.2, 0.2, 0.3]}
    # seed 0: a 1, b 2.5, c 2.5; seed 1: b 1, c 2, a 3; seed 2: a 1, b 2, c 3
    assert tq.median_ranks(scores, "min") == {"a": 1.0, "b": 2.0, "c": 2.5}


def test_median_ranks_needs_one_score_per_seed_for_everyone() -> None:
    with pytest.raises(ValueError, match="one score per seed"):
        tq.median_ranks({"a": [0.1, 0.2], "b": [0.1]}, "min")


# -- trial-epochs to reach a target -------------------------------------------------------------


def test_epochs_to_reach_counts_every_trials_epochs_up_to_the_first_reaching_one() -> None:
    trials = [
        T(2, ADAM, 0.25, 6),
        T(0, ADAM, 0.40, 6),
        T(1, ADAM, 0.05, 1, completed=False),  # early-stopped: costs its epoch, cannot reach
        T(3, ADAM, 0.15, 6),
    ]
    assert tq.epochs_to_reach(trials, 0.30, "min") == 6 + 1 + 6
    assert tq.epochs_to_reach(trials, 0.40, "min") == 6  # reaching includes equality
    assert tq.epochs_to_reach(trials, 0.20, "min") == 19
    assert tq.epochs_to_reach(trials, 0.35, "max") == 6


def test_epochs_to_reach_is_none_when_never_reached() -> None:
    trials = [T(0, ADAM, 0.4, 6), T(1, ADAM, None, 3, completed=False)]
    assert tq.epochs_to_reach(trials, 0.1, "min") is None
    assert tq.epochs_to_reach([], 0.1, "min") is None


def test_median_or_none_counts_not_reached_as_infinite() -> None:
    assert tq.median_or_none([10, None, 20]) == 20
    assert tq.median_or_none([10, None, None]) is None
    assert tq.median_or_none([10, 30, None, None]) is None  # median of 10, 30, inf, inf
    assert tq.median_or_none([10, 30, 40, None]) == 35
    assert tq.median_or_none([]) is None


def test_reach_ratio_divides_by_the_peers_trial_epochs() -> None:
    assert tq.reach_ratio([12, 24, 18], 36) == 0.5
    assert tq.reach_ratio([None, None, 18], 36) is None
    assert tq.reach_ratio([6, 6], 0) == math.inf  # a peer that does not search
    assert tq.reach_ratio([0, 0], 0) == 0.0


# -- the re-train cache -----------------------------------------------------------------------


def test_cache_keys_ignore_bookkeeping_order_and_number_types() -> None:
    a = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    b = {"eps": 1e-8, "beta2": 0.999, "beta1": 0.9, "lr": 0.001, "weight_decay": 0, "amsgrad": False,
         "decoupled_weight_decay": False, "schedule": "constant", "warmup_fraction": 0, "trial_number": 7, "baseline": True}
    assert tq.retrain_key("digits_mlp", a) == tq.retrain_key("digits_mlp", b)
    assert hash(tq.retrain_key("digits_mlp", a)) == hash(tq.retrain_key("digits_mlp", b))


def test_cache_keys_separate_workloads_and_training_relevant_values() -> None:
    key = tq.retrain_key("digits_mlp", ADAM)
    assert key != tq.retrain_key("char_lm", ADAM)
    assert key != tq.retrain_key("digits_mlp", {**ADAM, "lr": 1.0001e-3})
    assert key != tq.retrain_key("digits_mlp", {**ADAM, "schedule": "cosine"})
    assert key != tq.retrain_key("digits_mlp", {**ADAM, "weight_decay": 0.1})
    wd = {**ADAM, "weight_decay": 0.1}
    assert tq.retrain_key("digits_mlp", wd) != tq.retrain_key("digits_mlp", {**wd, "decoupled_weight_decay": True})


def test_cache_keys_treat_decoupling_without_weight_decay_as_plain_adam() -> None:
    assert tq.retrain_key("w", {**ADAM, "decoupled_weight_decay": True}) == tq.retrain_key("w", ADAM)


def test_cache_key_needs_the_adam_hyperparameters() -> None:
    with pytest.raises(KeyError, match="missing"):
        tq.canonical_config({"lr": 1e-3})


def test_cache_trains_each_config_once_and_scores_the_mean() -> None:
    cache = tq.RetrainCache([10_000, 10_001], "min")
    picks = [ADAM, {**ADAM, "trial_number": 0, "baseline": True}, {**ADAM, "lr": 3e-3}]
    todo = cache.missing("w", picks)
    assert [c["lr"] for c in todo] == [1e-3, 3e-3]
    for config, values in zip(todo, ([0.4, 0.2], [0.1, 0.3])):
        for seed, value in zip(cache.seeds, values):
            cache.put("w", config, seed, value)
    assert cache.missing("w", picks) == []
    assert cache.missing("other", picks) != []
    assert cache.score("w", {**ADAM, "baseline": True}) == pytest.approx(0.3)
    assert cache.score("w", {**ADAM, "lr": 3e-3}) == pytest.approx(0.2)


def test_cache_scores_a_diverged_seed_as_the_worst_value_and_refuses_unknown_configs() -> None:
    cache = tq.RetrainCache([1, 2], "min")
    cache.put("w", ADAM, 1, 0.2)
    assert cache.missing("w", [ADAM]) != []  # seed 2 still missing
    with pytest.raises(KeyError):
        cache.score("w", ADAM)
    cache.put("w", ADAM, 2, None)
    assert cache.score("w", ADAM) == math.inf
    assert tq.RetrainCache([1], "max").mode == "max" and tq.worst("max") == -math.inf
