"""PackStudy: asks, reports and tells reach the sampler at once and the stored study only when
the caller runs the deferred writes, in order, with the standard mode's states and records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tuner import parse_spec
from tuner.executor import Outcome
from tuner.executor._packed_study import PackStudy
from tuner.study import StudyStore

SPEC = parse_spec({"name": "pack-study", "workload": "digits_mlp", "search_space": "adam", "n_trials": 4, "max_epochs": 3,
                   "execution": "packed", "pack_size": 2})


def test_stored_writes_wait_for_the_caller_and_keep_their_order(tmp_path: Path) -> None:
    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(SPEC)
    deferred: list[Callable[[], None]] = []
    study = PackStudy(SPEC, studies.storage, defer=deferred.append)

    done, stopped = study.ask(), study.ask()
    assert done.config != stopped.config and done.number is None
    study.report(done, 1, 0.7)
    study.report(done, 2, float("nan"))  # not recorded, as Trial.report would refuse it
    study.report(done, 3, 0.5)
    study.report(stopped, 1, 2.0)
    study.tell(stopped, Outcome("early-stopped", 2.0, 1, "stopped by the scheduler after epoch 1"))
    study.tell(done, Outcome("completed", 0.5, 3))
    assert studies.summary("pack-study").trials == ()  # nothing stored yet

    for write in deferred:
        write()
    assert (done.number, stopped.number) == (0, 1)
    first, second = studies.summary("pack-study").trials
    assert (first.state, first.value, first.epochs, first.baseline) == ("completed", 0.5, 3, True)
    assert first.config == {k: v for k, v in done.config.items() if k != "baseline"}
    assert (second.state, second.value, second.reason) == ("early-stopped", 2.0, "stopped by the scheduler after epoch 1")
    import optuna

    stored = optuna.load_study(study_name="pack-study", storage=studies.storage).trials
    assert stored[0].intermediate_values == {1: 0.7, 3: 0.5}


def test_a_stored_trial_records_its_adam_values(tmp_path: Path) -> None:
    """Optuna's params hold ``one_minus_beta1``; the user attributes hold what the trial trained with."""
    import optuna

    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(SPEC)
    deferred: list[Callable[[], None]] = []
    asked = PackStudy(SPEC, studies.storage, defer=deferred.append).ask()
    for write in deferred:
        write()
    (stored,) = optuna.load_study(study_name="pack-study", storage=studies.storage).trials
    keys = ("lr", "beta1", "beta2", "eps", "weight_decay", "schedule", "warmup_fraction")
    assert {k: stored.user_attrs[k] for k in keys} == {k: asked.config[k] for k in keys}
    assert stored.user_attrs["beta2"] == 1 - stored.params["one_minus_beta2"]


def test_the_first_trial_is_torch_default_adam_and_a_resume_does_not_repeat_it(tmp_path: Path) -> None:
    import optuna

    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(SPEC)
    deferred: list[Callable[[], None]] = []
    study = PackStudy(SPEC, studies.storage, defer=deferred.append)
    baseline, tuned = study.ask(), study.ask()
    assert (baseline.baseline, tuned.baseline) == (True, False)
    assert {k: baseline.config[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "schedule")} == {
        "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "schedule": "constant"}
    for write in deferred:
        write()
    stored = optuna.load_study(study_name="pack-study", storage=studies.storage).trials[0]
    assert stored.user_attrs["baseline"] is True and stored.params["lr"] == 1e-3

    study.tell(tuned, Outcome("completed", 0.5, 3))
    deferred.clear()
    resumed = PackStudy(SPEC, studies.storage, defer=deferred.append)  # the baseline is left running: re-run
    again, fresh = resumed.ask(), resumed.ask()
    assert (again.number, again.baseline, fresh.baseline) == (0, True, False)


def test_baseline_false_samples_from_the_first_trial(tmp_path: Path) -> None:
    spec = SPEC.with_overrides(baseline=False)
    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(spec)
    asked = PackStudy(spec, studies.storage, defer=lambda write: None).ask()
    assert not asked.baseline and asked.config["lr"] != 1e-3
