"""A queued sweep runs end to end with all three stores on PostgreSQL (skipped without a server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner import Settings, SweepService, parse_spec

pytestmark = pytest.mark.slow


def test_queued_sweep_on_postgresql(postgres_url_factory, tmp_path: Path) -> None:
    import optuna

    settings = Settings(
        home=tmp_path,
        db_url=postgres_url_factory(),
        optuna_storage=postgres_url_factory(),
        mlflow_uri=postgres_url_factory(),
    )
    service = SweepService(settings)
    spec = parse_spec(
        {
            "name": "pg",
            "workload": "diabetes_mlp",
            "search_space": "adamw",
            "n_trials": 3,
            "max_epochs": 2,
            "scheduler": "none",
            "baseline": False,
        }
    )  # the best is a tuned AdamW config
    status = service.submit(spec)
    sweep = service.store.claim_next()
    assert sweep is not None and sweep.id == status.id
    service.run_queued(sweep)

    done = service.status("pg")
    assert done.state == "completed" and done.trials["completed"] == 3 and done.mlflow_run_id
    assert len(optuna.load_study(study_name="pg", storage=settings.optuna_storage).trials) == 3
    card = service.best("pg")[0]
    assert card["decoupled_weight_decay"] is True and card["weight_decay"] > 0
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "mlflow.db").exists()
