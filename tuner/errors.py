"""The exceptions the control plane raises, grouped by what the caller can do.

``TunerError`` is the root. The CLI maps :class:`UserInputError` subclasses and
:class:`StoreError` to exit code 2 with a one-line message; anything else is a bug or a
backend fault.
"""

from __future__ import annotations

__all__ = [
    "TunerError",
    "UserInputError",
    "SpecError",
    "SweepNotFoundError",
    "SweepExistsError",
    "SweepStateError",
    "SweepInterruptedError",
    "SweepFailedError",
    "TrackingError",
    "StoreError",
]


class TunerError(Exception):
    """Root of every error adamtune raises on purpose."""


class UserInputError(TunerError):
    """The input was wrong; the message says which field, the bad value and the fix."""


class SpecError(UserInputError, ValueError):
    """A sweep spec or search space failed validation (nothing was written)."""


class SweepNotFoundError(UserInputError, LookupError):
    """No sweep of that name exists in the configured stores."""


class SweepExistsError(UserInputError):
    """A sweep of that name already exists and the caller did not ask to resume it."""


class SweepStateError(UserInputError):
    """The sweep's state does not allow that change (e.g. cancelling a completed sweep)."""


class SweepInterruptedError(TunerError):
    """The run stopped before ``n_trials`` trials finished (Ctrl-C); ``--resume`` continues it."""


class SweepFailedError(TunerError):
    """The sweep stopped early because its trials kept failing alike (spec ``fail_fast``): a
    workload bug, not bad configs; the message gives the reason. ``--resume`` continues it once fixed."""


class TrackingError(TunerError):
    """Writing trials to MLflow failed; the sweep's trials are still in its Optuna study."""


class StoreError(TunerError):
    """A store (the queue, the Optuna study store or MLflow) cannot be used as configured: corrupt,
    read-only, missing, unreachable, or its login refused. The message names the store, its URL
    (without password) and what to do; nothing was written.

    Attributes:
        transient: whether waiting may help (the database server could not be reached), as
            opposed to a fault that stays until someone fixes it (read-only, corrupt, login refused).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
