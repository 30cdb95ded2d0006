"""The public face of tuner.store is pinned: what it exports and what a Sweep is."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import get_args

import pytest

import tuner.store
from tuner.store import TERMINAL_STATES, Sweep, SweepState


def test_all_is_pinned() -> None:
    assert tuner.store.__all__ == ["SweepStore", "Sweep", "SweepState", "TERMINAL_STATES"]


def test_states() -> None:
    assert set(get_args(SweepState)) == {"queued", "running", "completed", "failed", "cancelled"}
    assert TERMINAL_STATES == {"completed", "failed", "cancelled"}


def test_sweep_is_a_frozen_dataclass_with_the_documented_fields() -> None:
    assert [f.name for f in dataclasses.fields(Sweep)] == [
        "id", "name", "spec", "state", "created_at", "started_at", "finished_at",
        "error", "cancel_requested", "attempts", "mlflow_experiment_id", "mlflow_run_id",
    ]  # fmt: skip
    sweep = Sweep(id="0" * 32, name="s", spec={}, state="queued", created_at=datetime.now(UTC))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sweep.state = "running"  # type: ignore[misc]
