"""Row k of PackedAdam evolves exactly as torch.optim.Adam with trial k's hyperparameters.

The torch twin of each backend is `TORCH_TWIN` (conftest): Adam(fused=True) for
"torch_fused", the for-loop Adam otherwise.
"""

from __future__ import annotations

import math

import pytest
import torch
from adam_cases import FOR_LOOP, PACKED_CONFIGS, TORCH_TWIN, parity_steps, split, tolerance

STEPS = parity_steps(200)


@pytest.mark.parametrize("mode", ["inplace", "assign", "noncontig"])
@pytest.mark.parametrize("config", PACKED_CONFIGS.values(), ids=PACKED_CONFIGS.keys())
def test_rows_match_separate_torch_adams(make_packed, config, mode):
    twins = make_packed(*split(config))
    for step in range(STEPS):
        twins.step(step, mode=mode)
    twins.assert_close()


def test_identical_trials_match_torch(make_packed):
    """All trials with one configuration (the one-call-per-group path)."""
    twins = make_packed([{"lr": 0.01, "betas": (0.8, 0.99)}] * 3, {"amsgrad": True})
    for step in range(STEPS):
        twins.step(step)
    twins.assert_close()


@pytest.mark.parametrize("config", PACKED_CONFIGS.values(), ids=PACKED_CONFIGS.keys())
def test_params_without_grad_are_skipped(make_packed, config):
    def skip(step, i):
        return (i == 0 and step < 7) or (i in (1, 4) and (step + i) % 3 == 0)

    twins = make_packed(*split(config))
    for step in range(60):
        twins.step(step, mode="inplace", skip=skip)
    twins.assert_close()


def test_inactive_trials_are_frozen_and_resume(make_packed):
    """Trial 1 frozen for steps 20..49, trial 2 frozen from the start (bias correction 0)."""
    twins = make_packed(*split(PACKED_CONFIGS["weight_decay+amsgrad"]))
    frozen = [p[2].detach().clone() for p in twins.params]
    for step in range(80):
        active = [True, not 20 <= step < 50, False]
        twins.opt.set_active(torch.tensor(active))
        assert twins.opt.active == tuple(active)
        twins.step(step, active=active)
    twins.assert_close()
    for p, before in zip(twins.params, frozen):
        torch.testing.assert_close(p[2], before, rtol=0, atol=0)
    assert all(torch.isfinite(p).all() for p in twins.params)
    assert twins.opt.trial_state_dict(2)["state"] == {}


def test_hyperparameters_changed_between_steps(make_packed):
    twins = make_packed(*split(PACKED_CONFIGS["decoupled"]))
    for step in range(40):
        if step == 15:
            twins.opt.set_hyperparameters(1, lr=0.05, betas=(0.7, 0.95))
            twins.opt.set_hyperparameters(2, eps=1e-8, weight_decay=0.3)
            twins.ref_opts[1].param_groups[0].update(lr=0.05, betas=(0.7, 0.95))
            twins.ref_opts[2].param_groups[0].update(eps=1e-8, weight_decay=0.3)
        twins.step(step)
    twins.assert_close()
    assert twins.opt.hyperparameters(1) == {"lr": 0.05, "betas": (0.7, 0.95), "eps": 1e-6, "weight_decay": 0.2}


def test_reset_trial_starts_a_new_trial_in_the_slot(make_packed, harness, backend_case):
    """A freed slot: reset_trial + new params + new hyperparameters == a fresh torch Adam."""
    twins = make_packed(*split(PACKED_CONFIGS["weight_decay"]))
    for step in range(30):
        twins.step(step)
    fresh = harness.make_params(seed=99)
    twins.opt.reset_trial(0)
    twins.opt.set_hyperparameters(0, lr=0.003, betas=(0.85, 0.98), weight_decay=0.0)
    with torch.no_grad():
        for p, q in zip(twins.params, fresh):
            p[0].copy_(q)
    assert twins.opt.trial_state_dict(0)["state"] == {}
    twins.refs[0] = harness.twin([p.contiguous() for p in fresh])
    twin_kind = TORCH_TWIN.get(backend_case[1], FOR_LOOP)
    twins.ref_opts[0] = torch.optim.Adam(twins.refs[0], lr=0.003, betas=(0.85, 0.98), **twin_kind)
    for step in range(30, 60):
        twins.step(step)
    twins.assert_close()


def test_large_odd_matrix(backend_case):
    """A 1823 x 781 weight, K=2 trials with (0.5, 0.9) and (0.99, 0.99999), 200 steps."""
    from workers.optim import PackedAdam

    device, backend = backend_case
    g = torch.Generator().manual_seed(0)
    init = torch.randn(2, 1823, 781, generator=g).to(device)
    pool = [torch.randn(2, 1823, 781, generator=g).to(device) for _ in range(3)]
    packed = torch.nn.Parameter(init.clone())
    refs = [torch.nn.Parameter(init[k].clone()) for k in range(2)]
    betas = [(0.5, 0.9), (0.99, 0.99999)]
    opt = PackedAdam([packed], lr=0.01, betas=tuple(zip(*betas)), weight_decay=0.01, backend=backend)
    ref_opts = [
        torch.optim.Adam([refs[k]], lr=0.01, betas=betas[k], weight_decay=0.01, **TORCH_TWIN.get(backend, FOR_LOOP))
        for k in range(2)
    ]
    for step in range(STEPS):
        grad = pool[step % 3] * math.cos(step)
        packed.grad = grad.transpose(1, 2).contiguous().transpose(1, 2)  # non-contiguous
        opt.step()
        for k in range(2):
            refs[k].grad = grad[k].clone()
            ref_opts[k].step()
    for k in range(2):
        torch.testing.assert_close(packed[k], refs[k], **tolerance(packed.device))
