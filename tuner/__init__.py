"""adamtune's control plane: sweep specs, search spaces, the sweep service, export.

Heavy libraries (torch, Ray, MLflow, Optuna) load on first use, so importing
``tuner`` and running ``tuner --help`` stay fast.
"""

from tuner.errors import (
    SpecError,
    SweepExistsError,
    SweepInterruptedError,
    SweepNotFoundError,
    SweepStateError,
    TrackingError,
    TunerError,
    UserInputError,
)
from tuner.records import SweepStatus, SweepSummary, TrialRecord
from tuner.search_space import Dimension, SearchSpace
from tuner.settings import Settings
from tuner.spec import SweepSpec, load_spec, parse_spec

__all__ = [
    "Dimension",
    "SearchSpace",
    "Settings",
    "SpecError",
    "SweepExistsError",
    "SweepInterruptedError",
    "SweepNotFoundError",
    "SweepService",
    "SweepSpec",
    "SweepStateError",
    "SweepStatus",
    "SweepSummary",
    "TrackingError",
    "TrialRecord",
    "TunerError",
    "UserInputError",
    "load_spec",
    "parse_spec",
]


def __getattr__(name: str):
    if name == "SweepService":
        from tuner.sweeps import SweepService

        return SweepService
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
