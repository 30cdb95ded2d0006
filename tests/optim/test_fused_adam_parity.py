"""FusedAdam matches torch.optim.Adam(foreach=False) step for step, on every backend."""

from __future__ import annotations

import pytest
import torch
from adam_cases import parity_steps, tolerance

STEPS = parity_steps(200)

CONFIGS = {
    "defaults": {},
    "lr=0.01": {"lr": 0.01},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.1},
    "weight_decay+maximize": {"lr": 0.01, "weight_decay": 0.1, "maximize": True},
    "weight_decay+amsgrad": {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
    "adamw": {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "betas=(0.5, 0.9)": {"lr": 0.01, "betas": (0.5, 0.9)},
    "betas=(0.99, 0.99999)": {"lr": 0.01, "betas": (0.99, 0.99999)},
    "adamw+amsgrad+maximize": {
        "lr": 0.01,
        "betas": (0.8, 0.99),
        "eps": 1e-6,
        "weight_decay": 0.05,
        "decoupled_weight_decay": True,
        "amsgrad": True,
        "maximize": True,
    },
}


def run_twins(harness, make_fused, config, *, mode, skip=lambda step, i: False, steps=STEPS):
    """Step FusedAdam and torch's for-loop Adam on twin params with identical grads."""
    ours = harness.make_params()
    ref = harness.twin(ours)
    opt = make_fused(ours, **config)
    ref_opt = torch.optim.Adam(ref, foreach=False, **config)
    for step in range(steps):
        grads = [None if skip(step, i) else g for i, g in enumerate(harness.grads(step))]
        if mode == "inplace":
            opt.zero_grad()
        harness.feed(ours, grads, mode)
        harness.feed(ref, grads, "assign")
        opt.step()
        ref_opt.step()
    return opt, ours, ref_opt, ref


@pytest.mark.parametrize("mode", ["inplace", "assign", "noncontig"])
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_matches_torch_adam(harness, make_fused, config, mode):
    opt, ours, ref_opt, ref = run_twins(harness, make_fused, config, mode=mode)
    harness.assert_state_close(opt, ours, ref_opt, ref)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_params_without_grad_are_skipped(harness, make_fused, config):
    """Params with .grad None on some steps (one from the start) are skipped like torch."""

    def skip(step, i):
        return (i == 0 and step < 7) or (i in (1, 4) and (step + i) % 3 == 0) or (i == 2 and 40 <= step < 45)

    opt, ours, ref_opt, ref = run_twins(harness, make_fused, config, mode="inplace", skip=skip)
    harness.assert_state_close(opt, ours, ref_opt, ref)
    # the skipped params really did fall behind: step counts differ between params
    steps = {float(opt.state[p]["step"]) for p in ours}
    assert steps == {float(ref_opt.state[q]["step"]) for q in ref} and len(steps) > 1


def test_param_never_given_a_grad_has_no_state(harness, make_fused):
    opt, ours, ref_opt, ref = run_twins(harness, make_fused, {}, mode="inplace", skip=lambda step, i: i == 3, steps=5)
    harness.assert_state_close(opt, ours, ref_opt, ref)
    assert len(opt.state_dict()["state"]) == len(ours) - 1
    torch.testing.assert_close(ours[3], ref[3], rtol=0, atol=0)


def test_tensor_lr(harness, make_fused):
    config = {"lr": torch.tensor(0.01), "weight_decay": 0.1}
    opt, ours, ref_opt, ref = run_twins(harness, make_fused, config, mode="inplace", steps=20)
    harness.assert_state_close(opt, ours, ref_opt, ref)


def test_lr_changed_between_steps(harness, make_fused):
    """Group hyperparameters are re-read every step (LR schedulers write them)."""
    ours = harness.make_params()
    ref = harness.twin(ours)
    opt = make_fused(ours, lr=0.1)
    ref_opt = torch.optim.Adam(ref, lr=0.1, foreach=False)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=3, gamma=0.5)
    for step in range(12):
        harness.feed(ours, harness.grads(step), "assign")
        harness.feed(ref, harness.grads(step), "assign")
        opt.step(), ref_opt.step(), sched.step(), ref_sched.step()
    harness.assert_state_close(opt, ours, ref_opt, ref)
    assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"] < 0.1


def test_mixed_dtypes_in_one_group(make_fused, backend_case):
    """One group with float32 and float64 params: one flat buffer per dtype, same math."""
    device, _ = backend_case
    g = torch.Generator().manual_seed(0)
    data = [
        torch.randn(31, generator=g),
        torch.randn(5, 3, generator=g).double(),
        torch.randn((), generator=g),
        torch.randn(17, generator=g).double(),
    ]
    ours = [torch.nn.Parameter(d.to(device)) for d in data]
    ref = [torch.nn.Parameter(d.to(device)) for d in data]
    opt = make_fused(ours, lr=0.01, weight_decay=0.1)
    ref_opt = torch.optim.Adam(ref, lr=0.01, weight_decay=0.1, foreach=False)
    for _ in range(30):
        for p, q in zip(ours, ref):
            q.grad = torch.randn(q.shape, generator=g, dtype=q.dtype).to(device)
            p.grad = q.grad.clone()
        opt.step(), ref_opt.step()
    for p, q in zip(ours, ref):
        assert p.dtype == q.dtype
        torch.testing.assert_close(p, q, **tolerance(device))


def test_reference_backend_matches_torch_to_two_ulp(cpu_harness):
    """The reference follows _single_tensor_adam op for op: far tighter than the suite."""
    from workers.optim import FusedAdam

    harness = cpu_harness
    config = {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True}
    ours = harness.make_params()
    ref = harness.twin(ours)
    opt = FusedAdam(ours, backend="reference", **config)
    ref_opt = torch.optim.Adam(ref, foreach=False, **config)
    for step in range(STEPS):
        harness.feed(ours, harness.grads(step), "assign")
        harness.feed(ref, harness.grads(step), "assign")
        opt.step(), ref_opt.step()
    for p, q in zip(ours, ref):
        torch.testing.assert_close(p, q, rtol=2.5e-7, atol=1e-9)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_torch_fused_meets_the_tolerance(device_harness, config):
    """torch's own fused Adam stays within the device's tolerance of its for-loop Adam on
    these cases: the suite asks no more of our backends than torch's kernel meets."""
    harness = device_harness
    # contiguous: torch 2.13's CPU fused Adam is wrong on non-contiguous tensors
    ref = harness.twin([p.contiguous() for p in harness.make_params()])
    fused = harness.twin(ref)
    ref_opt = torch.optim.Adam(ref, foreach=False, **config)
    fused_opt = torch.optim.Adam(fused, fused=True, **config)
    for step in range(STEPS):
        for params, opt in ((ref, ref_opt), (fused, fused_opt)):
            harness.feed(params, harness.grads(step), "assign")
            opt.step()
    for i, (p, q) in enumerate(zip(fused, ref, strict=True)):
        torch.testing.assert_close(p, q, **tolerance(harness.device), msg=lambda m: f"param {i}: {m}")
