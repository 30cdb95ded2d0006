"""PackedAdam checkpoints: its own state_dict round trip, and per-trial torch.optim.Adam states."""

from __future__ import annotations

import copy

import torch
from adam_cases import FOR_LOOP, PACKED_CONFIGS, TORCH_TWIN, split, tolerance

from workers.optim import FusedAdam, PackedAdam


def test_state_dict_layout(make_packed):
    twins = make_packed(*split(PACKED_CONFIGS["weight_decay+amsgrad"]))
    skip = lambda step, i: i == 3  # param 3 never gets a grad: no state
    for step in range(3):
        twins.step(step, skip=skip)
    sd = twins.opt.state_dict()
    assert sorted(sd) == ["algorithm", "amsgrad", "decoupled_weight_decay", "maximize", "state", "trials"]
    assert sd["algorithm"] == "adam"
    assert sd["amsgrad"] is True and sd["maximize"] is False
    assert sd["trials"] == {
        "lr": [0.01, 0.01, 0.02],
        "beta1": [0.9, 0.5, 0.99],
        "beta2": [0.999, 0.9, 0.99999],
        "eps": [1e-8, 1e-6, 1e-3],
        "weight_decay": [0.1, 0.2, 0.0],
        "active": [True] * 3,
    }
    assert list(sd["state"]) == [0, 1, 2, 4, 5]
    for i, state in sd["state"].items():
        assert list(state) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        assert state["step"].dtype == torch.float32 and state["step"].tolist() == [3.0] * 3
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert state[key].shape == twins.params[i].shape


def test_round_trip_continues_identically(make_packed, harness, backend_case):
    twins = make_packed(*split(PACKED_CONFIGS["decoupled"]))
    for step in range(10):
        twins.step(step)
    twins.opt.set_active([True, False, True])
    checkpoint = copy.deepcopy(twins.opt.state_dict())  # what torch.save/load gives

    params = [torch.nn.Parameter(p.detach().clone()) for p in twins.params]
    restored = PackedAdam(params, lr=0.5, backend=backend_case[1])
    restored.load_state_dict(checkpoint)
    assert restored.active == (True, False, True)
    assert restored.hyperparameters(1) == twins.opt.hyperparameters(1)
    for step in range(10, 20):
        grads = twins.grads(step)
        for ps in (twins.params, params):
            harness.feed(ps, grads, "assign")
        twins.opt.step()
        restored.step()
    for p, q in zip(twins.params, params):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_trial_state_loads_into_torch_and_continues(make_packed, backend_case):
    """Slice trial 1 out after 15 steps; a torch Adam resumed from it == the packed row."""
    twins = make_packed(*split(PACKED_CONFIGS["weight_decay+amsgrad"]))
    for step in range(15):
        twins.step(step)
    resumed = [torch.nn.Parameter(p[1].detach().clone()) for p in twins.params]
    opt = torch.optim.Adam(resumed, lr=0.5, **TORCH_TWIN.get(backend_case[1], FOR_LOOP))
    opt.load_state_dict(twins.opt.trial_state_dict(1))
    assert opt.param_groups[0]["betas"] == (0.5, 0.9) and opt.param_groups[0]["amsgrad"]
    for step in range(15, 30):
        grads = twins.grads(step)
        twins.harness.feed(twins.params, grads, "assign")
        twins.opt.step()
        twins.harness.feed(resumed, [g[1] for g in grads], "assign")
        opt.step()
    for p, q in zip(twins.params, resumed):
        torch.testing.assert_close(p[1], q, **tolerance(q.device))


def test_trial_state_loads_into_fused_adam():
    stacked = [torch.nn.Parameter(torch.randn(2, 5, 3)), torch.nn.Parameter(torch.randn(2, 4))]
    packed = PackedAdam(stacked, lr=[0.01, 0.02])
    for _ in range(3):
        for p in stacked:
            p.grad = torch.randn_like(p)
        packed.step()
    rows = [torch.nn.Parameter(p[0].detach().clone()) for p in stacked]
    fused = FusedAdam(rows)
    fused.load_state_dict(packed.trial_state_dict(0))
    assert fused.param_groups[0]["lr"] == 0.01
    torch.testing.assert_close(fused.state[rows[1]]["exp_avg_sq"], packed.state_dict()["state"][1]["exp_avg_sq"][0])
