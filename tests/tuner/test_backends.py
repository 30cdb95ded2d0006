"""The study (Optuna) and tracking (MLflow) adapters behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner import SweepNotFoundError, SweepSummary, TrialRecord, parse_spec
from tuner.study import StudyStore
from tuner.tracking import Tracker

SPEC = parse_spec(
    {"name": "backend-test", "workload": "digits_mlp", "search_space": "adam", "n_trials": 3, "max_epochs": 4}
)


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"study": f"sqlite:///{tmp_path / 'optuna.db'}", "mlflow": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    factory = request.getfixturevalue("postgres_url_factory")
    return {"study": factory(), "mlflow": factory()}


def test_study_store_round_trip(urls) -> None:
    import optuna

    from tuner.study import distributions

    studies = StudyStore(urls["study"])
    assert not studies.exists("backend-test")
    studies.create(SPEC)
    assert studies.names() == ["backend-test"]
    study = optuna.load_study(study_name="backend-test", storage=studies.storage)
    space = distributions(SPEC.search_space)
    done, pruned, failed, running = (study.ask(space) for _ in range(4))
    done.report(0.5, 1)
    study.tell(done, 0.4)
    pruned.report(1.5, 1)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    failed.set_user_attr("reason", "train_loss became nan at epoch 1, step 3")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)

    partial = study.ask()  # what a reader sees while a sampler is still suggesting a trial's params
    partial.suggest_float("lr", 1e-5, 1e-1, log=True)

    summary = studies.summary("backend-test")
    assert [t.state for t in summary.trials] == ["completed", "early-stopped", "failed", "running", "running"]
    assert summary.trials[4].config == {}
    assert summary.trials[1].value == 1.5 and summary.trials[2].reason.startswith("train_loss became nan")
    assert 0 < summary.trials[0].config["beta2"] < 1 and summary.spec["n_trials"] == 3
    assert [t.number for t in summary.best(5)] == [0]
    assert summary.finished == 3
    with pytest.raises(SweepNotFoundError, match="backend-test"):
        studies.summary("other")


def test_a_study_without_its_spec_is_not_a_sweep_yet(urls) -> None:
    """Optuna creates a study and sets its spec in two transactions; a reader in between
    (the API while the runner starts a sweep) sees no sweep rather than a broken one."""
    import optuna

    studies = StudyStore(urls["study"])
    optuna.create_study(storage=studies.storage, study_name="backend-test")  # the first write only
    assert studies.names() == [] and not studies.exists("backend-test")
    with pytest.raises(SweepNotFoundError, match="backend-test"):
        studies.summary("backend-test")
    studies.create(SPEC)  # after a crash between the writes, creating again completes it
    assert studies.summary("backend-test").spec["n_trials"] == 3


def test_tracker_round_trip(urls, tmp_path: Path) -> None:
    tracker = Tracker(urls["mlflow"], (tmp_path / "artifacts").as_uri())
    parent = tracker.start_sweep("backend-test", SPEC.model_dump(mode="json"))
    assert tracker.sweep_run_id("backend-test") == parent
    config = SPEC.search_space.to_adam_config(
        {"lr": 1e-3, "one_minus_beta1": 0.1, "one_minus_beta2": 1e-3, "eps": 1e-8}
    )
    first = tracker.start_trial("backend-test", parent, 0, config)
    tracker.log_epoch(first, {"val_loss": 1.0}, 1)
    again = tracker.start_trial("backend-test", parent, 0, config)  # a re-run replaces the old run
    for epoch, loss in enumerate([0.9, 0.5], start=1):
        tracker.log_epoch(again, {"val_loss": loss, "train_loss": loss + 0.1}, epoch)
    tracker.end_trial(again, "completed")
    other = tracker.start_trial("backend-test", parent, 1, config)
    tracker.end_trial(other, "failed", "train_loss became nan")
    tracker.finish_sweep(parent, SweepSummary("backend-test", SPEC.model_dump(mode="json")), [{"lr": 1e-3}])

    assert tracker.trial_run_ids("backend-test") == {0: again, 1: other}
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=urls["mlflow"])
    run = client.get_run(again)
    assert run.data.params["beta1"] == "0.9" and run.data.tags["adamtune.state"] == "completed"
    assert (run.data.params["schedule"], run.data.params["warmup_fraction"]) == ("constant", "0.0")
    assert [m.value for m in client.get_metric_history(again, "val_loss")] == [0.9, 0.5]
    assert client.get_run(other).data.tags["adamtune.reason"] == "train_loss became nan"
    assert {a.path for a in client.list_artifacts(parent)} == {"spec.json", "best_config.json"}


def test_the_experiment_opens_on_training_runs_in_the_mlflow_ui(urls, tmp_path: Path) -> None:
    """MLflow's UI opens an experiment on its GenAI traces unless ``mlflow.experimentKind`` says
    otherwise; an experiment an older adamtune made gets the tag when its sweep starts again."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=urls["mlflow"])
    tracker = Tracker(urls["mlflow"], (tmp_path / "artifacts").as_uri())
    tracker.start_sweep("backend-test", SPEC.model_dump(mode="json"))
    older = client.create_experiment(
        "older-sweep", (tmp_path / "artifacts").as_uri()
    )  # as adamtune made them before the tag
    assert tracker.experiment_id("older-sweep") == older  # reading leaves it alone
    assert "mlflow.experimentKind" not in client.get_experiment(older).tags
    assert Tracker(urls["mlflow"], None).experiment_id("older-sweep", create=True) == older

    for name in ("backend-test", "older-sweep"):
        assert client.get_experiment_by_name(name).tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_finished_sweep_has_its_result_as_parent_run_metrics(urls, tmp_path: Path) -> None:
    """Sweeps can be compared and sorted by their best value in MLflow."""
    from mlflow.tracking import MlflowClient

    tracker = Tracker(urls["mlflow"], (tmp_path / "artifacts").as_uri())
    parent = tracker.start_sweep("backend-test", SPEC.model_dump(mode="json"))
    trials = (
        TrialRecord(0, "completed", {}, 0.4, 4),
        TrialRecord(1, "completed", {}, 0.3, 4),
        TrialRecord(2, "early-stopped", {}, 0.2, 1),  # not a result: it stopped early
        TrialRecord(3, "failed", {}, None, 2, "train_loss became nan"),
    )
    tracker.finish_sweep(parent, SweepSummary("backend-test", SPEC.model_dump(mode="json"), trials), [])

    metrics = MlflowClient(tracking_uri=urls["mlflow"]).get_run(parent).data.metrics
    assert metrics == {"best_val_loss": 0.3, "trials_completed": 2, "trials_early_stopped": 1, "trials_failed": 1}


def test_a_new_recommendation_rewrites_the_finished_parent_runs_description(tmp_path: Path) -> None:
    """``tuner reevaluate`` can change the recommended trial after the sweep ended: the parent
    run's description follows, and the run stays finished."""
    from mlflow.tracking import MlflowClient

    url = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(url, (tmp_path / "artifacts").as_uri())
    parent = tracker.start_sweep("backend-test", SPEC.model_dump(mode="json"))
    spec = SPEC.model_dump(mode="json")
    trials = (TrialRecord(0, "completed", {"lr": 1e-3}, 0.4, 4), TrialRecord(1, "completed", {"lr": 3e-3}, 0.3, 4))
    tracker.finish_sweep(parent, SweepSummary("backend-test", spec, trials), [])
    client = MlflowClient(tracking_uri=url)
    assert "Recommended: trial 1" in client.get_run(parent).data.tags["mlflow.note.content"]

    better = (trials[0], TrialRecord(1, "completed", {"lr": 3e-3}, 0.5, 4))  # e.g. its re-evaluated mean
    tracker.describe_sweep(parent, SweepSummary("backend-test", spec, better))
    run = client.get_run(parent)
    assert "Recommended: trial 0" in run.data.tags["mlflow.note.content"]
    assert run.info.status == "FINISHED"


def test_log_trial_writes_many_epochs_and_the_end_at_once(urls, tmp_path: Path) -> None:
    """The MLflow writer coalesces a trial's queued epochs; more than MLflow's 1,000 values per
    batch go in several writes, and the end's tags come with the last."""
    from mlflow.tracking import MlflowClient

    tracker = Tracker(urls["mlflow"], (tmp_path / "artifacts").as_uri())
    parent = tracker.start_sweep("backend-test", SPEC.model_dump(mode="json"))
    config = SPEC.search_space.to_adam_config(
        {"lr": 1e-3, "one_minus_beta1": 0.1, "one_minus_beta2": 1e-3, "eps": 1e-8}
    )
    run_id = tracker.start_trial("backend-test", parent, 0, config, replace=False)
    epochs = [(e, {f"m{k}": e + k / 10 for k in range(5)}) for e in range(1, 251)]  # 1,250 values
    tracker.log_trial(run_id, epochs, state="early-stopped", reason="stopped by the scheduler after epoch 250")

    client = MlflowClient(tracking_uri=urls["mlflow"])
    history = client.get_metric_history(run_id, "m4")
    assert sorted((m.step, m.value) for m in history) == [(e, e + 0.4) for e in range(1, 251)]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["adamtune.state"] == "early-stopped"
    assert run.data.metrics["m0"] == 250.0


def test_sqlite_study_storage_journals_in_wal(tmp_path: Path) -> None:
    """Readers (``tuner serve``) never wait for a sweep's writes, and each write syncs less."""
    studies = StudyStore(f"sqlite:///{tmp_path / 'optuna.db'}")
    studies.create(SPEC)
    with studies.storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_reading_names_mlflow_runs_from_the_study_and_else_from_mlflow(urls, tmp_path: Path) -> None:
    """A sweep's status, config cards and card name its MLflow runs (and the card its ``adam_*``
    diagnostics) from the ids its study holds (tuner.records.MlflowIds, recorded by its run) without
    opening MLflow, and for a sweep from before they were recorded, from MLflow."""
    import optuna

    from tuner.records import MlflowIds
    from tuner.service import Stores, SweepService
    from tuner.settings import Settings
    from tuner.study import distributions

    studies = StudyStore(urls["study"])
    studies.create(SPEC)
    assert studies.summary("backend-test").mlflow == MlflowIds()  # none recorded yet
    study = optuna.load_study(study_name="backend-test", storage=studies.storage)
    trial = study.ask(distributions(SPEC.search_space))
    trial.report(0.4, 1)
    study.tell(trial, 0.4)
    tracker = Tracker(urls["mlflow"], (tmp_path / "artifacts").as_uri())
    parent = tracker.start_sweep("backend-test", SPEC.model_dump(mode="json"))
    run = tracker.start_trial("backend-test", parent, 0, studies.summary("backend-test").trials[0].config)
    tracker.log_epoch(run, {"val_loss": 0.4, "adam_nonfinite": 0.0, "adam_update_rms_ratio": 1e-3}, 1)
    tracker.end_trial(run, "completed")
    experiment = tracker.experiment_id("backend-test")
    diagnostics = {"adam_nonfinite": 0.0, "adam_update_rms_ratio": 1e-3}

    class Unopened:
        def __getattr__(self, name: str):
            raise AssertionError(f"MLflow opened for {name}")

    settings = Settings(home=tmp_path / "home")
    older = SweepService(settings, stores=Stores(settings, studies=studies, tracker=tracker))
    newer = SweepService(settings, stores=Stores(settings, studies=studies, tracker=Unopened()))
    for service in (older, newer):
        status = service.status("backend-test")
        assert (status.mlflow_experiment_id, status.mlflow_run_id) == (experiment, parent)
        assert service.best("backend-test")[0]["source"]["mlflow_run_id"] == run
        card = service.card("backend-test")
        assert card["source"]["mlflow_run_id"] == run and card["diagnostics"] == diagnostics
        studies.record_mlflow("backend-test", MlflowIds(experiment, parent, {0: run}, {0: diagnostics}))
    assert studies.summary("backend-test").mlflow == MlflowIds(experiment, parent, {0: run}, {0: diagnostics})
