"""Spec ``fail_fast``: a sweep whose trials keep failing alike stops asking, says why, and is not
listed as completed; one success, or failures for different reasons, keep it going."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tuner import SweepFailedError, parse_spec
from tuner.executor import SweepStudy
from tuner.records import Outcome
from tuner.settings import Settings
from tuner.study import StudyStore


def study_for(tmp_path: Path, **fields) -> SweepStudy:
    spec = parse_spec(
        {"name": "ff", "workload": "digits_mlp", "search_space": "adam", "n_trials": 10, "max_epochs": 2, **fields}
    )
    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(spec)
    return SweepStudy(spec, studies.storage, n_trials=10, window=1)


def fail_next(study: SweepStudy, reason: str) -> None:
    asked = study.ask()
    assert asked is not None
    study.tell(asked, Outcome("failed", None, 0, reason))


def test_three_alike_failures_stop_the_study_with_their_reason(tmp_path: Path) -> None:
    study = study_for(tmp_path)
    for _ in range(2):
        fail_next(study, "NameError: name 'modle' is not defined")
    assert study.stopped is None and study.asks_left == 8
    fail_next(study, "NameError: name 'modle' is not defined")
    assert "3 failed trials" in study.stopped and "NameError: name 'modle'" in study.stopped
    assert study.asks_left == 0 and study.ask() is None


def test_a_success_or_different_reasons_keep_it_going(tmp_path: Path) -> None:
    study = study_for(tmp_path)
    fail_next(study, "a")
    fail_next(study, "b")
    fail_next(study, "a")
    assert study.stopped is None  # two alike
    asked = study.ask()
    study.tell(asked, Outcome("completed", 0.5, 2))
    for _ in range(3):
        fail_next(study, "a")
    assert study.stopped is None  # one trial succeeded: the workload runs, some configs fail


def test_zero_never_stops(tmp_path: Path) -> None:
    study = study_for(tmp_path, fail_fast=0)
    for _ in range(10):
        fail_next(study, "same")
    assert study.stopped is None


@pytest.mark.slow
def test_a_broken_function_stops_the_sweep_with_one_clear_error(tmp_path: Path) -> None:
    from tuner import SweepService

    code = tmp_path / "broken.py"
    code.write_text(
        textwrap.dedent("""
        def train(trial):
            raise RuntimeError("the data folder data/ is missing")
    """)
    )
    spec = parse_spec(
        {"name": "broken", "workload": "broken.py:train", "search_space": "auto", "n_trials": 12, "max_epochs": 2},
        base_dir=tmp_path,
    )
    service = SweepService(Settings(home=tmp_path / "home"))
    with pytest.raises(SweepFailedError, match="same reason.*the data folder data/ is missing"):
        service.run(spec)
    status = service.status("broken")
    assert status.state == "incomplete" and status.trials["failed"] < 12 and status.trials["completed"] == 0
