"""A valid spec and a store snapshot shared by the API tests (importable: conftest is not)."""

from __future__ import annotations

from tuner.service import SweepService

SPEC = {"name": "digits-api", "workload": "digits_mlp", "search_space": "adam", "n_trials": 4, "max_epochs": 2}


def snapshot(service: SweepService) -> tuple:
    """Everything the stores hold that a request could change."""
    return tuple((s.name, s.state, s.cancel_requested) for s in service.store.list()), tuple(service.studies.names())


def store_trials(service: SweepService, spec: dict, values: list[float | None]) -> None:
    """Store the sweep ``spec`` as if it had run, one trial per value: completed after ``max_epochs``
    epochs with that value, or failed (``None``) with a reason."""
    import optuna

    from tuner.spec import parse_spec
    from tuner.study import distributions

    parsed = parse_spec(spec)
    service.studies.create(parsed)
    study = optuna.load_study(study_name=parsed.name, storage=service.studies.storage)
    for value in values:
        trial = study.ask(distributions(parsed.search_space))
        trial.set_user_attr("epochs", parsed.max_epochs)
        if value is None:
            trial.set_user_attr("reason", "train_loss became nan at epoch 2")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            trial.report(value, parsed.max_epochs)
            study.tell(trial, value)
