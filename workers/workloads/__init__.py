"""Workloads: a model, its data, its loss and its metrics, found by name.

Importing this package does not import torch; the bundled workloads
(:mod:`workers.workloads.digits`, :mod:`workers.workloads.diabetes`) do, and are
loaded only by :func:`get_workload`.
"""

from workers.workloads._base import Split, Workload
from workers.workloads._registry import (
    ENTRY_POINT_GROUP,
    UnknownWorkloadError,
    available_workloads,
    get_workload,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Split",
    "UnknownWorkloadError",
    "Workload",
    "available_workloads",
    "get_workload",
]
