"""FusedAdam in a real loop: backward() writes into the flat grad buffer, results match torch."""

from __future__ import annotations

import copy

import pytest
import torch
from adam_cases import tolerance

from workers.optim import FusedAdam


def tiny_model(device: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 33), torch.nn.Tanh(), torch.nn.Linear(33, 3)).to(device)


def batches(device: str, n: int):
    g = torch.Generator().manual_seed(1)
    for _ in range(n):
        x, y = torch.randn(16, 10, generator=g), torch.randn(16, 3, generator=g)
        yield x.to(device), y.to(device)


def fit(model, opt, device, *, steps=40, zero_grad=None):
    for x, y in batches(device, steps):
        (zero_grad or opt.zero_grad)()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    return model


@pytest.mark.parametrize("how", ["opt.zero_grad()", "opt.zero_grad(False)", "model.zero_grad()"])
def test_training_matches_torch(backend_case, how):
    device, backend = backend_case
    ours, ref = tiny_model(device), tiny_model(device)
    opt = FusedAdam(ours.parameters(), lr=0.01, weight_decay=0.01, backend=backend)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01, weight_decay=0.01, foreach=False)
    zero_grad = {
        "opt.zero_grad()": opt.zero_grad,
        "opt.zero_grad(False)": lambda: opt.zero_grad(set_to_none=False),
        "model.zero_grad()": ours.zero_grad,  # sets .grad None: autograd allocates anew
    }[how]
    fit(ours, opt, device, zero_grad=zero_grad)
    fit(ref, ref_opt, device)
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, **tolerance(device))


def test_backward_accumulates_into_flat_buffer(backend_case):
    device, backend = backend_case
    model = tiny_model(device)
    ref = copy.deepcopy(model)
    opt = FusedAdam(model.parameters(), backend=backend)
    params = list(model.parameters())
    assert len({p.untyped_storage().data_ptr() for p in params}) == 1  # one param buffer
    opt.zero_grad()
    grads = [p.grad for p in params]
    assert all(g is not None and not g.any() for g in grads)
    assert len({g.untyped_storage().data_ptr() for g in grads}) == 1  # one grad buffer
    x, y = next(batches(device, 1))
    torch.nn.functional.mse_loss(model(x), y).backward()
    torch.nn.functional.mse_loss(ref(x), y).backward()
    for p, g, q in zip(params, grads, ref.parameters()):
        assert p.grad is g  # accumulated in place, not reallocated
        torch.testing.assert_close(p.grad, q.grad)


def test_frozen_param_is_left_alone(backend_case):
    """A requires_grad=False param gets no grad from zero_grad()/backward(), so no step."""
    device, backend = backend_case
    model = tiny_model(device)
    model[0].bias.requires_grad_(False)
    frozen = model[0].bias.detach().clone()
    opt = FusedAdam(model.parameters(), lr=0.1, weight_decay=0.5, backend=backend)
    fit(model, opt, device, steps=5)
    assert model[0].bias.grad is None
    assert model[0].bias not in opt.state
    torch.testing.assert_close(model[0].bias.detach(), frozen, rtol=0, atol=0)


def test_add_param_group_mid_training(backend_case):
    device, backend = backend_case
    ours, ref = tiny_model(device), tiny_model(device)
    opt = FusedAdam(ours[0].parameters(), lr=0.01, backend=backend)
    ref_opt = torch.optim.Adam(ref[0].parameters(), lr=0.01, foreach=False)
    for model, o in ((ours, opt), (ref, ref_opt)):
        model[2].requires_grad_(False)
        fit(model, o, device, steps=5)
        model[2].requires_grad_(True)
        o.add_param_group({"params": model[2].parameters(), "lr": 0.05, "amsgrad": True})
        fit(model, o, device, steps=10)
    assert opt.param_groups[1]["lr"] == 0.05 and opt.param_groups[1]["eps"] == 1e-8
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, **tolerance(device))


def test_closure_loss_is_returned(backend_case):
    device, backend = backend_case
    model = tiny_model(device)
    opt = FusedAdam(model.parameters(), backend=backend)
    x, y = next(batches(device, 1))

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    first = opt.step(closure)
    assert first.requires_grad and opt.step(closure).item() < first.detach().item()
