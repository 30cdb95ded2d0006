"""Re-evaluation end to end (local Ray): the top configs re-trained with new seeds, logged as
tagged child runs, recorded in the study, picked by mean; a second call trains nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Any]:
    import ray

    from tuner.service import SweepService
    from tuner.settings import Settings

    yield SweepService(Settings(home=tmp_path_factory.mktemp("tuner-home")))
    ray.shutdown()


def test_a_spec_with_reevaluate_retrains_the_top_configs_and_picks_by_mean(service: Any) -> None:
    from mlflow.tracking import MlflowClient

    from tuner.spec import parse_spec

    spec = parse_spec(
        {
            "name": "reeval",
            "workload": "diabetes_mlp",
            "search_space": "adam",
            "n_trials": 3,
            "max_epochs": 2,
            "scheduler": "none",
            "reevaluate": {"top_k": 2, "seeds": 2},
        }
    )
    done: list[tuple[int, int, str]] = []
    summary = service.run(spec, on_reevaluated=lambda number, seed, outcome: done.append((number, seed, outcome.state)))

    top = [t.number for t in summary.best(2)]
    assert sorted(done) == sorted((n, s, "completed") for n in top for s in (1, 2))  # new seeds: spec.seed + 1, + 2
    assert set(summary.reevaluations) == set(top) and all(len(v) == 2 for v in summary.reevaluations.values())
    means = {n: summary.seed_stats(n).mean for n in top}
    assert summary.pick()[0].number == min(means, key=means.get)

    client = MlflowClient(tracking_uri=service.settings.tracking_uri)
    experiment = client.get_experiment_by_name("reeval")
    runs = client.search_runs([experiment.experiment_id], "tags.`adamtune.kind` = 'reevaluation'")
    parent = service.tracker.sweep_run_id("reeval")
    assert len(runs) == 4 and all(r.data.tags["mlflow.parentRunId"] == parent for r in runs)
    assert {(int(r.data.tags["adamtune.trial_number"]), r.data.params["seed"]) for r in runs} == {
        (n, str(s)) for n in top for s in (1, 2)
    }
    assert all(len(client.get_metric_history(r.info.run_id, "val_loss")) == 2 for r in runs)
    metrics = client.get_run(parent).data.metrics
    assert metrics["reevaluated_val_loss_mean"] == pytest.approx(means[summary.pick()[0].number])

    card = service.card("reeval")
    assert card["source"]["trial"] == summary.pick()[0].number and len(card["result"]["seeds"]["values"]) == 2

    again = service.reevaluate("reeval", top_k=2, seeds=2)  # everything recorded: nothing re-trained
    assert again.reevaluations == summary.reevaluations
    assert len(client.search_runs([experiment.experiment_id], "tags.`adamtune.kind` = 'reevaluation'")) == 4


def test_reevaluating_a_sweep_without_a_completed_trial_is_refused(service: Any, tmp_path: Path) -> None:
    from tuner.errors import SweepNotFoundError

    with pytest.raises(SweepNotFoundError):
        service.reevaluate("no-such-sweep")


def test_the_local_ray_a_sweep_started_outlives_the_sweep(service: Any) -> None:
    """A library caller's next sweep (or task) finds Ray alive: Ray's processes die with the
    thread that started them, so a sweep must not start it on a short-lived thread."""
    import ray

    assert ray.is_initialized()  # the sweeps of the tests above started it
    assert ray.get(ray.remote(lambda: 42).options(num_cpus=0).remote(), timeout=60) == 42
