"""Live progress of a running sweep (Rich): trials done/running/stopped/failed, best so far, elapsed.

On a terminal it redraws one panel; elsewhere (CI logs, pipes) it prints one line per finished trial.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

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
        console: where to draw (defaults to stdout).
    """

    def __init__(self, name: str, n_trials: int, metric: str, mode: str, *, done: int = 0, console: Console | None = None) -> None:
        self._name, self._n, self._metric, self._mode = name, n_trials, metric, mode
        self._console = console or Console()
        self._counts = {"completed": 0, "early-stopped": 0, "failed": 0}
        self._resumed = done
        self._running: set[int] = set()
        self._best: tuple[float, int] | None = None
        self._start = time.monotonic()
        self._live = Live(get_renderable=self._render, console=self._console, refresh_per_second=4, transient=False)

    def __enter__(self) -> ProgressView:
        self._start = time.monotonic()
        if self._console.is_terminal:
            self._live.start()
        else:
            self._console.print(f"sweep {self._name}: {self._n} trials, optimizing {self._metric} ({self._mode})")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live.is_started:
            self._live.stop()

    def trial_started(self, number: int, config: Mapping[str, Any]) -> None:
        self._running.add(number)

    def epoch_reported(self, number: int, epoch: int, metrics: Mapping[str, float]) -> None:
        value = metrics.get(self._metric)
        if value is None or value != value:  # NaN
            return
        better = self._best is None or (value < self._best[0] if self._mode == "min" else value > self._best[0])
        if better:
            self._best = (value, number)

    def trial_finished(self, number: int, outcome: Outcome) -> None:
        self._running.discard(number)
        self._counts[outcome.state] += 1
        if not self._live.is_started:
            value = "-" if outcome.value is None else f"{outcome.value:.4g}"
            note = f" ({outcome.reason})" if outcome.state == "failed" else ""
            self._console.print(
                f"[{self._finished()}/{self._n}] trial {number}: {outcome.state} after {outcome.epochs} epochs, "
                f"{self._metric}={value}{note}  [{self._elapsed()}]",
                highlight=False,
            )

    def _finished(self) -> int:
        return self._resumed + sum(self._counts.values())

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self._start)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def _render(self) -> Table:
        table = Table(title=f"sweep {self._name}", show_header=False, box=None)
        table.add_row("trials", f"{self._finished()}/{self._n} finished, {len(self._running)} running")
        table.add_row("", ", ".join(f"{v} {k}" for k, v in self._counts.items()))
        best = "-" if self._best is None else f"{self._best[0]:.5g} (trial {self._best[1]})"
        table.add_row(f"best {self._metric}", best)
        table.add_row("elapsed", self._elapsed())
        return table
