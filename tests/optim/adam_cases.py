"""Adam configurations, twins and the devices under test, shared by the optimizer tests
(importable: conftest is not)."""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "ADAMTUNE_TEST_DEVICE"
_DEVICE_CHOICES = ("cpu", "cuda")


def devices_under_test() -> list[str]:
    """The devices the backend-parametrized tests run on, from ``ADAMTUNE_TEST_DEVICE``.

    Unset or empty: "cpu", plus "cuda" where torch sees a GPU. "cpu" or "cuda": that
    device only (bench/gpu_check.sh sets "cuda"; on a machine without CUDA those cases
    are skipped, saying why).

    Raises:
        ValueError: for any other value.
    """
    value = os.environ.get(DEVICE_ENV, "")
    if value == "":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if value not in _DEVICE_CHOICES:
        raise ValueError(f"{DEVICE_ENV} must be one of {_DEVICE_CHOICES} or unset, but got {DEVICE_ENV}={value!r}")
    return [value]


# Triton's interpreter (TRITON_INTERPRET=1, test_triton_interpret.py) runs each kernel program
# in numpy, ~1 ms a launch: its parity cases take this many steps instead of the suite's 120-200.
# Each step runs the same arithmetic, bias correction included (1 - beta^t moves most over the
# first steps); the long-run drift is the compiled backends' check, at full length on CPU and
# on the GPU by bench/gpu_check.sh.
INTERPRETER_STEPS = 40


def parity_steps(steps: int) -> int:
    """How many optimizer steps a parity case runs: ``steps``, or at most
    :data:`INTERPRETER_STEPS` under Triton's interpreter."""
    return min(steps, INTERPRETER_STEPS) if os.environ.get("TRITON_INTERPRET") == "1" else steps


def device_unavailable(device: str) -> str | None:
    """Why tests cannot run on `device` here, or None if they can."""
    if device == "cuda" and not torch.cuda.is_available():
        return (
            f"{DEVICE_ENV}=cuda, but torch {torch.__version__} sees no CUDA device "
            "(run on a GPU machine with a CUDA build of torch)"
        )
    return None


# fp32 parity tolerance against torch.optim.Adam(foreach=False), per device: no tighter than
# torch's own fused kernel meets there (test_torch_fused_meets_the_tolerance). On CUDA the
# GPU's fused multiply-adds and division order put torch's fused kernel, and ours, a few
# fp32 ulps from the for-loop after 200 steps (bench/gpu_check.sh on an H200, torch
# 2.11+cu130: up to 3.8e-6 absolute on O(1) params), against 1e-7 on the CPU.
TOLERANCE: dict[str, dict[str, float]] = {
    "cpu": {"rtol": 1e-6, "atol": 1e-7},
    "cuda": {"rtol": 1e-5, "atol": 1e-5},
}


def tolerance(device: str | torch.device) -> dict[str, float]:
    """`rtol`/`atol` keyword arguments of torch.testing.assert_close for fp32 parity on `device`."""
    return TOLERANCE[torch.device(device).type]


# The torch.optim.Adam each backend is compared with: "torch_fused" runs torch's own
# fused kernel (so its twin is Adam(fused=True), which differs from the for-loop Adam by
# more than the CPU tolerance at lr=0.03, betas=(0.5, 0.9) after 200 steps); the others follow
# _single_tensor_adam operation for operation.
TORCH_TWIN: dict[str, dict] = {"torch_fused": {"fused": True}}
TORCH_CLASSES = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam, "adamax": torch.optim.Adamax}
FOR_LOOP: dict = {"foreach": False}


# Shared flags plus the base trial; trials 1 and 2 vary every hyperparameter around it.
PACKED_CONFIGS = {
    "defaults": {},
    "lr=0.01": {"lr": 0.01},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.1},
    "weight_decay+maximize": {"lr": 0.01, "weight_decay": 0.1, "maximize": True},
    "weight_decay+amsgrad": {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
    "decoupled": {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
}
SHARED = ("amsgrad", "maximize", "decoupled_weight_decay")


def split(config: dict) -> tuple[list[dict], dict]:
    """(K=3 per-trial hyperparameters, shared flags) for a config.

    Not lr=3*lr with betas=(0.5, 0.9): after 200 steps torch's own fused and for-loop
    Adams differ there by more than the tolerance on small params.
    """
    shared = {k: v for k, v in config.items() if k in SHARED}
    base = {k: v for k, v in config.items() if k not in SHARED}
    lr, wd = base.get("lr", 1e-3), base.get("weight_decay", 0.0)
    trials = [
        base,
        {"lr": lr, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 2 * wd},
        {"lr": 2 * lr, "betas": (0.99, 0.99999), "eps": 1e-3, "weight_decay": 0.0},
    ]
    return trials, shared


# NAdam / AdaMax parity tolerance against their for-loop torch optimizers, per algorithm
# and device: what torch's own two implementations meet against each other there
# (test_nadam_adamax_parity.py::test_torch_foreach_meets_the_tolerance), never tighter
# than the Adam suite's. Measured on CPU (torch 2.13, the harness's shapes, lr 0.1,
# NAdam(foreach=True) vs NAdam(foreach=False)): after 120 steps up to 9.5e-7 absolute on
# O(1) params (1.2e-6 after 200), relative differences up to 5e-4 on params near 0 (the
# foreach NAdam divides sqrt(v) by sqrt(1 - beta2^t), the for-loop takes sqrt(v / (1 -
# beta2^t))); AdaMax: bitwise equal (0). CUDA: not measured yet (no GPU run of these cases):
# the Adam suite's CUDA tolerance.
ALGORITHM_TOLERANCE: dict[str, dict[str, dict[str, float]]] = {
    "nadam": {"cpu": {"rtol": 1e-5, "atol": 2e-6}, "cuda": {"rtol": 1e-5, "atol": 1e-5}},
    "adamax": TOLERANCE,
}


def algorithm_tolerance(algorithm: str, device: str | torch.device) -> dict[str, float]:
    """`rtol`/`atol` for fp32 parity of `algorithm` ("adam", "nadam", "adamax") on `device`."""
    if algorithm == "adam":
        return tolerance(device)
    return ALGORITHM_TOLERANCE[algorithm][torch.device(device).type]
