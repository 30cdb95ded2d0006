"""``workers.packed.stacked_forward``: an MLP's stacked copies as batched matmuls equal ``vmap`` over ``functional_call``."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from workers.packed import stacked_forward

K, B, F = 3, 5, 4


def mlp(*layers: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*layers)


@pytest.mark.parametrize(
    "model",
    [
        lambda: mlp(nn.Linear(F, 8), nn.ReLU(), nn.Linear(8, 2)),
        lambda: mlp(nn.Tanh(), nn.Linear(F, 8, bias=False), nn.GELU(), nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 1)),
    ],
)
@pytest.mark.parametrize("shared", [True, False])
def test_equals_vmap_over_functional_call(model, shared: bool) -> None:
    models = [model() for _ in range(K)]
    for k, m in enumerate(models):  # distinct members
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.1 * k)
    params, buffers = stack_module_state(models)
    x = torch.randn(B, F) if shared else torch.randn(K, B, F)
    reference = vmap(lambda p, b, x: functional_call(models[0], (p, b), (x,)), in_dims=(0, 0, None if shared else 0))
    got = stacked_forward(models[0])(params, x)
    assert got.shape == (K, B, got.shape[-1])
    torch.testing.assert_close(got, reference(params, buffers, x))


@pytest.mark.parametrize(
    "model",
    [
        nn.Linear(F, 2),  # not a Sequential
        nn.Sequential(nn.Linear(F, 8), nn.Dropout(0.1), nn.Linear(8, 2)),  # random
        nn.Sequential(nn.Linear(F, 8), nn.LayerNorm(8), nn.Linear(8, 2)),  # parameters outside a Linear
        nn.Sequential(nn.BatchNorm1d(F), nn.Linear(F, 2)),  # buffers
        nn.Sequential(nn.ReLU()),  # no Linear
        nn.Sequential(nn.ReLU(inplace=True), nn.Linear(F, 2)),  # would write into the shared batch
    ],
)
def test_other_models_keep_the_vmap_path(model: nn.Module) -> None:
    assert stacked_forward(model) is None
