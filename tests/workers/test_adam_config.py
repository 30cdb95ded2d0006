"""``workers.config.AdamConfig``: one trial's Adam config and lr schedule as one value."""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest
import torch
from torch import nn

from workers import FusedAdam
from workers.config import CONFIG_KEYS, RULES, AdamConfig

CONFIG = {"lr": 3e-3, "beta1": 0.85, "beta2": 0.998, "eps": 1e-7, "weight_decay": 0.01}


def test_defaults_are_torch_adams_signature_defaults() -> None:
    signature = inspect.signature(torch.optim.Adam).parameters
    torch_defaults = {name: p.default for name, p in signature.items() if p.default is not inspect.Parameter.empty}
    adam = AdamConfig()
    assert adam.torch_kwargs() == {k: torch_defaults[k] for k in adam.torch_kwargs()}
    assert adam.schedule_kwargs() == {"schedule": "constant", "warmup_fraction": 0.0} and not adam.scheduled


def test_from_config_fills_defaults_ignores_other_keys_and_round_trips() -> None:
    adam = AdamConfig.from_config({**CONFIG, "trial_number": 3, "width": 64})
    assert adam == AdamConfig(lr=3e-3, beta1=0.85, beta2=0.998, eps=1e-7, weight_decay=0.01)
    # an Adam config carries no algorithm nor momentum_decay (test_algorithm_config.py: the others do)
    assert set(adam.to_config()) == CONFIG_KEYS - {"algorithm", "momentum_decay"}
    assert AdamConfig.from_config(adam.to_config()) == adam
    assert list(adam.to_config()) == [f.name for f in dataclasses.fields(AdamConfig)][:-2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        adam.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("decoupled", [False, True])
def test_kwargs_build_torch_adam_adamw_and_fused_adam(decoupled: bool) -> None:
    adam = AdamConfig.from_config({**CONFIG, "amsgrad": True, "decoupled_weight_decay": decoupled})
    params = list(nn.Linear(2, 2).parameters())
    name, kwargs = adam.torch_optimizer()
    assert name == ("AdamW" if decoupled else "Adam")
    built = [
        torch.optim.Adam(params, **adam.torch_kwargs()),
        getattr(torch.optim, name)(params, **kwargs),
        FusedAdam(params, **adam.torch_kwargs()),
    ]
    for opt in built:
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"], group["eps"], group["weight_decay"], group["amsgrad"]) == (
            3e-3,
            (0.85, 0.998),
            1e-7,
            0.01,
            True,
        )
        assert group["decoupled_weight_decay"] is decoupled


def test_values_become_plain_floats_and_bools() -> None:
    adam = AdamConfig.from_config({"lr": 1, "beta1": 0, "beta2": 0.5, "eps": 1, "warmup_fraction": 0, "amsgrad": 0})
    assert all(
        type(getattr(adam, k)) is float for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "warmup_fraction")
    )
    assert adam.amsgrad is False


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"lr": 0.0}, r"^lr > 0 must hold, but got lr=0.0$"),
        ({"beta2": 1.0}, r"^0 <= beta2 < 1 must hold, but got beta2=1.0$"),
        ({"eps": math.nan}, r"^eps > 0 must hold, but got eps=nan$"),
        ({"weight_decay": -1}, r"^weight_decay >= 0 must hold, but got weight_decay=-1$"),
        ({"warmup_fraction": 1}, r"^0 <= warmup_fraction < 1 must hold .*, but got warmup_fraction=1$"),
        ({"schedule": "step"}, r"^schedule must be one of constant, cosine, linear, but got schedule='step'$"),
        ({"lr": True}, r"must be a real number, but got True"),
        ({"amsgrad": "yes"}, r"config\['amsgrad'\] must be a bool"),
    ],
)
def test_a_bad_value_raises_with_its_rule(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdamConfig.from_config({**CONFIG, **change})
    with pytest.raises(ValueError, match=match):
        AdamConfig(**change)


def test_a_missing_required_key_raises_key_error() -> None:
    with pytest.raises(KeyError, match="missing required key"):
        AdamConfig.from_config({"lr": 1e-3})


def test_every_rule_is_a_config_key() -> None:
    assert set(RULES) <= CONFIG_KEYS
