"""Cancelling a running sweep: a Ray Tune stopper that asks the caller whether to stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray import tune

__all__ = ["Cancel"]


class Cancel(tune.Stopper):
    """Stops every trial once ``should_stop()`` returns true.

    Tune asks after each reported result; ``should_stop`` (often a database
    read) is called at most once per ``interval`` seconds.

    Args:
        should_stop: returns whether the sweep was cancelled; ``None``: never.
        interval: minimum seconds between two calls of ``should_stop``.
    """

    def __init__(self, should_stop: Callable[[], bool] | None = None, *, interval: float = 1.0) -> None:
        self._should_stop = should_stop
        self._interval = interval
        self._checked_at = float("-inf")
        self.triggered = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        if self.triggered or self._should_stop is None:
            return self.triggered
        now = time.monotonic()
        if now - self._checked_at >= self._interval:
            self._checked_at = now
            self.triggered = bool(self._should_stop())
        return self.triggered

    def __getstate__(self) -> dict[str, Any]:
        # Tune saves its run config with the experiment; the callable stays in this process.
        return {**self.__dict__, "_should_stop": None}
