"""The live view's "best" is the value that ranks trials (a completed trial's final value), its
clock counts from the command's start, and at the end of a sweep its best is the summary's."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import pytest
from rich.console import Console
from test_sweep_study import curve, new_study

from tuner.executor import SweepStudy
from tuner.progress import ProgressView
from tuner.records import Outcome


def view(**kwargs) -> tuple[ProgressView, io.StringIO]:
    out = io.StringIO()
    return ProgressView(
        "s", 4, "val_loss", kwargs.pop("mode", "min"), console=Console(file=out, width=200), **kwargs
    ), out


def test_an_early_stopped_or_running_trials_better_epoch_is_not_the_best() -> None:
    progress, out = view()
    with progress:
        for number in (0, 1, 2):
            progress.trial_started(number, {})
        for epoch, value in enumerate((0.9, 0.7, 0.6), 1):
            progress.epoch_reported(0, epoch, {"val_loss": value})
        progress.trial_finished(0, Outcome("completed", 0.6, 3))
        progress.epoch_reported(1, 1, {"val_loss": 0.3})  # better, but stopped after it
        progress.trial_finished(1, Outcome("early-stopped", 0.3, 1, "stopped by the scheduler after epoch 1"))
        progress.epoch_reported(2, 1, {"val_loss": 0.1})  # better, but still running
        assert progress.best == (0.6, 0)
        progress.epoch_reported(2, 2, {"val_loss": 0.8})
        progress.trial_finished(2, Outcome("completed", 0.8, 3))  # its final value ranks it, not epoch 1's
        assert progress.best == (0.6, 0)
    assert out.getvalue().splitlines()[-1].startswith("3/4 trials finished; best val_loss 0.6 (trial 0)")


def test_objective_best_ranks_a_completed_trial_by_its_best_epoch() -> None:
    progress, _ = view(objective="best", mode="max")
    with progress:
        progress.trial_started(0, {})
        for epoch, value in enumerate((0.5, 0.9, 0.7), 1):
            progress.epoch_reported(0, epoch, {"val_loss": value})
        progress.trial_finished(0, Outcome("completed", 0.7, 3))
    assert progress.best == (0.9, 0)


def test_a_resumed_view_starts_from_the_stored_best_and_the_clock_from_the_command() -> None:
    progress, out = view(done=2, best=(0.5, 1), start=time.monotonic() - 75)
    with progress:
        progress.trial_started(2, {})
        progress.trial_finished(2, Outcome("completed", 0.55, 3))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("[1:15]") and "[3/4] trial 2: completed" in lines[1]
    assert lines[-1].startswith("3/4 trials finished; best val_loss 0.5 (trial 1)")


def test_nothing_completed_says_so() -> None:
    progress, out = view()
    with progress:
        progress.trial_started(0, {})
        progress.trial_finished(0, Outcome("failed", None, 1, "boom"))
    assert progress.best is None and "best val_loss - (no trial completed yet)" in out.getvalue()


@pytest.mark.parametrize("objective", ["last", "best"])
def test_at_the_end_of_a_sweep_the_views_best_is_the_summarys(tmp_path: Path, objective: str) -> None:
    """Driven as the executors drive it (ASHA stops some trials after a good early epoch)."""
    studies, spec = new_study(tmp_path, objective=objective)
    study = SweepStudy(spec, studies.storage, n_trials=16, window=3)
    progress, _ = view(objective=objective)
    order, running = random.Random(0), []
    with progress:
        while True:
            while len(running) < 3 and (asked := study.ask()) is not None:
                progress.trial_started(asked.number, asked.config)
                running.append([asked, 0])
            if not running:
                break
            entry = running[order.randrange(len(running))]
            entry[1] += 1
            asked, epoch = entry
            value = curve(asked, epoch) + (0.3 if epoch > 2 else 0.0)  # later epochs worse: last != best
            progress.epoch_reported(asked.number, epoch, {"val_loss": value})
            if study.report(asked, epoch, value) or epoch >= 8:
                outcome = Outcome("completed" if epoch >= 8 else "early-stopped", value, epoch)
                study.tell(asked, outcome)
                progress.trial_finished(asked.number, outcome)
                running.remove(entry)
    best = studies.summary("proto").best()[0]
    assert progress.best == (best.value, best.number)
