"""Sweep specs and search spaces: valid ones parse, bad ones name the field, the value and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner import SearchSpace, SpecError, load_spec, parse_spec
from tuner.search_space import bundled_search_spaces

ROOT = Path(__file__).resolve().parents[2]
BASE = {"name": "t", "workload": "digits_mlp", "search_space": "adam"}


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_specs_parse(path: Path) -> None:
    spec = load_spec(path)
    assert spec.search_space.searched()


def test_bundled_spaces_are_the_documented_ones() -> None:
    assert {"adam", "adamw", "adamw-warmup-cosine"} <= set(bundled_search_spaces())
    adam = parse_spec(BASE).search_space
    assert set(adam.searched()) == {"lr", "one_minus_beta1", "one_minus_beta2", "eps"}
    assert adam.searched()["one_minus_beta2"].low == 1e-4 and adam.searched()["one_minus_beta2"].log
    adamw = parse_spec({**BASE, "search_space": "adamw"}).search_space
    assert adamw.decoupled_weight_decay and adamw.searched()["weight_decay"].high == 0.1


def test_one_minus_transform_maps_samples_to_betas() -> None:
    space = parse_spec(BASE).search_space
    config = space.to_adam_config({"lr": 0.01, "one_minus_beta1": 0.1, "one_minus_beta2": 1e-3, "eps": 1e-9})
    assert config == {
        "lr": 0.01,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-9,
        "weight_decay": 0.0,
        "amsgrad": False,
        "decoupled_weight_decay": False,
        "warmup_fraction": 0.0,
        "schedule": "constant",
    }


def test_fixed_values_and_defaults_fill_the_config() -> None:
    space = SearchSpace.model_validate(
        {"params": {"lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2}, "beta2": 0.99}}
    )
    config = space.to_adam_config({"lr": 1e-3})
    assert (config["beta1"], config["beta2"], config["eps"]) == (0.9, 0.99, 1e-8)


def test_inline_space_and_relative_path(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("params:\n  lr: {distribution: uniform, low: 0.001, high: 0.01}\n")
    (tmp_path / "spec.yaml").write_text("name: s\nworkload: digits_mlp\nsearch_space: mine.yaml\n")
    spec = load_spec(tmp_path / "spec.yaml")
    assert spec.search_space.name == "mine" and set(spec.search_space.searched()) == {"lr"}


def test_overrides_are_validated() -> None:
    spec = parse_spec(BASE)
    assert spec.with_overrides(n_trials=3, max_epochs=None).n_trials == 3
    with pytest.raises(SpecError, match="n_trials"):
        spec.with_overrides(n_trials=0)


def lr(**dim):
    return {"params": {"lr": dim}}


BAD = [
    ({**BASE, "n_trail": 3}, ["n_trail", "unknown key"]),
    ({**BASE, "n_trials": 0}, ["n_trials", "greater than or equal to 1", "0"]),
    ({**BASE, "workload": "resnet9000"}, ["workload", "resnet9000", "digits_mlp"]),
    ({**BASE, "name": "../etc"}, ["name", "../etc"]),
    ({**BASE, "mode": "minimize"}, ["mode", "minimize"]),
    ({**BASE, "search_space": "nope"}, ["search_space", "nope", "adam"]),
    (
        {**BASE, "search_space": lr(distribution="log_uniform", low=0.1, high=0.001)},
        ["params.lr", "low < high", "low=0.1", "high=0.001"],
    ),
    ({**BASE, "search_space": lr(distribution="log_uniform", low=0.0, high=0.1)}, ["params.lr", "low > 0", "low=0.0"]),
    (
        {**BASE, "search_space": {"params": {"beta1": {"distribution": "uniform", "low": 0.5, "high": 1.0}}}},
        ["beta1", "0 <= beta1 < 1 must hold", "beta1=1"],
    ),
    (
        {
            **BASE,
            "search_space": {
                "params": {"beta2": {"distribution": "log_uniform", "low": 1e-3, "high": 1.5, "transform": "one_minus"}}
            },
        },
        ["beta2", "0 <= beta2 < 1 must hold", "-0.5"],
    ),
    ({**BASE, "search_space": {"params": {"eps": 0.0}}}, ["params.eps", "eps > 0", "eps=0"]),
    (
        {**BASE, "search_space": {"params": {"eps": {"distribution": "uniform", "low": -1e-8, "high": 1e-8}}}},
        ["params.eps.low", "eps > 0"],
    ),
    (
        {**BASE, "search_space": {"params": {"lr": {"distribution": "normal", "low": 1, "high": 2}}}},
        ["params.lr.distribution", "normal"],
    ),
    ({**BASE, "search_space": {"params": {"momentum": 0.9}}}, ["params.momentum"]),
    (
        {
            **BASE,
            "search_space": {
                "params": {"lr": {"distribution": "uniform", "low": 0.1, "high": 0.2, "transform": "one_minus"}}
            },
        },
        ["one_minus", "beta1/beta2"],
    ),
    ({**BASE, "resources_per_trial": {"cpu": 0}}, ["resources_per_trial.cpu"]),
]


@pytest.mark.parametrize(("data", "needles"), BAD, ids=[n[0] for _, n in BAD])
def test_bad_specs_name_the_field_value_and_rule(data: dict, needles: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.yaml")
    bad.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(bad)


def test_asha_settings_are_fitted_to_the_budget_unless_given_and_are_checked_against_max_epochs() -> None:
    from tuner.spec import Asha

    base = {"name": "a", "workload": "digits_mlp", "search_space": "adam", "max_epochs": 8}
    assert parse_spec(base).asha is None  # stored as unset: a resume with --n-trials fits it anew
    assert parse_spec(base).asha_settings == Asha(grace_period=2, reduction_factor=4.0)
    assert parse_spec({**base, "n_trials": 6}).asha_settings == Asha(grace_period=8, reduction_factor=4.0)  # no rung
    given = parse_spec({**base, "asha": {"grace_period": 2, "reduction_factor": 3}})
    assert given.asha_settings == given.asha == Asha(grace_period=2, reduction_factor=3.0)
    with pytest.raises(SpecError, match="asha.grace_period <= max_epochs must hold, but got grace_period=9"):
        parse_spec({**base, "asha": {"grace_period": 9}})
    with pytest.raises(SpecError, match="reduction_factor"):
        parse_spec({**base, "asha": {"reduction_factor": 1}})


def test_resources_name_the_device_and_threads_both_executors_use() -> None:
    from tuner.spec import Resources

    assert (Resources(cpu=2.5, gpu=0).device, Resources(cpu=2.5, gpu=0).threads) == ("cpu", 2)
    assert (Resources(cpu=0.5, gpu=0.25).device, Resources(cpu=0.5, gpu=0.25).threads) == ("cuda", 1)
