"""The curated public API of the control plane is pinned; every name resolves."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "tuner": {
        "Dimension", "SearchSpace", "Settings", "SpecError", "SweepExistsError", "SweepInterruptedError",
        "SweepNotFoundError", "SweepService", "SweepSpec", "SweepStateError", "SweepStatus", "SweepSummary",
        "TrackingError", "TrialRecord", "TunerError", "UserInputError", "load_spec", "parse_spec",
    },
    "tuner.api": {"MAX_BODY_BYTES", "create_app"},
    "tuner.executor": {"Observers", "Outcome", "SweepObserver", "classify", "execute", "run_standard"},
    "tuner.store": {"SweepStore", "Sweep", "SweepState", "TERMINAL_STATES"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert getattr(mod, name) is not None
