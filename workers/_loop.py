"""What the single-trial loop (:mod:`workers.training`) and the packed trainer
(:mod:`workers.packed`) share about a workload's step and its validation."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import torch

from workers.workloads import Workload

__all__ = ["PHASES", "autocast", "check_metric_keys", "check_steps", "mean_metrics", "phase"]

#: The named ranges an epoch is split into for ``torch.profiler`` (``adamtune.<phase>``):
#: fetching and moving batches, forward and backward, the optimizer (and clipping and
#: the lr schedule), validation. ``bench/pack_epoch.py`` reads them.
PHASES = ("data", "forward_backward", "optimizer", "validation")


def phase(name: str) -> torch.profiler.record_function:
    """A ``torch.profiler.record_function`` range ``adamtune.<name>`` (``name`` in :data:`PHASES`);
    a few microseconds when no profiler runs."""
    return torch.profiler.record_function(f"adamtune.{name}")


def autocast(workload: Workload, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 when ``workload.bf16``, else a no-op context."""
    if not workload.bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def mean_metrics(per_batch: Sequence[Mapping[str, float]], sizes: Sequence[int]) -> dict[str, float]:
    """Each metric's mean over the validation batches, weighted by their sizes.

    Each batch's weight is ``size / total``, so a single batch's values come back
    unchanged (bit for bit).

    Args:
        per_batch: one ``Workload.evaluate`` dict per batch.
        sizes: samples per batch (``target.shape[0]``), same length.
    """
    total = sum(sizes)
    keys = per_batch[0].keys()
    return {key: sum(row[key] * (size / total) for row, size in zip(per_batch, sizes)) for key in keys}


def check_metric_keys(workload: Workload, metrics: Mapping[str, float]) -> None:
    """Raise ``ValueError`` if ``evaluate()`` returned other keys than ``workload.metrics`` declares."""
    if set(metrics) != set(workload.metrics):
        raise ValueError(
            f"workload {workload.name!r}: evaluate() returned keys {sorted(metrics)} "
            f"but its metrics declare {sorted(workload.metrics)}"
        )


def check_steps(workload: Workload, epoch: int, steps: int, expected: int) -> None:
    """Raise ``ValueError`` if an epoch yielded another number of batches than ``steps_per_epoch()``
    (``steps > expected``: it yielded at least that many)."""
    if steps != expected:
        count = steps if steps < expected else f"more than {expected}"
        raise ValueError(
            f"workload {workload.name!r}: train_batches(epoch={epoch}) yielded {count} batches "
            f"but steps_per_epoch() is {expected}; they must agree (the lr schedule and packing count on it)"
        )
