"""Workloads: what a trial trains, found by name or ``module:attr`` reference.

A workload is a :class:`Workload` subclass (model, data, loss, metrics; adamtune
owns the loop, so it can pack) or a function ``train(trial)`` with the user's own
loop (see :class:`workers.Trial`).

Importing this package does not import torch; the bundled workloads
(:mod:`workers.workloads.digits`, :mod:`workers.workloads.diabetes`) do, and are
loaded only by :func:`load_workload` / :func:`get_workload`. :func:`cached_split` (a prepared
data split kept in a file under ``$ADAMTUNE_CACHE_DIR``, named by :data:`CACHE_DIR_ENV`, so that
later worker processes skip building it) imports torch on first use.
"""

from typing import Any

from workers.workloads._base import Batch, Split, TensorWorkload, Workload, check_training_options
from workers.workloads._registry import (
    ENTRY_POINT_GROUP,
    UnknownWorkloadError,
    WorkloadArgsError,
    available_workloads,
    check_target,
    check_workload_args,
    get_workload,
    load_workload,
    resolve_target,
    workload_target,
)

__all__ = [
    "Batch",
    "CACHE_DIR_ENV",
    "ENTRY_POINT_GROUP",
    "Split",
    "TensorWorkload",
    "UnknownWorkloadError",
    "Workload",
    "WorkloadArgsError",
    "available_workloads",
    "cached_split",
    "check_target",
    "check_training_options",
    "check_workload_args",
    "get_workload",
    "load_workload",
    "resolve_target",
    "workload_target",
]


def __getattr__(name: str) -> Any:
    if name in ("CACHE_DIR_ENV", "cached_split"):  # their module imports torch
        from workers.workloads import _tabular

        return getattr(_tabular, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
