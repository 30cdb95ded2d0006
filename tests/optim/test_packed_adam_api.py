"""PackedAdam's API: construction checks, trial controls, and use with stacked models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call, stack_module_state

from workers.optim import PackedAdam


def stacked(k: int = 3) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.randn(k, 4, 3)), torch.nn.Parameter(torch.randn(k))]


@pytest.mark.parametrize(
    ("params", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "at least one param"),
        ([torch.zeros(())], {}, ValueError, "leading trial dim"),
        ([torch.zeros(3, 2), torch.zeros(2, 2)], {}, ValueError, "leading trial dim of size 3"),
        ([torch.zeros(3, 2, dtype=torch.int64)], {}, TypeError, "floating-point"),
        (None, {"lr": [0.1, 0.2]}, ValueError, r"one value per trial \(K=3\), but got 2"),
        (None, {"betas": (0.9, [0.9, 0.99, 1.0])}, ValueError, "trial 2: Invalid beta parameter at index 1: 1.0"),
        (None, {"eps": torch.tensor([1e-8, -1.0, 1e-8])}, ValueError, "trial 1: Invalid epsilon"),
        (None, {"backend": "nope"}, ValueError, "backend must be one of"),
    ],
)
def test_invalid_construction(params, kwargs, error, match):
    with pytest.raises(error, match=match):
        PackedAdam(stacked() if params is None else params, **kwargs)


def test_a_param_listed_twice_is_rejected():
    p = torch.nn.Parameter(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="listed twice"):
        PackedAdam([p, p])


def test_per_trial_values_accept_floats_sequences_tensors_and_mappings():
    params = dict(zip(("w", "b"), stacked()))
    opt = PackedAdam(
        params,
        lr=torch.tensor([0.1, 0.2, 0.3]),
        betas=(0.8, (0.9, 0.99, 0.999)),
        eps=1e-6,
        weight_decay=[0.0, 0.1, 0.2],
        decoupled_weight_decay=True,
    )
    assert opt.num_trials == 3 and opt.params == tuple(params.values())
    assert opt.hyperparameters(2) == {"lr": pytest.approx(0.3), "betas": (0.8, 0.999), "eps": 1e-6, "weight_decay": 0.2}


def test_trial_controls_check_their_arguments():
    opt = PackedAdam(stacked())
    with pytest.raises(ValueError, match="K=3 values, but got 2"):
        opt.set_active([True, False])
    with pytest.raises(IndexError, match=r"\[0, 3\), but got 3"):
        opt.set_hyperparameters(3, lr=0.1)
    with pytest.raises(IndexError):
        opt.reset_trial(-1)
    with pytest.raises(ValueError, match="trial 1: Invalid learning rate: -1.0"):
        opt.set_hyperparameters(1, lr=-1.0)
    assert opt.hyperparameters(1)["lr"] == 1e-3  # unchanged after the error


def test_set_lrs_sets_every_trial_at_once_as_set_hyperparameters_does():
    torch.manual_seed(0)
    at_once, one_by_one = stacked(), stacked()
    with torch.no_grad():
        for p, q in zip(one_by_one, at_once):
            p.copy_(q)
    a, b = PackedAdam(at_once, lr=0.1), PackedAdam(one_by_one, lr=0.1)
    for step, lrs in enumerate(([0.1, 0.05, 0.0], [0.02, 0.2, 0.01])):
        a.set_lrs(lrs)
        for k, lr in enumerate(lrs):
            b.set_hyperparameters(k, lr=lr)
        for p, q in zip(at_once, one_by_one):
            p.grad = q.grad = torch.full_like(p, step + 1.0)
        a.step()
        b.step()
    assert [a.hyperparameters(k)["lr"] for k in range(3)] == [0.02, 0.2, 0.01]
    for p, q in zip(at_once, one_by_one):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with pytest.raises(ValueError, match="K=3 values, but got 2"):
        a.set_lrs([0.1, 0.1])
    with pytest.raises(ValueError, match="trial 2: Invalid learning rate: nan"):
        a.set_lrs([0.1, 0.1, float("nan")])
    assert a.hyperparameters(2)["lr"] == 0.01  # unchanged after the error


def test_load_rejects_another_k_or_shape():
    opt = PackedAdam(stacked(3))
    other = PackedAdam(stacked(2))
    with pytest.raises(ValueError, match="K=2 trials, but this PackedAdam has K=3"):
        opt.load_state_dict(other.state_dict())
    wrong = [torch.nn.Parameter(torch.randn(3, 3, 4)), torch.nn.Parameter(torch.randn(3))]
    bad = PackedAdam(wrong)
    for p in wrong:
        p.grad = torch.ones_like(p)
    bad.step()
    with pytest.raises(ValueError, match=r"must have shape \(3, 4, 3\)"):
        opt.load_state_dict(bad.state_dict())


def test_step_with_all_trials_inactive_changes_nothing():
    params = stacked()
    before = [p.detach().clone() for p in params]
    opt = PackedAdam(params, lr=0.1)
    opt.set_active(torch.zeros(3, dtype=torch.bool))
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    for p, q in zip(params, before):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert opt.state_dict()["state"] == {}


@pytest.mark.filterwarnings("ignore:grad and param do not obey the gradient layout contract")
def test_vmapped_models_train_like_separate_models():
    """K models stacked with stack_module_state, one vmapped forward, backward of the summed
    loss, one PackedAdam step == K models each trained by its own torch.optim.Adam."""
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.Tanh(), torch.nn.Linear(9, 2)) for _ in range(4)]
    refs = copy.deepcopy(models)
    lrs, beta2s = [0.01, 0.003, 0.03, 0.001], [0.999, 0.99, 0.9, 0.9999]
    ref_opts = [
        torch.optim.Adam(m.parameters(), lr=lr, betas=(0.9, b2), foreach=False) for m, lr, b2 in zip(refs, lrs, beta2s)
    ]
    params, buffers = stack_module_state(models)
    opt = PackedAdam(params, lr=lrs, betas=(0.9, beta2s))
    base = copy.deepcopy(models[0]).to("meta")

    def loss_one(p, b, x, y):
        return torch.nn.functional.mse_loss(functional_call(base, (p, b), (x,)), y)

    g = torch.Generator().manual_seed(1)
    for _ in range(25):
        x, y = torch.randn(16, 6, generator=g), torch.randn(16, 2, generator=g)
        opt.zero_grad()
        losses = torch.vmap(loss_one, in_dims=(0, 0, None, None))(params, buffers, x, y)  # (K,)
        losses.sum().backward()
        opt.step()
        for model, ref_opt in zip(refs, ref_opts):
            ref_opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            ref_opt.step()
    for k, model in enumerate(refs):
        for name, q in model.named_parameters():
            torch.testing.assert_close(params[name][k], q, rtol=1e-5, atol=1e-6)
