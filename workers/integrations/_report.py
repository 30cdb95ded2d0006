"""What the framework callbacks share: picking the metrics to report, and holding a
sweep's stop until the framework has ended its epoch.

A sweep stops a trial from inside ``trial.report(...)``: adamtune raises
:class:`~workers.trial.StopTrial` (the trial diverged, or reported past ``max_epochs``) and
Ray Tune raises ``SystemExit`` when its scheduler (ASHA) stops the trial. Both are
``BaseException``; a framework callback catches them around the report, tells the framework
to stop (``trainer.should_stop``, ``control.should_training_stop``) so the epoch ends as
any early-stopped epoch does (checkpoint callbacks, loggers), and raises the same exception
again when the framework's training ends, so the user's ``train(trial)`` ends exactly where
a stopped ``trial.report`` would have ended it.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workers.trial import StopTrial

if TYPE_CHECKING:
    from workers.trial import Trial

#: Exceptions by which a sweep stops a trial inside ``trial.report``.
STOPS: tuple[type[BaseException], ...] = (StopTrial, SystemExit)

#: Keys a report row sets itself; a framework metric of that name is not reported.
RESERVED = frozenset({"epoch"})


def pick_metrics(values: Mapping[str, Any], names: Sequence[str] | None, *, source: str) -> dict[str, Any]:
    """The metrics to report from a framework's ``values``.

    Args:
        values: Metric name -> value (Python or numpy numbers, tensors).
        names: The names to report; None: every real number or one-element tensor but
            ``epoch`` (the report row's own epoch count).
        source: Where ``values`` came from, for the error message.

    Raises:
        KeyError: a name in ``names`` is not in ``values``.
    """
    if names is None:
        return {k: v for k, v in values.items() if k not in RESERVED and _is_scalar(v)}
    missing = [name for name in names if name not in values]
    if missing:
        raise KeyError(f"{', '.join(map(repr, missing))} not in {source}, which has {sorted(values) or 'nothing'}")
    return {name: values[name] for name in names}


def _is_scalar(value: Any) -> bool:
    """A real number, or a one-element tensor or array holding one (not a bool)."""
    if hasattr(value, "numel") and callable(value.numel):  # torch tensors
        if value.numel() != 1:
            return False
        value = value.item()
    elif hasattr(value, "item") and callable(value.item) and getattr(value, "size", None) == 1:  # numpy
        value = value.item()
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Reporting:
    """Reports one validation run per call to a trial and holds a sweep's stop.

    Args:
        trial: The running trial (``Trial.defaults()`` outside a sweep: reports print,
            nothing stops).
    """

    def __init__(self, trial: Trial) -> None:
        self.trial = trial
        self.pending: BaseException | None = None

    def report(self, metrics: Mapping[str, Any]) -> bool:
        """``trial.report(**metrics)``; whether the framework should stop training now.

        True after the sweep stopped the trial (the stop is held in :attr:`pending`), and
        after the trial's ``max_epochs``-th report in a sweep (the budget is spent: no
        epoch is trained past it).

        Raises:
            TypeError, ValueError, RuntimeError: from ``trial.report``.
        """
        try:
            self.trial.report(**metrics)
        except STOPS as stop:
            self.pending = stop
            return True
        return self.trial.in_sweep and self.trial.epochs_reported >= self.trial.max_epochs

    def raise_pending(self) -> None:
        """Raise the held stop, if any (once)."""
        if self.pending is not None:
            stop, self.pending = self.pending, None
            raise stop
