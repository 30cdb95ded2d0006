"""StudySearcher and StudyScheduler driven as Ray Tune drives them: the scheduler sees every
result first (also the one it stops a trial on), the searcher hears how the trial ended, and
the sweep's observers hear each trial's start, epochs and end."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import optuna
from ray.tune.schedulers import TrialScheduler

from tuner import parse_spec
from tuner.executor import Cancel, StudyScheduler, StudySearcher, SweepStudy
from tuner.records import Outcome
from tuner.study import StudyStore

SPEC = parse_spec(
    {
        "name": "searcher",
        "workload": "digits_mlp",
        "search_space": "adam",
        "n_trials": 5,
        "max_epochs": 3,
        "baseline": False,
        "asha": {"grace_period": 1, "reduction_factor": 4},
    }
)


class Heard:
    """A sweep observer that keeps what it heard, in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def trial_started(self, number: int, config: dict) -> None:
        self.events.append(("started", number, "lr" in config))

    def epoch_reported(self, number: int, epoch: int, metrics: dict) -> None:
        self.events.append(("epoch", number, epoch, metrics))

    def trial_finished(self, number: int, outcome: Outcome) -> None:
        self.events.append(("finished", number, outcome.state, outcome.epochs, outcome.reason, outcome.node))


def setup(tmp_path: Path, heard: Heard | None = None) -> tuple[StudyStore, StudySearcher, StudyScheduler]:
    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(SPEC)
    study = SweepStudy(SPEC, studies.storage, n_trials=5, window=1)
    search = StudySearcher(study, heard or Heard(), metric="val_loss", mode="min", max_epochs=3, cancel=Cancel())
    return studies, search, StudyScheduler(study, search, metric="val_loss")


def run(search: StudySearcher, scheduler: StudyScheduler, trial_id: str, values: list[float]) -> list[str]:
    """Feed ``values`` for epochs 1, 2, … as Tune does until the scheduler stops the trial; then end it."""
    decisions, result = [], None
    for epoch, value in enumerate(values, start=1):
        result = {"val_loss": value, "epoch": epoch, "training_iteration": epoch}
        decisions.append(scheduler.on_trial_result(None, SimpleNamespace(trial_id=trial_id), result))
        if decisions[-1] == TrialScheduler.STOP:
            break
    search.on_trial_complete(trial_id, result)
    return decisions


def test_every_epoch_is_recorded_once_and_stops_are_pruned(tmp_path: Path) -> None:
    studies, search, scheduler = setup(tmp_path)
    config = search.suggest("t0")
    assert config["trial_number"] == 0 and 0 < config["lr"] and "baseline" not in config
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when a step is reported twice
        assert run(search, scheduler, "t0", [0.5, 0.4, 0.3]) == [TrialScheduler.CONTINUE] * 3
        # the rung at epoch 1 judges once 3 completed trials show it ranks them as their ends do
        for n, values in ((1, [0.6, 0.5, 0.4]), (2, [0.7, 0.6, 0.5])):
            search.suggest(f"t{n}")
            assert run(search, scheduler, f"t{n}", values) == [TrialScheduler.CONTINUE] * 3
        search.suggest("t3")
        assert run(search, scheduler, "t3", [0.9, 0.8, 0.7]) == [TrialScheduler.STOP]
    trials = optuna.load_study(study_name=SPEC.name, storage=studies.storage).trials
    assert (trials[0].state, trials[0].value, trials[0].intermediate_values) == (
        optuna.trial.TrialState.COMPLETE,
        0.3,
        {1: 0.5, 2: 0.4, 3: 0.3},
    )
    assert (trials[3].state, trials[3].intermediate_values, trials[3].user_attrs["epochs"]) == (
        optuna.trial.TrialState.PRUNED,
        {1: 0.9},
        1,
    )


def test_suggest_waits_while_the_study_must_learn_from_a_running_trial(tmp_path: Path) -> None:
    studies, search, scheduler = setup(tmp_path)
    assert search.suggest("t0") is not None
    assert search.suggest("t1") is None  # window 1: the next config learns from t0
    assert search.suggest("t0")["trial_number"] == 0  # asked again for the same trial: the same config
    run(search, scheduler, "t0", [0.5, 0.4, 0.3])
    assert search.suggest("t1")["trial_number"] == 1


def test_a_failed_worker_fails_the_trial_with_a_reason(tmp_path: Path) -> None:
    studies, search, _ = setup(tmp_path)
    search.suggest("t0")
    search.on_trial_complete("t0", None, error=True)
    (trial,) = studies.summary(SPEC.name).trials
    assert trial.state == "failed" and "worker failed" in trial.reason


def test_observers_hear_start_metrics_and_end_and_a_failure_s_own_reason(tmp_path: Path) -> None:
    heard = Heard()
    studies, search, scheduler = setup(tmp_path, heard)
    search.suggest("t0")
    scheduler.on_trial_add(None, SimpleNamespace(trial_id="t0"))
    result = {"val_loss": 0.5, "train_loss": 0.6, "epoch": 1, "training_iteration": 1, "pid": 7, "config/lr": 0.1}
    scheduler.on_trial_result(None, SimpleNamespace(trial_id="t0"), result)
    error = RuntimeError("Traceback (most recent call last):\n  ...\nZeroDivisionError: division by zero")
    failed = SimpleNamespace(trial_id="t0", get_error=lambda: error, last_result={**result, "ray_node": "n1"})
    scheduler.on_trial_error(None, failed)  # Tune retries it: added again, starts again
    scheduler.on_trial_add(None, SimpleNamespace(trial_id="t0"))
    scheduler.on_trial_error(None, failed)
    search.on_trial_complete("t0", None, error=True)
    assert heard.events == [
        ("started", 0, True),
        ("epoch", 0, 1, {"val_loss": 0.5, "train_loss": 0.6}),  # no Ray keys, no flattened config
        ("started", 0, True),
        ("finished", 0, "failed", 1, "ZeroDivisionError: division by zero", "n1"),
    ]
    (trial,) = studies.summary(SPEC.name).trials  # the study's reason is one for every worker failure (fail_fast)
    assert trial.state == "failed" and "worker failed" in trial.reason
