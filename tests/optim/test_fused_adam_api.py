"""Public API of workers.optim: exports, constructor checks, errors."""

from __future__ import annotations

import pytest
import torch

import workers.optim
from workers.optim import FusedAdam, available_backends


def test_public_api_is_pinned():
    assert workers.optim.__all__ == ["FusedAdam", "PackedAdam", "available_backends"]
    assert issubclass(FusedAdam, torch.optim.Optimizer)


def test_param_group_keys_match_torch():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    ours = FusedAdam([p], decoupled_weight_decay=True).param_groups[0]
    ref = torch.optim.Adam([q], decoupled_weight_decay=True).param_groups[0]
    assert list(ours) == list(ref)
    assert {k: v for k, v in ours.items() if k != "params"} == {
        k: v for k, v in ref.items() if k != "params"
    }


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


def test_backend_table_prefers_triton_on_cuda_when_installed():
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
