"""Live progress of a running sweep (Rich): trials done/running/stopped/failed, best so far, elapsed.

On a terminal it redraws one panel; elsewhere (CI logs, pipes) it prints one line per finished trial
and a last line with the best. "Best" is the value that ranks trials: a *completed* trial's final
value (its best epoch's with ``objective: best``), as :meth:`tuner.records.SweepSummary.best` ranks
them, never an intermediate epoch of a running or early-stopped trial; so the panel's best at the
end is the summary's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from tuner.records import Outcome

__all__ = ["ProgressView"]


class ProgressView:
    """A :class:`~tuner.executor.SweepObserver` that shows progress; use as a context manager.

    Args:
        name: the sweep's name.
        n_trials: trials in the sweep (the total, resumed ones included).
        metric: the metric being optimized; ``mode`` is ``min`` or ``max``.
        done: trials already finished before this run (resume).
        best: ``(value, trial number)`` of the best completed trial finished before this run (resume).
        objective: the spec's ``objective``: ``last`` ranks a trial by its last epoch's value,
            ``best`` by its best epoch's.
        start: ``time.monotonic()`` when the command started, so the clock counts the wait before
            the first trial too (default: when the view is made).
        console: where to draw (defaults to stdout).
    """

    def __init__(
        self,
        name: str,
        n_trials: int,
        metric: str,
        mode: str,
        *,
        done: int = 0,
        best: tuple[float, int] | None = None,
        objective: str = "last",
        start: float | None = None,
        console: Console | None = None,
    ) -> None:
        self._name, self._n, self._metric, self._mode, self._objective = name, n_trials, metric, mode, objective
        self._console = console or Console()
        self._counts = {"completed": 0, "early-stopped": 0, "failed": 0}
        self._resumed = done
        self._running: set[int] = set()
        self._reported: dict[int, list[float]] = {}  # running trials' epoch values (objective: best)
        self._best = best
        self._start = time.monotonic() if start is None else start
        self._live = Live(get_renderable=self._render, console=self._console, refresh_per_second=4, transient=False)

    @property
    def best(self) -> tuple[float, int] | None:
        """``(value, trial number)`` of the best completed trial so far, or ``None``."""
        return self._best

    def __enter__(self) -> ProgressView:
        if self._console.is_terminal:
            self._live.start()
        else:
            self._console.print(
                f"sweep {self._name}: {self._n} trials, optimizing {self._metric} ({self._mode})  [{self._elapsed()}]",
                highlight=False,
                markup=False,
            )
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live.is_started:
            self._live.stop()
        elif exc[0] is None:
            self._console.print(
                f"{self._finished()}/{self._n} trials finished; best {self._metric} {self._best_text()}  "
                f"[{self._elapsed()}]",
                highlight=False,
                markup=False,
            )

    def trial_started(self, number: int, config: Mapping[str, Any]) -> None:
        self._running.add(number)

    def epoch_reported(self, number: int, epoch: int, metrics: Mapping[str, float]) -> None:
        value = metrics.get(self._metric)
        if value is None or value != value:  # NaN
            return
        self._reported.setdefault(number, []).append(float(value))

    def trial_finished(self, number: int, outcome: Outcome) -> None:
        self._running.discard(number)
        self._counts[outcome.state] += 1
        reported = self._reported.pop(number, [])
        value = outcome.value
        if outcome.state == "completed" and value is not None and value == value:
            if self._objective == "best":  # the study ranks it by its best epoch's value
                value = (min if self._mode == "min" else max)([*reported, value])
            if self._best is None or self._is_better(value, self._best[0]):
                self._best = (value, number)
        if not self._live.is_started:
            shown = "-" if outcome.value is None else f"{outcome.value:.4g}"
            note = f" ({outcome.reason})" if outcome.state == "failed" else ""
            self._console.print(
                f"[{self._finished()}/{self._n}] trial {number}: {outcome.state} after {outcome.epochs} epochs, "
                f"{self._metric}={shown}{note}  [{self._elapsed()}]",
                highlight=False,
                markup=False,
            )

    def _is_better(self, value: float, than: float) -> bool:
        return value < than if self._mode == "min" else value > than

    def _finished(self) -> int:
        return self._resumed + sum(self._counts.values())

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self._start)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def _best_text(self) -> str:
        return "- (no trial completed yet)" if self._best is None else f"{self._best[0]:.5g} (trial {self._best[1]})"

    def _render(self) -> Table:
        table = Table(title=f"sweep {self._name}", show_header=False, box=None)
        table.add_row("trials", f"{self._finished()}/{self._n} finished, {len(self._running)} running")
        table.add_row("", ", ".join(f"{v} {k}" for k, v in self._counts.items()))
        table.add_row(f"best {self._metric}", self._best_text() + ("" if self._best is None else ", completed"))
        table.add_row("elapsed", self._elapsed())
        return table
