"""FusedAdam.state_dict() is torch.optim.Adam's, and checkpoints load both ways."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

CONFIG = {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}


def train(harness, params, opt, steps, *, first_step=0, skip=lambda step, i: False):
    for step in range(first_step, first_step + steps):
        grads = [None if skip(step, i) else g for i, g in enumerate(harness.grads(step))]
        harness.feed(params, grads, "assign")
        opt.step()


def test_layout_matches_torch(harness, make_fused):
    ours = harness.make_params()
    ref = harness.twin(ours)
    opt, ref_opt = make_fused(ours, **CONFIG), torch.optim.Adam(ref, **CONFIG)
    assert opt.state_dict()["state"] == {} == ref_opt.state_dict()["state"]  # lazy, as torch
    train(harness, ours, opt, 3, skip=lambda step, i: i == 2)
    train(harness, ref, ref_opt, 3, skip=lambda step, i: i == 2)
    sd, ref_sd = opt.state_dict(), ref_opt.state_dict()
    assert sd["param_groups"] == ref_sd["param_groups"]
    assert list(sd["state"]) == list(ref_sd["state"]) == [0, 1, 3, 4, 5]
    for pid, ref_state in ref_sd["state"].items():
        state = sd["state"][pid]
        assert list(state) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        assert list(state) == list(ref_state)
        assert state["step"].dtype == torch.float32 and state["step"].shape == ()
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert state[key].shape == ref_state[key].shape
            assert state[key].dtype == ref_state[key].dtype


@pytest.mark.parametrize("direction", ["torch->fused", "fused->torch", "fused->fused"])
def test_checkpoint_round_trip(harness, make_fused, direction):
    """Train with one optimizer, checkpoint, resume with the other == uninterrupted torch."""
    skip = lambda step, i: i == 3 and step < 6  # param 3: no state at save
    base = harness.make_params()
    base_opt = torch.optim.Adam(base, foreach=False, **CONFIG)
    train(harness, base, base_opt, 20, skip=skip)

    first = harness.twin(harness.make_params())
    first_opt = (
        torch.optim.Adam(first, foreach=False, **CONFIG)
        if direction.startswith("torch")
        else make_fused(first, **CONFIG)
    )
    train(harness, first, first_opt, 5, skip=skip)
    checkpoint = copy.deepcopy(first_opt.state_dict())  # what torch.save/load gives

    second = harness.twin(first)
    # other hyperparameters on purpose: the checkpoint's must win
    if direction.endswith("torch"):
        second_opt = torch.optim.Adam(second, lr=0.5, foreach=False)
    else:
        second_opt = make_fused(second, lr=0.5)
        train(harness, second, second_opt, 3, first_step=100)  # stale state to overwrite
        with torch.no_grad():
            for p, q in zip(second, first):
                p.copy_(q)
    second_opt.load_state_dict(checkpoint)
    assert 3 not in checkpoint["state"]
    train(harness, second, second_opt, 15, first_step=5, skip=skip)
    harness.assert_state_close(second_opt, second, base_opt, base)


def test_load_keeps_flat_views(harness, make_fused):
    """After load_state_dict, state entries still live in shared flat buffers."""
    ref = harness.make_params()
    ref_opt = torch.optim.Adam(ref, foreach=False, **CONFIG)
    train(harness, ref, ref_opt, 2)
    ours = harness.twin(ref)
    opt = make_fused(ours, **CONFIG)
    opt.load_state_dict(copy.deepcopy(ref_opt.state_dict()))
    for key in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        storages = {opt.state[p][key].untyped_storage().data_ptr() for p in ours}
        assert len(storages) == 1, key
    train(harness, ours, opt, 3, first_step=2)
    train(harness, ref, ref_opt, 3, first_step=2)
    harness.assert_state_close(opt, ours, ref_opt, ref)


def test_load_rejects_wrong_shapes(harness, make_fused):
    a = [torch.nn.Parameter(torch.randn(4, 3, device=harness.device))]
    b = [torch.nn.Parameter(torch.randn(3, 4, device=harness.device))]
    opt_a, opt_b = torch.optim.Adam(a), make_fused(b)
    a[0].grad = torch.ones_like(a[0])
    opt_a.step()
    with pytest.raises(ValueError, match=r"must have the param's shape \(3, 4\)"):
        opt_b.load_state_dict(opt_a.state_dict())


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))], ids=["deepcopy", "pickle"])
def test_copied_optimizer_continues_identically(harness, make_fused, clone):
    ours = harness.make_params()
    opt = make_fused(ours, **CONFIG)
    train(harness, ours, opt, 4)
    opt2 = clone(opt)
    ours2 = opt2.param_groups[0]["params"]
    assert all(p is not q for p, q in zip(ours, ours2))
    train(harness, ours, opt, 4, first_step=4)
    train(harness, ours2, opt2, 4, first_step=4)
    for p, q in zip(ours, ours2):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert len({p.untyped_storage().data_ptr() for p in ours2}) == 1  # re-flattened
