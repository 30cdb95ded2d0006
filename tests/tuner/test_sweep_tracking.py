"""What ``SweepService.run`` leaves in MLflow when a sweep ends: the experiment's kind and the
parent run's metrics. A sweep whose trials all finished is resumed, so no trial (and no Ray) runs."""

from __future__ import annotations

from pathlib import Path

from tuner import parse_spec
from tuner.service import SweepService
from tuner.settings import Settings

SPEC = parse_spec({"name": "tracked", "workload": "digits_mlp", "search_space": "adam", "n_trials": 3, "max_epochs": 2})


def test_resuming_an_older_sweep_tags_its_experiment_and_logs_its_result(tmp_path: Path) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from tuner.study import distributions

    service = SweepService(Settings(home=tmp_path))
    service.studies.create(SPEC)
    study = optuna.load_study(study_name=SPEC.name, storage=service.studies.storage)
    for value in (0.5, 0.25, None):  # two completed, one failed
        trial = study.ask(distributions(SPEC.search_space))
        trial.set_user_attr("epochs", 2)
        study.tell(trial, value, state=optuna.trial.TrialState.FAIL if value is None else None)
    client = MlflowClient(tracking_uri=service.settings.tracking_uri)
    # as an older adamtune made it: no kind tag
    experiment_id = client.create_experiment(
        SPEC.name, artifact_location=f"{service.settings.artifact_root}/{SPEC.name}"
    )

    service.run(SPEC, resume=True)

    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    parent = client.get_run(service.tracker.sweep_run_id(SPEC.name))
    counts = ("best_val_loss", "trials_completed", "trials_early_stopped", "trials_failed")
    assert {k: parent.data.metrics[k] for k in counts} == {
        "best_val_loss": 0.25,
        "trials_completed": 2,
        "trials_early_stopped": 0,
        "trials_failed": 1,
    }
    best = service.summary(SPEC.name).best()[0].config
    assert parent.data.metrics["best_lr"] == best["lr"] and parent.data.metrics["best_beta2"] == best["beta2"]
    assert {"analysis"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
