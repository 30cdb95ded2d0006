"""A valid spec and a store snapshot shared by the API tests (importable: conftest is not)."""

from __future__ import annotations

from tuner.sweeps import SweepService

SPEC = {"name": "digits-api", "workload": "digits_mlp", "search_space": "adam", "n_trials": 4, "max_epochs": 2}


def snapshot(service: SweepService) -> tuple:
    """Everything the stores hold that a request could change."""
    return tuple((s.name, s.state, s.cancel_requested) for s in service.store.list()), tuple(service.studies.names())
