"""The sweep as the queue knows it, its states, and the one table of legal state changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from tuner.errors import SweepStateError

__all__ = ["SweepState", "STATES", "TERMINAL_STATES", "TRANSITIONS", "Sweep", "check_state", "check_transition"]

#: Where a sweep is in the queue. ``queued``: waiting for a runner; ``running``:
#: claimed by a runner; ``completed`` / ``failed`` / ``cancelled``: final.
SweepState = Literal["queued", "running", "completed", "failed", "cancelled"]

#: Every state, in lifecycle order.
STATES: tuple[SweepState, ...] = get_args(SweepState)

#: States no sweep ever leaves.
TERMINAL_STATES: frozenset[SweepState] = frozenset({"completed", "failed", "cancelled"})

#: The only state changes a sweep may make (current state -> allowed next states).
#: ``running -> queued`` is the requeue of a sweep left running by a crashed service.
TRANSITIONS: Mapping[SweepState, frozenset[SweepState]] = MappingProxyType(
    {
        "queued": frozenset({"running", "cancelled"}),
        "running": frozenset({"completed", "failed", "cancelled", "queued"}),
        "completed": frozenset(),
        "failed": frozenset(),
        "cancelled": frozenset(),
    }
)


@dataclass(frozen=True)
class Sweep:
    """One sweep in the queue.

    Attributes:
        id: 32 hex digits (uuid4), assigned on submit.
        name: unique among all sweeps in the store.
        spec: the validated sweep spec as a JSON-able dict.
        state: see :data:`SweepState`.
        created_at: when it was submitted (timezone-aware, UTC).
        started_at: when a runner last claimed it (UTC), ``None`` while queued.
        finished_at: when it reached a final state (UTC), ``None`` before.
        error: why it failed or was cancelled, if the runner said.
        cancel_requested: a cancel was asked for; a runner stops a running sweep
            that has this set and then finishes it as ``cancelled``.
        attempts: how many times a runner claimed it (requeues keep the count).
        mlflow_experiment_id: the MLflow experiment that tracks it, once known.
        mlflow_run_id: its parent MLflow run, once known.
    """

    id: str
    name: str
    spec: dict[str, Any]
    state: SweepState
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    cancel_requested: bool = False
    attempts: int = 0
    mlflow_experiment_id: str | None = None
    mlflow_run_id: str | None = None


def check_state(value: object, *, allowed: tuple[str, ...] | frozenset[str] = STATES, what: str = "state") -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed`` (a caller's bug, not user input)."""
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(sorted(allowed))}, but got {value!r}")


def check_transition(*, sweep_id: str, name: str, current: SweepState, requested: SweepState) -> None:
    """Raise :class:`SweepStateError` unless ``current -> requested`` is in :data:`TRANSITIONS`."""
    allowed = TRANSITIONS[current]
    if requested in allowed:
        return
    if allowed:
        rule = f"a {current} sweep can only become {' or '.join(sorted(allowed))}"
    else:
        rule = f"{current} is final; submit the spec again under a new name to rerun it"
    raise SweepStateError(f"sweep {name!r} (id {sweep_id}) is {current} and cannot become {requested}: {rule}")
