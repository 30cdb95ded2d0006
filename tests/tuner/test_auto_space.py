"""``search_space: auto``: the adam space cut to what n_trials can tune (lr alone under 10 trials)."""

from __future__ import annotations

import pytest

from tuner import parse_spec
from tuner.search_space import SearchSpace, auto_search_space, load_search_space

BASE = {"name": "auto", "workload": "digits_mlp", "search_space": "auto"}


ALL = ["lr", "beta1", "beta2"]  # eps never: AlgoPerf fixes it at 1e-8


@pytest.mark.parametrize(("n_trials", "searched"), [(1, ["lr"]), (9, ["lr"]), (10, ALL), (32, ALL), (1000, ALL)])
def test_the_budget_decides_what_is_searched(n_trials: int, searched: list[str]) -> None:
    space = parse_spec({**BASE, "n_trials": n_trials}).search_space
    assert (space.name, list(space.params)) == ("auto", searched)
    adam = SearchSpace.model_validate(load_search_space("adam"))
    assert all(space.params[key] == adam.params[key] for key in searched)  # the adam ranges
    config = space.to_adam_config({name: entry.low for name, entry in space.searched().items()})
    fixed = {"beta1": 0.9, "eps": 1e-8, "beta2": 0.999}
    assert all(config[key] == value for key, value in fixed.items() if key not in searched)  # torch's defaults


def test_a_changed_n_trials_recuts_the_space() -> None:
    spec = parse_spec({**BASE, "n_trials": 32})
    assert list(spec.with_overrides(n_trials=8).search_space.params) == ["lr"]
    assert (
        auto_search_space(8)["description"]
        == "auto for 8 trials: lr searched as in 'adam'; beta1, beta2, eps at torch's defaults"
    )
    assert (
        auto_search_space(32)["description"]
        == "auto for 32 trials: lr, beta1, beta2 searched as in 'adam'; eps at torch's defaults"
    )


def test_a_stored_cut_is_kept_when_validated_again() -> None:
    """A resumed sweep re-validates its stored spec: its space must not change with the budget."""
    spec = parse_spec({**BASE, "n_trials": 8})
    stored = {**spec.model_dump(mode="json"), "n_trials": 32}
    assert list(parse_spec(stored).search_space.params) == ["lr"]


def test_auto_is_accepted_over_http_and_a_bad_n_trials_is_reported_once() -> None:
    assert parse_spec({**BASE, "n_trials": 16}, allow_paths=False).search_space.name == "auto"
    with pytest.raises(Exception, match="n_trials"):
        parse_spec({**BASE, "n_trials": 0})
