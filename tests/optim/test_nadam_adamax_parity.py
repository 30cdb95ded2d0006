"""FusedNAdam / FusedAdamax and PackedAdam(algorithm="nadam" | "adamax") match
torch.optim.NAdam / torch.optim.Adamax (for-loop, ``foreach=False``) on every backend.

Tolerance (`adam_cases.ALGORITHM_TOLERANCE`): what torch's own implementations meet against
each other, measured here by `test_torch_foreach_meets_the_tolerance` (torch 2.13, CPU,
the harness's shapes, lr 0.1, foreach vs for-loop after 120 steps): NAdam up to 9.5e-7
absolute on O(1) params (1.2e-6 after 200 steps), and up to 5e-4 relative on params near
0, so rtol 1e-5, atol 2e-6; AdaMax bitwise equal (0 difference), so the Adam suite's
CPU tolerance (rtol 1e-6, atol 1e-7). Measured for our backends on the same cases:
"reference" bitwise equal to the for-loop (it follows `_single_tensor_nadam` /
`_single_tensor_adamax` op for op), "torch_fused" (torch's foreach ops: torch has no
fused NAdam / AdaMax) at most 2.4e-7 from it after 50 steps, "triton" under
TRITON_INTERPRET=1 1.8e-7 (NAdam: mu_t from exp/log instead of pow) and 0 (AdaMax).
"""

from __future__ import annotations

import copy

import pytest
import torch
from adam_cases import TORCH_CLASSES, algorithm_tolerance, parity_steps, split

from workers.optim import FusedAdamax, FusedNAdam, PackedAdam

STEPS = parity_steps(120)
FUSED = {"nadam": FusedNAdam, "adamax": FusedAdamax}

CONFIGS = {
    "nadam": {
        "defaults": {},
        "lr=0.1": {"lr": 0.1},
        "weight_decay+maximize": {"lr": 0.1, "weight_decay": 0.1, "maximize": True},
        "nadamw": {"lr": 0.1, "weight_decay": 0.1, "decoupled_weight_decay": True},
        "betas+momentum_decay": {"lr": 0.1, "betas": (0.5, 0.9), "eps": 1e-6, "momentum_decay": 0.02},
    },
    "adamax": {
        "defaults": {},
        "lr=0.1": {"lr": 0.1},
        "weight_decay+maximize": {"lr": 0.1, "weight_decay": 0.1, "maximize": True},
        "betas": {"lr": 0.1, "betas": (0.5, 0.9), "eps": 1e-6},
    },
}
CASES = [pytest.param(a, c, id=f"{a}-{name}") for a, cs in CONFIGS.items() for name, c in cs.items()]


def run_twins(
    harness, algorithm, backend, config, *, mode="assign", steps=STEPS, skip=lambda step, i: False, twin=None
):
    """Step ours and torch's for-loop optimizer on twin params with identical grads."""
    ours = harness.make_params()
    ref = harness.twin(ours)
    opt = FUSED[algorithm](ours, backend=backend, **config)
    ref_opt = TORCH_CLASSES[algorithm](ref, foreach=False, **config)
    for step in range(steps):
        grads = [None if skip(step, i) else g for i, g in enumerate(harness.grads(step))]
        if mode == "inplace":
            opt.zero_grad()
        harness.feed(ours, grads, mode)
        harness.feed(ref, grads, "assign")
        opt.step()
        ref_opt.step()
    return opt, ours, ref_opt, ref


def assert_state_close(algorithm, harness, opt, ours, ref_opt, ref):
    tol = algorithm_tolerance(algorithm, harness.device)
    for i, (p, q) in enumerate(zip(ours, ref, strict=True)):
        torch.testing.assert_close(p, q, **tol, msg=lambda m: f"param {i}: {m}")
        s, r = opt.state.get(p, {}), ref_opt.state.get(q, {})
        assert list(s) == list(r), f"param {i}: state keys {list(s)} != {list(r)}"
        for key in r:
            torch.testing.assert_close(s[key].cpu(), r[key].cpu(), **tol, msg=lambda m: f"param {i} state {key!r}: {m}")


@pytest.mark.parametrize("mode", ["inplace", "noncontig"])
@pytest.mark.parametrize(("algorithm", "config"), CASES)
def test_fused_matches_torch(harness, backend_case, algorithm, config, mode):
    opt, ours, ref_opt, ref = run_twins(harness, algorithm, backend_case[1], config, mode=mode)
    assert_state_close(algorithm, harness, opt, ours, ref_opt, ref)


@pytest.mark.parametrize("algorithm", ["nadam", "adamax"])
def test_params_without_grad_are_skipped(harness, backend_case, algorithm):
    """Skipped params fall behind in step (and NAdam's mu_product) exactly as torch's."""

    def skip(step, i):
        return (i == 0 and step < 7) or (i in (1, 4) and (step + i) % 3 == 0)

    config = {"lr": 0.05, "weight_decay": 0.1}
    opt, ours, ref_opt, ref = run_twins(
        harness, algorithm, backend_case[1], config, mode="inplace", skip=skip, steps=60
    )
    assert_state_close(algorithm, harness, opt, ours, ref_opt, ref)
    assert len({float(opt.state[p]["step"]) for p in ours}) > 1


def test_nadam_mu_product_splits_equal_step_counts(cpu_harness):
    """Two params with equal step counts but different mu_products (beta1 changed while
    one was skipped) are updated with their own mu_product, as torch does."""
    harness = cpu_harness
    ours = harness.make_params()
    ref = harness.twin(ours)
    opt = FusedNAdam(ours, lr=0.05, backend="reference")
    ref_opt = torch.optim.NAdam(ref, lr=0.05, foreach=False)
    for step in range(6):
        for o in (opt, ref_opt):
            o.param_groups[0]["betas"] = (0.9 if step < 3 else 0.6, 0.999)
        skip = (lambda i: i == 1) if step == 2 else (lambda i: i == 2) if step == 4 else (lambda i: False)
        grads = [None if skip(i) else g for i, g in enumerate(harness.grads(step))]
        harness.feed(ours, grads, "assign")
        harness.feed(ref, grads, "assign")
        opt.step(), ref_opt.step()
    assert float(opt.state[ours[1]]["step"]) == float(opt.state[ours[2]]["step"])
    assert float(opt.state[ours[1]]["mu_product"]) != float(opt.state[ours[2]]["mu_product"])
    assert_state_close("nadam", harness, opt, ours, ref_opt, ref)


@pytest.mark.parametrize(("algorithm", "config"), CASES)
def test_torch_foreach_meets_the_tolerance(device_harness, algorithm, config):
    """torch's foreach NAdam / Adamax stay within `ALGORITHM_TOLERANCE` of their for-loop
    versions (the measurement behind it): the suite asks no more of our backends."""
    harness = device_harness
    ref = harness.twin([p.contiguous() for p in harness.make_params()])
    other = harness.twin(ref)
    cls = TORCH_CLASSES[algorithm]
    ref_opt, other_opt = cls(ref, foreach=False, **config), cls(other, foreach=True, **config)
    for step in range(STEPS):
        for params, opt in ((ref, ref_opt), (other, other_opt)):
            harness.feed(params, harness.grads(step), "assign")
            opt.step()
    for i, (p, q) in enumerate(zip(other, ref, strict=True)):
        torch.testing.assert_close(
            p, q, **algorithm_tolerance(algorithm, harness.device), msg=lambda m: f"param {i}: {m}"
        )


@pytest.mark.parametrize("algorithm", ["nadam", "adamax"])
def test_defaults_and_group_keys_are_torchs(algorithm):
    import inspect

    ours = inspect.signature(FUSED[algorithm]).parameters
    theirs = inspect.signature(TORCH_CLASSES[algorithm]).parameters
    for name in ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize"):
        if name in theirs:
            assert ours[name].default == theirs[name].default, name
            assert ours[name].kind == theirs[name].kind, name
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    assert FUSED[algorithm]([p]).param_groups[0] == TORCH_CLASSES[algorithm]([q]).param_groups[0] | {"params": [p]}


@pytest.mark.parametrize(
    ("algorithm", "kwargs", "match"),
    [
        ("nadam", {"momentum_decay": -1.0}, "Invalid momentum_decay value: -1.0"),
        ("nadam", {"lr": -1.0}, "Invalid learning rate"),
        ("adamax", {"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1"),
        ("adamax", {"eps": -1.0}, "Invalid epsilon value"),
    ],
)
def test_invalid_arguments_raise_torchs_errors(algorithm, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TORCH_CLASSES[algorithm]([torch.nn.Parameter(torch.ones(2))], **kwargs)
    with pytest.raises(ValueError, match=match):
        FUSED[algorithm]([torch.nn.Parameter(torch.ones(2))], **kwargs)


# ---- state_dict both ways ------------------------------------------------------------
SD_CONFIG = {
    "nadam": {"lr": 0.05, "weight_decay": 0.1, "momentum_decay": 0.01},
    "adamax": {"lr": 0.05, "weight_decay": 0.1},
}


def train(harness, params, opt, steps, *, first_step=0, skip=lambda step, i: False):
    for step in range(first_step, first_step + steps):
        grads = [None if skip(step, i) else g for i, g in enumerate(harness.grads(step))]
        harness.feed(params, grads, "assign")
        opt.step()


@pytest.mark.parametrize("algorithm", ["nadam", "adamax"])
def test_state_dict_layout_matches_torch(harness, backend_case, algorithm):
    ours = harness.make_params()
    ref = harness.twin(ours)
    config = SD_CONFIG[algorithm]
    opt = FUSED[algorithm](ours, backend=backend_case[1], **config)
    ref_opt = TORCH_CLASSES[algorithm](ref, **config)
    train(harness, ours, opt, 3, skip=lambda step, i: i == 2)
    train(harness, ref, ref_opt, 3, skip=lambda step, i: i == 2)
    sd, ref_sd = opt.state_dict(), ref_opt.state_dict()
    assert sd["param_groups"] == ref_sd["param_groups"]
    assert list(sd["state"]) == list(ref_sd["state"]) == [0, 1, 3, 4, 5]
    for pid, ref_state in ref_sd["state"].items():
        assert list(sd["state"][pid]) == list(ref_state)
        for key, value in ref_state.items():
            assert sd["state"][pid][key].shape == value.shape, key
            assert sd["state"][pid][key].dtype == value.dtype, key


@pytest.mark.parametrize("direction", ["torch->fused", "fused->torch", "fused->fused"])
@pytest.mark.parametrize("algorithm", ["nadam", "adamax"])
def test_checkpoint_round_trip(harness, backend_case, algorithm, direction):
    """Train with one optimizer, checkpoint, resume with the other == uninterrupted torch."""
    skip = lambda step, i: i == 3 and step < 6  # param 3: no state at save
    config, cls, fused = SD_CONFIG[algorithm], TORCH_CLASSES[algorithm], FUSED[algorithm]
    base = harness.make_params()
    base_opt = cls(base, foreach=False, **config)
    train(harness, base, base_opt, 20, skip=skip)

    first = harness.twin(harness.make_params())
    first_opt = (
        cls(first, foreach=False, **config)
        if direction.startswith("torch")
        else fused(first, backend=backend_case[1], **config)
    )
    train(harness, first, first_opt, 5, skip=skip)
    checkpoint = copy.deepcopy(first_opt.state_dict())

    second = harness.twin(first)
    if direction.endswith("torch"):
        second_opt = cls(second, lr=0.5, foreach=False)
    else:
        second_opt = fused(second, lr=0.5, backend=backend_case[1])
        train(harness, second, second_opt, 3, first_step=100)  # stale state to overwrite
        with torch.no_grad():
            for p, q in zip(second, first):
                p.copy_(q)
    second_opt.load_state_dict(checkpoint)
    assert 3 not in checkpoint["state"]
    train(harness, second, second_opt, 15, first_step=5, skip=skip)
    assert_state_close(algorithm, harness, second_opt, second, base_opt, base)


@pytest.mark.parametrize("algorithm", ["nadam", "adamax"])
def test_pickled_optimizer_continues_identically(cpu_harness, algorithm):
    import pickle

    harness = cpu_harness
    ours = harness.make_params()
    opt = FUSED[algorithm](ours, **SD_CONFIG[algorithm])
    train(harness, ours, opt, 4)
    opt2 = pickle.loads(pickle.dumps(opt))
    ours2 = opt2.param_groups[0]["params"]
    train(harness, ours, opt, 4, first_step=4)
    train(harness, ours2, opt2, 4, first_step=4)
    for p, q in zip(ours, ours2):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("algorithm", ["nadam", "adamax"])
def test_diagnostics_are_finite(cpu_harness, algorithm):
    harness = cpu_harness
    ours = harness.make_params()
    opt = FUSED[algorithm](ours, lr=0.01)
    train(harness, ours, opt, 5)
    diagnostics = opt.diagnostics()
    assert set(diagnostics) == {"eps_dominated_frac", "update_rms_ratio", "nonfinite"}
    assert 0 <= diagnostics["eps_dominated_frac"] < 0.5
    assert 0 < diagnostics["update_rms_ratio"] < 1 and diagnostics["nonfinite"] == 0


# ---- PackedAdam(algorithm=...) -------------------------------------------------------
PACKED = {
    "nadam": {"lr": 0.05, "weight_decay": 0.1},
    "nadamw+maximize": {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
    "adamax": {"lr": 0.05, "weight_decay": 0.1, "maximize": True},
}


def packed_twins(make_packed, harness, name):
    """`PackedTwins` of K=3 trials of `PACKED[name]` (trial 1 with NAdam's momentum_decay 0.02)."""
    algorithm = name.split("+")[0].removesuffix("w")
    trials, shared = split(PACKED[name])
    if algorithm == "nadam":
        trials[1] = {**trials[1], "momentum_decay": 0.02}
    return make_packed(trials, shared, algorithm=algorithm, tol=algorithm_tolerance(algorithm, harness.device))


@pytest.mark.parametrize("mode", ["assign", "noncontig"])
@pytest.mark.parametrize("name", PACKED)
def test_packed_rows_match_separate_torch_optimizers(make_packed, harness, name, mode):
    twins = packed_twins(make_packed, harness, name)
    for step in range(STEPS):
        twins.step(step, mode=mode)
    twins.assert_close()


@pytest.mark.parametrize("name", ["nadam", "adamax"])
def test_packed_skipped_params_and_frozen_trials(make_packed, harness, name):
    """Params without grads on some steps, trial 1 frozen for steps 10..29, trial 2 from
    the start: rows still match their torch optimizers."""
    twins = packed_twins(make_packed, harness, name)

    def skip(step, i):
        return (i == 0 and step < 7) or (i in (1, 4) and (step + i) % 3 == 0)

    for step in range(50):
        active = [True, not 10 <= step < 30, False]
        twins.opt.set_active(active)
        twins.step(step, mode="inplace", skip=skip, active=active)
    twins.assert_close()
    assert twins.opt.trial_state_dict(2)["state"] == {}


@pytest.mark.parametrize("name", ["nadam", "adamax"])
def test_packed_state_dict_round_trip_and_trial_state_loads_into_torch(make_packed, harness, backend_case, name):
    twins = packed_twins(make_packed, harness, name)
    for step in range(10):
        twins.step(step)
    checkpoint = copy.deepcopy(twins.opt.state_dict())
    assert checkpoint["algorithm"] == twins.opt.algorithm == name
    params = [torch.nn.Parameter(p.detach().clone()) for p in twins.params]
    restored = PackedAdam(params, backend=backend_case[1], algorithm=name)
    restored.load_state_dict(checkpoint)
    # trial 1's state continues in a torch optimizer exactly as its row does
    row = [torch.nn.Parameter(p[1].detach().clone()) for p in twins.params]
    torch_opt = TORCH_CLASSES[name](row, foreach=False)
    torch_opt.load_state_dict(twins.opt.trial_state_dict(1))
    for step in range(10, 20):
        grads = twins.grads(step)
        harness.feed(params, grads, "assign")
        harness.feed(row, [g[1] for g in grads], "assign")
        restored.step(), torch_opt.step()
        twins.step(step)
    tol = algorithm_tolerance(name, harness.device)
    for p, q, r in zip(params, twins.params, row, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
        torch.testing.assert_close(p[1], r, **tol)
    with pytest.raises(ValueError, match="checkpoint is of a"):
        PackedAdam([torch.nn.Parameter(p.detach().clone()) for p in twins.params], algorithm="adam").load_state_dict(
            checkpoint
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"algorithm": "sgd"}, "algorithm must be one of"),
        ({"algorithm": "nadam", "amsgrad": True}, "amsgrad is an option of Adam only"),
        ({"algorithm": "adamax", "decoupled_weight_decay": True}, "no decoupled weight decay"),
        ({"algorithm": "adam", "momentum_decay": 0.1}, "momentum_decay is an option of NAdam"),
        ({"algorithm": "nadam", "momentum_decay": [0.1, -1.0, 0.1]}, "trial 1: Invalid momentum_decay value"),
    ],
)
def test_packed_invalid_algorithm_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PackedAdam([torch.nn.Parameter(torch.zeros(3, 2))], **kwargs)


def test_packed_defaults_follow_the_algorithm():
    params = [torch.nn.Parameter(torch.zeros(3, 2))]
    assert PackedAdam(params).hyperparameters(0)["lr"] == 1e-3
    nadam = PackedAdam([torch.nn.Parameter(torch.zeros(3, 2))], algorithm="nadam", momentum_decay=[0.004, 0.01, 0.02])
    assert nadam.hyperparameters(2) == {
        "lr": 2e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum_decay": 0.02,
    }
    nadam.set_hyperparameters(0, momentum_decay=0.03)
    assert nadam.hyperparameters(0)["momentum_decay"] == 0.03
    adamax = PackedAdam([torch.nn.Parameter(torch.zeros(3, 2))], algorithm="adamax")
    assert adamax.hyperparameters(0)["lr"] == 2e-3 and adamax.algorithm == "adamax"
