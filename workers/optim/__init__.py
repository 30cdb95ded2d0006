"""Optimizers of adamtune workers over flat buffers.

`FusedAdam`, `FusedNAdam` and `FusedAdamax` are torch.optim.Adam, NAdam and Adamax with one
fused update per flat buffer; `PackedAdam` updates K stacked trials, each with its own
hyperparameters, in one call (``algorithm="adam" | "nadam" | "adamax"``). `auto_backend` and
`available_backends` name the update implementations. `FlatLayout` and `FlatParams` are the
aligned flat buffers they stand on (params, grads and state as views), for another fused
optimizer. `LaunchConfig`, `launch_config` and `LAUNCH` set how the Triton kernels launch
(block size, warps, programs per row; they import Triton on first use; bench/triton_tune.py).
"""

from typing import Any

from ._backends import auto_backend, available_backends
from ._flat import FlatLayout, FlatParams
from ._fused_adam import FusedAdam
from ._fused_adamax import FusedAdamax
from ._fused_nadam import FusedNAdam
from ._packed_adam import PackedAdam

__all__ = [
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


def __getattr__(name: str) -> Any:
    if name in ("LAUNCH", "LaunchConfig", "launch_config"):  # their module imports Triton
        from . import _triton_adam

        return getattr(_triton_adam, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
