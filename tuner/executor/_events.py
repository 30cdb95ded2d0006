"""Sweep events, as plain calls: the executor emits them, trackers and progress views observe them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tuner.records import Outcome

__all__ = ["SweepObserver", "Observers"]


class SweepObserver(Protocol):
    """Receives a sweep's trial events on the driver, in order per trial."""

    def trial_started(self, number: int, config: Mapping[str, Any]) -> None:
        """Trial ``number`` starts with this Adam config."""

    def epoch_reported(self, number: int, epoch: int, metrics: Mapping[str, float]) -> None:
        """Trial ``number`` finished ``epoch`` (1-based) with these numeric metrics."""

    def trial_finished(self, number: int, outcome: Outcome) -> None:
        """Trial ``number`` ended."""


class Observers:
    """Fans each event out to several observers."""

    def __init__(self, *observers: SweepObserver) -> None:
        self._observers = observers

    def trial_started(self, number: int, config: Mapping[str, Any]) -> None:
        for o in self._observers:
            o.trial_started(number, config)

    def epoch_reported(self, number: int, epoch: int, metrics: Mapping[str, float]) -> None:
        for o in self._observers:
            o.epoch_reported(number, epoch, metrics)

    def trial_finished(self, number: int, outcome: Outcome) -> None:
        for o in self._observers:
            o.trial_finished(number, outcome)
