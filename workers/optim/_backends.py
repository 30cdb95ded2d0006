"""Which functions perform the Adam / NAdam / AdaMax update, per device type: one explicit table.

Each (backend name, algorithm) gives a single-trial update (`AdamUpdateFn` for Adam, used
by `FusedAdam`; NAdam and AdaMax updates take their own states, see `_algorithms`) and a
K-trial update (`PackedUpdateFn`, used by `PackedAdam`). "torch_fused" is torch's own
fused kernel for Adam and, since torch 2.13 has no fused NAdam / AdaMax, torch's
multi-tensor ``_foreach`` ops for those (`_torch_foreach`). To add a backend: write both
(or adapt a single-trial one with `_adapters`), register them in `_load`, and list the
name under the device types it serves in `_BY_DEVICE`, fastest first. `backend="auto"`
picks the first available entry, with one exception, `auto_backend`'s rule: on CUDA the
Triton kernel is taken for PackedAdam only, once verified and timed on a GPU
(`TRITON_VERIFIED_ON_GPU`). The parity suite in tests/optim runs against every name
`available_backends` reports.

Triton is optional (the extra ``.[triton]``): without it "triton" is not available. On
CPU, "triton" is available only under ``TRITON_INTERPRET=1`` (the interpreter that lets
tests check the kernels' arithmetic).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from typing import Literal

from ._adapters import AdamUpdateFn, PackedUpdateFn, by_trial_groups, fp32_math
from ._reference import adam_reference, adamax_reference, nadam_reference
from ._torch_foreach import adamax_torch_foreach, nadam_torch_foreach
from ._torch_fused import adam_torch_fused

BackendName = Literal["auto", "triton", "torch_fused", "reference"]
_NAMES = ("triton", "torch_fused", "reference")

# device type -> backends tested there, fastest first (triton dropped when unavailable);
# on CUDA "triton" is listed first; "auto" takes it for PackedAdam only: see TRITON_VERIFIED_ON_GPU.
# Measured (torch 2.13, 2-core AMD EPYC, 10M fp32 params in 200 tensors, median step):
# FusedAdam torch_fused 4.3-5.4 ms, reference 40-45 ms; torch.optim.Adam(fused=True)
# 7.1-7.4 ms, foreach 22-43 ms, for-loop 19-25 ms. See bench/adam_step.py.
_BY_DEVICE: dict[str, tuple[str, ...]] = {
    "cpu": ("torch_fused", "reference", "triton"),  # triton: interpreter only
    "cuda": ("triton", "torch_fused", "reference"),
}
_ANY_DEVICE: tuple[str, ...] = ("reference",)

TRITON_VERIFIED_ON_GPU = True
"""Whether `backend="auto"` may pick the Triton kernel on CUDA (see `auto_backend`).

True since 2026-12-04 (H200, torch 2.11+cu130, Triton 3.6; docs/cluster.md "GPU readiness"):
every ``cuda-*`` optimizer test passed on the GPU (419 passed, 1 skipped), and the kernel
(`LaunchConfig` 1024 elements, 8 warps, one program per block) moved 0.99 of the copy
bandwidth at 10.1M params in 200 tensors and 1.00 at 50.1M in 20 (device time, torch.profiler:
1.09x and 1.22x torch's fused kernel), and PackedAdam K=8 with Triton was 3.28x eight
`torch.optim.Adam(fused=True)` in device time and 1.13x PackedAdam with torch_fused in wall time
per step (bench/adam_step.py).

So "auto" on CUDA is "triton" for PackedAdam. For FusedAdam (one trial) it stays "torch_fused":
the Triton launch costs more host time per step (wall 0.38 vs 0.26 ms at 10.1M params, 0.51 vs
0.50 ms at 50.1M), which a host-bound training loop pays in full, for a kernel 0.007 ms faster.
``backend="triton"`` selects the kernel explicitly. To re-check: ``bench/gpu_check.sh`` and
``bench/triton_tune.py`` on a CUDA machine; the test that pins the CUDA choice is
tests/optim/test_fused_adam_api.py.
"""


def _triton_usable(device_type: str) -> bool:
    if importlib.util.find_spec("triton") is None:
        return False
    return device_type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


_HOST_UPDATES = {  # (backend, algorithm) -> single-trial update of the plain-torch backends
    ("torch_fused", "adam"): adam_torch_fused,
    ("torch_fused", "nadam"): nadam_torch_foreach,
    ("torch_fused", "adamax"): adamax_torch_foreach,
    ("reference", "adam"): adam_reference,
    ("reference", "nadam"): nadam_reference,
    ("reference", "adamax"): adamax_reference,
}


@functools.cache
def _load(name: str, algorithm: str = "adam") -> tuple[AdamUpdateFn, PackedUpdateFn]:
    """(single-trial, K-trial) update functions of backend `name` for `algorithm`
    (imported on first use)."""
    if name == "triton":
        from . import _triton_adam as kernels

        return (getattr(kernels, f"{algorithm}_triton"), getattr(kernels, f"{algorithm}_packed_triton"))
    single = fp32_math(_HOST_UPDATES[name, algorithm])  # fp16/bf16 params with fp32 states
    return single, by_trial_groups(single)


def available_backends(device_type: str) -> tuple[str, ...]:
    """Names of the update backends usable for params on `device_type`, fastest first
    (by design; `auto_backend` says which one ``backend="auto"`` takes).

    Args:
        device_type: a `torch.device.type`, e.g. ``"cpu"`` or ``"cuda"``.
    """
    names = _BY_DEVICE.get(device_type, _ANY_DEVICE)
    return tuple(n for n in names if n != "triton" or _triton_usable(device_type))


def auto_backend(
    device_type: str,
    available: Sequence[str] | None = None,
    *,
    packed: bool = False,
    triton_verified: bool = TRITON_VERIFIED_ON_GPU,
) -> str:
    """The backend that ``backend="auto"`` uses for params on `device_type`.

    The first of `available` (fastest first), except that on CUDA "triton" is taken only
    for K-trial updates (`packed`, PackedAdam) and only once `triton_verified`: for one
    trial its launch costs more host time than torch's fused kernel saves on the device
    (see `TRITON_VERIFIED_ON_GPU` for the figures). So "auto" is "torch_fused" on CPU and
    for FusedAdam on CUDA, and "triton" for PackedAdam on CUDA where Triton is installed.

    Args:
        device_type: a `torch.device.type`, e.g. ``"cpu"`` or ``"cuda"``.
        available: the usable backends, fastest first (default:
            ``available_backends(device_type)``, which depends on what is installed).
        packed: whether the update steps K stacked trials (PackedAdam) rather than one.
        triton_verified: whether the Triton kernel has passed bench/gpu_check.sh
            (default `TRITON_VERIFIED_ON_GPU`).

    Raises:
        ValueError: if no backend is left to choose from.
    """
    given = available_backends(device_type) if available is None else tuple(available)
    names = given
    if device_type == "cuda" and not (triton_verified and packed):
        names = tuple(n for n in names if n != "triton")
    if not names:
        raise ValueError(
            f"backend='auto' needs an available backend for {device_type!r} params other "
            f"than 'triton' (verified on a GPU for PackedAdam only: {triton_verified}), but got "
            f"available={given}; pass a backend explicitly"
        )
    return names[0]


def check_backend_name(name: str) -> None:
    """Raises ValueError unless `name` is ``"auto"`` or a known backend."""
    if name != "auto" and name not in _NAMES:
        raise ValueError(f"backend must be one of {('auto', *_NAMES)}, but got backend={name!r}")


def _resolve_name(name: str, device_type: str, packed: bool) -> str:
    check_backend_name(name)
    usable = available_backends(device_type)
    if name == "auto":
        return auto_backend(device_type, usable, packed=packed)
    if name not in usable:
        raise ValueError(
            f"backend {name!r} is not available for {device_type!r} params; "
            f"use one of {('auto', *usable)}" + (" (install the extra .[triton])" if name == "triton" else "")
        )
    return name


def resolve_backend(name: str, device_type: str, algorithm: str = "adam") -> AdamUpdateFn:
    """The single-trial update of `algorithm` (``"adam"``, ``"nadam"``, ``"adamax"``) for
    backend `name` on `device_type` (``"auto"``: `auto_backend`).

    Raises:
        ValueError: if `name` is unknown or not available on `device_type`.
    """
    return _load(_resolve_name(name, device_type, packed=False), algorithm)[0]


def resolve_packed_backend(name: str, device_type: str, algorithm: str = "adam") -> PackedUpdateFn:
    """The K-trial update of `algorithm` for backend `name` on `device_type`; errors as
    `resolve_backend`."""
    return _load(_resolve_name(name, device_type, packed=True), algorithm)[1]
