"""What a Ray worker imports: the trial API, workloads, the training loop and the optimizer.

Knows nothing of HTTP, SQL, Optuna, MLflow or the ``tuner`` package: it takes a plain
config and yields plain metric dicts. One module touches Ray: :mod:`workers.trainable`, the
entry points Ray runs on a worker, where :func:`~workers.trainable.trainable` reports each
row to Ray Tune and a row is tagged with the Ray node it trained on; it imports Ray inside
those functions, so importing ``workers`` (or training outside Ray) never imports it.

Importing ``workers`` does not import torch. The registry
(:func:`available_workloads`, :func:`get_workload`, :class:`Workload`,
:class:`UnknownWorkloadError`) is light; :class:`FusedAdam`, :class:`FusedNAdam`,
:class:`FusedAdamax`, :class:`PackedAdam` and :func:`train` are imported on first
attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workers.workloads import UnknownWorkloadError, Workload, available_workloads, get_workload

if TYPE_CHECKING:
    from workers.optim import FusedAdam, FusedAdamax, FusedNAdam, PackedAdam
    from workers.training import train
    from workers.trial import Trial

__all__ = [
    "FusedAdam",
    "FusedAdamax",
    "FusedNAdam",
    "PackedAdam",
    "Trial",
    "UnknownWorkloadError",
    "Workload",
    "available_workloads",
    "get_workload",
    "train",
]

# Attributes that import torch, by the module that defines them.
_LAZY = {
    "FusedAdam": "workers.optim",
    "FusedAdamax": "workers.optim",
    "FusedNAdam": "workers.optim",
    "PackedAdam": "workers.optim",
    "Trial": "workers.trial",
    "train": "workers.training",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
