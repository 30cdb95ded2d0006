"""A trial's ``algorithm`` (adam, nadam, adamax): config, the optimizer a trial builds, training."""

from __future__ import annotations

import pytest
import torch

import workers.optim
from workers.config import CONFIG_KEYS, DEFAULT_LRS, AdamConfig
from workers.trial import Trial

#: algorithm, its torch.optim class, its workers.optim class
CLASSES = [
    ("adam", torch.optim.Adam, workers.optim.FusedAdam),
    ("nadam", torch.optim.NAdam, workers.optim.FusedNAdam),
    ("adamax", torch.optim.Adamax, workers.optim.FusedAdamax),
]


def test_an_adam_config_is_unchanged_and_others_carry_their_keys() -> None:
    assert "algorithm" not in AdamConfig().to_config() and "momentum_decay" not in AdamConfig().to_config()
    nadam = AdamConfig(algorithm="nadam", momentum_decay=0.01)
    assert nadam.to_config()["algorithm"] == "nadam" and nadam.to_config()["momentum_decay"] == 0.01
    assert "momentum_decay" not in AdamConfig(algorithm="adamax").to_config()
    assert set(nadam.to_config()) == CONFIG_KEYS
    for adam in (AdamConfig(), nadam, AdamConfig(algorithm="adamax")):
        assert AdamConfig.from_config(adam.to_config()) == adam


@pytest.mark.parametrize(("algorithm", "torch_class", "fused_class"), CLASSES)
def test_torch_and_fused_optimizers_take_the_kwargs(algorithm, torch_class, fused_class) -> None:
    adam = AdamConfig(lr=0.01, weight_decay=0.1, algorithm=algorithm)
    name, kwargs = adam.torch_optimizer()
    params = [torch.nn.Parameter(torch.ones(3))]
    assert type(getattr(torch.optim, name)(params, **kwargs)) is torch_class
    name, kwargs = adam.fused_optimizer()
    assert type(getattr(workers.optim, name)([torch.nn.Parameter(torch.ones(3))], **kwargs)) is fused_class
    trial = Trial(config={**adam.to_config()}, seed=0, max_epochs=1)
    assert type(trial.optimizer([torch.nn.Parameter(torch.ones(3))])) is fused_class


@pytest.mark.parametrize(("algorithm", "torch_class", "fused_class"), CLASSES)
def test_torch_defaults_are_each_torch_optimizers_own(algorithm, torch_class, fused_class) -> None:
    defaults = AdamConfig.torch_defaults(algorithm)
    assert defaults.lr == DEFAULT_LRS[algorithm] and defaults.algorithm == algorithm
    name, kwargs = defaults.torch_optimizer()
    torch_defaults = torch_class([torch.nn.Parameter(torch.ones(3))]).defaults
    assert name == torch_class.__name__ and kwargs == {key: torch_defaults[key] for key in kwargs}
    name, kwargs = defaults.fused_optimizer()
    fused_defaults = fused_class([torch.nn.Parameter(torch.ones(3))]).defaults
    assert kwargs == {key: fused_defaults[key] for key in kwargs}


def test_torch_defaults_take_other_fields_and_refuse_an_unknown_algorithm() -> None:
    amsgrad = AdamConfig.torch_defaults("adam", amsgrad=True)
    assert amsgrad.amsgrad and amsgrad.lr == DEFAULT_LRS["adam"] == AdamConfig().lr
    with pytest.raises(ValueError, match="algorithm must be one of"):
        AdamConfig.torch_defaults("sgd")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"algorithm": "sgd"}, "algorithm must be one of adam, nadam, adamax"),
        ({"algorithm": "nadam", "amsgrad": True}, "amsgrad is an option of Adam only"),
        ({"algorithm": "adamax", "decoupled_weight_decay": True}, "no decoupled weight decay"),
        ({"algorithm": "nadam", "momentum_decay": -1.0}, "momentum_decay >= 0 must hold"),
    ],
)
def test_bad_algorithm_settings_are_refused(fields, match) -> None:
    with pytest.raises(ValueError, match=match):
        AdamConfig(**fields)


def test_training_runs_the_configs_algorithm() -> None:
    from workers.training import train

    config = {**AdamConfig(lr=0.01).to_config()}
    rows = {
        a: list(train({**config, "algorithm": a}, workload="diabetes_mlp", max_epochs=1, diagnostics=True))
        for a in ("adam", "nadam", "adamax")
    }
    losses = {a: r[-1]["val_loss"] for a, r in rows.items()}
    assert len(set(losses.values())) == 3  # three different updates
    assert all(r[-1]["adam_nonfinite"] == 0 for r in rows.values())


def test_a_pack_runs_one_algorithm_and_matches_training_alone() -> None:
    from workers.packed import PackedTrainer
    from workers.training import train

    configs = [{**AdamConfig(lr=lr, algorithm="nadam").to_config()} for lr in (0.01, 0.003)]
    rows = PackedTrainer(configs, workload="diabetes_mlp", max_epochs=1).run_epoch()

    def alone(configs: list[dict]) -> list[float]:
        return [list(train(c, workload="diabetes_mlp", max_epochs=1))[-1]["val_loss"] for c in configs]

    packed = [rows[k]["val_loss"] for k in range(2)]
    assert packed == pytest.approx(alone(configs), rel=1e-4)
    adam = alone([AdamConfig(lr=lr).to_config() for lr in (0.01, 0.003)])
    assert all(abs(p - a) > 1e-3 * abs(a) for p, a in zip(packed, adam, strict=True))  # NAdam's curve, not Adam's
    with pytest.raises(ValueError, match="same algorithm"):
        PackedTrainer([configs[0], AdamConfig().to_config()], workload="diabetes_mlp", max_epochs=1)
