"""adamtune's control plane: sweep specs, search spaces, the sweep service, export, and
:func:`sweep`, which runs a sweep from Python or a notebook (:mod:`tuner.python_api`).

Heavy libraries (torch, Ray, MLflow, Optuna) load on first use, so importing
``tuner`` and running ``tuner --help`` stay fast.

Ray and MLflow report usage to their vendors over the internet unless told not to.
Importing ``tuner`` tells them not to (``RAY_USAGE_STATS_ENABLED=0``,
``MLFLOW_DISABLE_TELEMETRY=true``) unless those variables are already set: a sweep
over users' models and data sends nothing off the machine unless they opt in.
"""

import os

from tuner.errors import (
    SpecError,
    StoreError,
    SweepExistsError,
    SweepFailedError,
    SweepInterruptedError,
    SweepNotFoundError,
    SweepStateError,
    TrackingError,
    TunerError,
    UserInputError,
)
from tuner.records import SweepStatus, SweepSummary, TrialRecord
from tuner.search_space import Choice, Dimension, SearchSpace
from tuner.settings import Settings
from tuner.spec import SweepSpec, load_spec, parse_spec

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before Ray or MLflow load (they load lazily)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__all__ = [
    "Choice",
    "Dimension",
    "SearchSpace",
    "Settings",
    "SpecError",
    "StoreError",
    "SweepExistsError",
    "SweepFailedError",
    "SweepInterruptedError",
    "SweepNotFoundError",
    "SweepResult",
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
    "sweep",
]


def __getattr__(name: str):
    if name == "SweepService":
        from tuner.service import SweepService

        return SweepService
    if name in ("sweep", "SweepResult"):
        from tuner import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
