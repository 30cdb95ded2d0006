"""Public API of workers.optim: exports, constructor checks, errors."""

from __future__ import annotations

import pytest
import torch

import workers.optim
from workers.optim import FusedAdam, auto_backend, available_backends


def test_public_api_is_pinned():
    assert workers.optim.__all__ == [
        "LAUNCH",
        "FlatLayout",
        "FlatParams",
        "FusedAdam",
        "FusedAdamax",
        "FusedNAdam",
        "LaunchConfig",
        "PackedAdam",
        "auto_backend",
        "available_backends",
        "launch_config",
    ]
    assert issubclass(FusedAdam, torch.optim.Optimizer)
    assert issubclass(workers.optim.FusedNAdam, torch.optim.Optimizer)
    assert issubclass(workers.optim.FusedAdamax, torch.optim.Optimizer)


def test_param_group_keys_match_torch():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    ours = FusedAdam([p], decoupled_weight_decay=True).param_groups[0]
    ref = torch.optim.Adam([q], decoupled_weight_decay=True).param_groups[0]
    assert list(ours) == list(ref)
    assert {k: v for k, v in ours.items() if k != "params"} == {k: v for k, v in ref.items() if k != "params"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": -1.0},
        {"eps": -1e-8},
        {"betas": (1.0, 0.999)},
        {"betas": (0.9, -0.1)},
        {"weight_decay": -0.1},
        {"betas": (0.9, torch.tensor(0.999))},
        {"lr": torch.tensor([0.1, 0.2])},
    ],
    ids=["lr", "eps", "beta1", "beta2", "weight_decay", "mixed-betas", "lr-2-elements"],
)
def test_invalid_arguments_raise_torchs_error(kwargs):
    with pytest.raises(ValueError) as ref:
        torch.optim.Adam([torch.nn.Parameter(torch.ones(2))], **kwargs)
    with pytest.raises(ValueError) as ours:
        FusedAdam([torch.nn.Parameter(torch.ones(2))], **kwargs)
    assert str(ours.value) == str(ref.value)


def test_empty_params_raise():
    with pytest.raises(ValueError, match="empty parameter list"):
        FusedAdam([])


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match=r"backend must be one of .*'reference'"):
        FusedAdam([torch.nn.Parameter(torch.ones(2))], backend="triton-ish")


def test_non_real_float_param_raises():
    with pytest.raises(TypeError, match="complex64"):
        FusedAdam([torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))])


def test_duplicate_param_raises():
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="listed twice"):
        FusedAdam([p, p])


def test_sparse_grad_raises():
    p = torch.nn.Parameter(torch.ones(3))
    opt = FusedAdam([p])
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()


def test_available_backends():
    assert available_backends("cpu")[0] == "torch_fused"
    assert "reference" in available_backends("cpu")
    assert available_backends("some_new_device") == ("reference",)


def test_construction_keeps_values_and_makes_params_contiguous():
    base = torch.randn(5, 7)
    p = torch.nn.Parameter(base.t())  # non-contiguous input
    q = torch.nn.Parameter(torch.randn(()))
    FusedAdam([p, q])
    assert p.is_contiguous() and p.shape == (7, 5)
    torch.testing.assert_close(p.detach(), base.t(), rtol=0, atol=0)
    assert p.untyped_storage().data_ptr() == q.untyped_storage().data_ptr()


def test_backend_table_lists_triton_on_cuda_when_installed():
    import importlib.util
    import os

    has_triton = importlib.util.find_spec("triton") is not None
    cuda = available_backends("cuda")
    assert cuda == (("triton",) if has_triton else ()) + ("torch_fused", "reference")
    interpreting = has_triton and os.environ.get("TRITON_INTERPRET") == "1"
    cpu = available_backends("cpu")
    assert cpu == ("torch_fused", "reference") + (("triton",) if interpreting else ())
    assert available_backends("mps") == ("reference",)
    if not interpreting:
        with pytest.raises(ValueError, match="not available for 'cpu' params"):
            FusedAdam([torch.nn.Parameter(torch.ones(2))], backend="triton")


ALL_CUDA = ("triton", "torch_fused", "reference")


def test_auto_on_cuda_is_triton_for_packs_and_torch_fused_for_one_trial():
    # Measured on an H200 (workers/optim/_backends.py, TRITON_VERIFIED_ON_GPU): the Triton
    # kernel wins for K trials; for one trial its launch costs more host time per step.
    assert auto_backend("cuda", ALL_CUDA) == "torch_fused"
    assert auto_backend("cuda", ALL_CUDA, packed=True) == "triton"
    assert auto_backend("cuda", ("torch_fused", "reference"), packed=True) == "torch_fused"  # no triton


def test_auto_rule_while_triton_is_unverified():
    assert auto_backend("cuda", ALL_CUDA, packed=True, triton_verified=False) == "torch_fused"
    assert auto_backend("cuda", ALL_CUDA, triton_verified=False) == "torch_fused"


@pytest.mark.parametrize("verified", [False, True])
def test_auto_rule_elsewhere_takes_the_first_available(verified):
    cpu = ("torch_fused", "reference", "triton")  # triton: under TRITON_INTERPRET=1
    assert auto_backend("cpu", cpu, triton_verified=verified) == "torch_fused"
    assert auto_backend("cpu", triton_verified=verified) == "torch_fused"
    assert auto_backend("mps", ("reference",), triton_verified=verified) == "reference"


def test_auto_rule_refuses_triton_where_the_rule_passes_it_over():
    with pytest.raises(ValueError, match="other than 'triton'.*pass a backend explicitly"):
        auto_backend("cuda", ("triton",))
    with pytest.raises(ValueError, match="other than 'triton'"):
        auto_backend("cuda", ("triton",), packed=True, triton_verified=False)


def test_optimizers_resolve_auto_through_the_rule():
    """White-box: on CPU every backend steps bitwise alike, so which one ``auto`` resolves to is
    not observable through the optimizers; the update functions are compared instead."""
    from workers.optim._backends import resolve_backend, resolve_packed_backend

    for device_type in ("cpu", "cuda"):  # no CUDA tensor needed to resolve a name
        chosen, chosen_packed = auto_backend(device_type), auto_backend(device_type, packed=True)
        assert resolve_backend("auto", device_type) is resolve_backend(chosen, device_type)
        assert resolve_packed_backend("auto", device_type) is resolve_packed_backend(chosen_packed, device_type)


def test_fused_adam_auto_on_cpu_steps_as_torch_fused():
    steps = {}
    for backend in ("auto", "torch_fused"):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(37, 13))
        opt = FusedAdam([p], lr=0.01, weight_decay=0.1, backend=backend)
        for i in range(3):
            p.grad = torch.sin(torch.arange(p.numel(), dtype=torch.float32) + i).view_as(p)
            opt.step()
        steps[backend] = p.detach().clone()
    torch.testing.assert_close(steps["auto"], steps["torch_fused"], rtol=0, atol=0)
