"""Packed sweeps end to end: the CLI, the stores (Optuna, MLflow) and export, as for standard sweeps."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def tuner(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNER_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def mlflow_children(tracking_uri: str, sweep: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(sweep)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("adamtune.kind") == "trial"]


def history(tracking_uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    return [(m.step, m.value) for m in MlflowClient(tracking_uri=tracking_uri).get_metric_history(run_id, key)]


# -- the example through the CLI -------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("tuner-home")
    done = tuner(home, "sweep", "run", "examples/digits-packed.yaml", "--n-trials", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "best config:" in done.stdout
    return home


def test_cli_packed_sweep_has_n_trials_with_honest_states(cli_home: Path) -> None:
    import optuna

    study = optuna.load_study(study_name="digits-mlp-packed", storage=f"sqlite:///{cli_home / 'optuna.db'}")
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(20)) and all(t.state.is_finished() for t in trials)
    assert optuna.trial.TrialState.COMPLETE in {t.state for t in trials}
    for t in trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.user_attrs["epochs"] == 8 and sorted(t.intermediate_values) == list(range(1, 9))
        if t.state == optuna.trial.TrialState.PRUNED:
            assert t.value is not None and t.user_attrs["epochs"] < 8 and "scheduler" in t.user_attrs["reason"]
            assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs"] + 1))
        assert t.user_attrs["beta1"] == 1 - t.params["one_minus_beta1"]


def test_cli_packed_sweep_repeats_exactly_with_the_same_spec_and_seed(cli_home: Path, tmp_path: Path) -> None:
    again = tuner(tmp_path, "sweep", "run", "examples/digits-packed.yaml", "--n-trials", "20")
    assert again.returncode == 0, again.stdout + again.stderr

    def rows(home: Path) -> list[tuple]:
        shown = tuner(home, "sweep", "show", "digits-mlp-packed", "--json")
        assert shown.returncode == 0, shown.stderr
        return [
            (t["number"], t["state"], t["epochs"], t["value"], t["config"])
            for t in json.loads(shown.stdout)["trial_records"]
        ]

    assert rows(tmp_path) == rows(cli_home)


def test_cli_packed_sweep_has_one_mlflow_child_run_per_trial(cli_home: Path) -> None:
    import optuna

    uri = f"sqlite:///{cli_home / 'mlflow.db'}"
    study = optuna.load_study(study_name="digits-mlp-packed", storage=f"sqlite:///{cli_home / 'optuna.db'}")
    values = {t.number: t.value for t in study.trials}
    children = mlflow_children(uri, "digits-mlp-packed")
    assert sorted(int(r.data.tags["adamtune.trial_number"]) for r in children) == list(range(20))
    for run in children:
        assert {"lr", "beta1", "beta2", "eps", "weight_decay"} <= set(run.data.params)
        assert {"train_loss", "val_loss", "val_accuracy", "adam_update_rms_ratio"} <= set(run.data.metrics)
        state = run.data.tags["adamtune.state"]
        curve = history(uri, run.info.run_id, "val_loss")
        assert [step for step, _ in curve] == list(range(1, len(curve) + 1))
        # the run's (last) metric is the trial's last epoch, the value the study holds
        assert (
            run.data.metrics["val_loss"]
            == curve[-1][1]
            == pytest.approx(values[int(run.data.tags["adamtune.trial_number"])])
        )
        if state == "completed":
            assert len(curve) == 8
        else:
            assert state == "early-stopped" and len(curve) < 8 and run.data.tags["adamtune.reason"]


def test_cli_packed_sweep_exports_its_best_config(cli_home: Path) -> None:
    out = tuner(cli_home, "export", "digits-mlp-packed", "--format", "json")
    assert out.returncode == 0, out.stderr
    card = json.loads(out.stdout)
    assert card["source"]["sweep"] == "digits-mlp-packed" and card["source"]["epochs"] == 8
    shown = json.loads(tuner(cli_home, "sweep", "show", "digits-mlp-packed", "--json").stdout)
    assert shown["best"]["value"] == card["source"]["value"]
    assert "torch.optim.Adam(" in tuner(cli_home, "export", "digits-mlp-packed", "--format", "python").stdout


# -- in-process sweeps through SweepService ---------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Any]:
    import ray

    from tuner.service import SweepService
    from tuner.settings import Settings

    yield SweepService(Settings(home=tmp_path_factory.mktemp("tuner-home")))
    ray.shutdown()


def spec(**fields: Any) -> Any:
    from tuner.spec import parse_spec

    return parse_spec({"search_space": "adam", "seed": 0, "resources_per_trial": {"cpu": 1}, **fields})


# lr and the schedule searched: Ray Tune's OptunaSearch and the packed ask/tell both sample the categorical.
SCHEDULED = {
    "params": {
        "lr": {"distribution": "log_uniform", "low": 1.0e-3, "high": 3.0e-2},
        "warmup_fraction": {"distribution": "uniform", "low": 0.0, "high": 0.3},
        "schedule": {"choices": ["constant", "cosine", "linear"]},
    }
}


@pytest.mark.parametrize("space", ["adam", SCHEDULED], ids=["adam", "scheduled"])
def test_packed_and_standard_sweeps_give_the_same_curves(service: Any, space: Any) -> None:
    common = {"workload": "digits_mlp", "n_trials": 4, "max_epochs": 3, "scheduler": "none", "search_space": space}
    suffix = "" if space == "adam" else "-scheduled"
    service.run(spec(name=f"same-standard{suffix}", execution="standard", **common))
    service.run(spec(name=f"same-packed{suffix}", execution="auto", pack_size=4, **common))
    uri = service.settings.tracking_uri
    runs = {}
    for name in (f"same-standard{suffix}", f"same-packed{suffix}"):
        summary = service.summary(name)
        assert [t.state for t in summary.trials] == ["completed"] * 4
        runs[name] = {int(r.data.tags["adamtune.trial_number"]): r for r in mlflow_children(uri, name)}
        runs[name + "/configs"] = {t.number: t.config for t in summary.trials}
    configs = runs[f"same-standard{suffix}/configs"]
    assert configs == runs[f"same-packed{suffix}/configs"]  # one TPE seed: the same draws
    if space != "adam":
        tuned = [c for number, c in configs.items() if number != 0]  # trial 0: the baseline, torch's defaults
        assert len({c["schedule"] for c in tuned}) > 1 and all(c["warmup_fraction"] > 0 for c in tuned)
        assert (configs[0]["schedule"], configs[0]["warmup_fraction"]) == ("constant", 0.0)
    for number in range(4):
        standard, packed = runs[f"same-standard{suffix}"][number], runs[f"same-packed{suffix}"][number]
        assert standard.data.params == packed.data.params
        assert set(standard.data.metrics) == set(packed.data.metrics)
        for key in standard.data.metrics:
            want, got = history(uri, standard.info.run_id, key), history(uri, packed.info.run_id, key)
            assert [s for s, _ in got] == [s for s, _ in want] == [1, 2, 3]
            assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("execution", ["standard", "packed"])
def test_a_space_with_every_value_fixed_runs(service: Any, execution: str) -> None:
    name = f"fixed-{execution}"
    service.run(
        spec(
            name=name,
            workload="digits_mlp",
            search_space={"params": {"lr": 0.01, "beta1": 0.8}},
            n_trials=3,
            max_epochs=2,
            execution=execution,
            pack_size=3,
        )
    )
    trials = service.summary(name).trials
    assert [t.state for t in trials] == ["completed"] * 3
    assert [(t.config["lr"], t.config["beta1"]) for t in trials[1:]] == [(0.01, 0.8)] * 2  # trial 0: the baseline


def test_refill_early_stopping_and_divergence_are_recorded_honestly(service: Any) -> None:
    import optuna

    space = {"params": {"lr": {"distribution": "log_uniform", "low": 1e-3, "high": 1e13}, "beta1": 0.0001}}
    service.run(
        spec(
            name="mixed",
            workload="diabetes_mlp",
            search_space=space,
            n_trials=9,
            max_epochs=5,
            execution="packed",
            pack_size=3,
            lr_range_test=False,  # the test is about lrs that diverge: keep the whole range
        )
    )
    trials = service.summary("mixed").trials
    # packs of 3, then refills; with seed 0, trials 7 and 8 draw lr > 1e11 and diverge
    assert sorted(t.number for t in trials) == list(range(9))
    states = {t.state for t in trials}
    assert "failed" in states and "completed" in states
    for t in trials:
        if t.state == "failed":
            assert "became" in t.reason and t.value is None  # diverged, e.g. "train_loss became inf at epoch 1, step 2"
        elif t.state == "completed":
            assert t.epochs == 5 and math.isfinite(t.value)
        else:
            assert t.state == "early-stopped" and t.epochs < 5 and t.reason
    study = optuna.load_study(study_name="mixed", storage=service.settings.study_storage)
    assert all(t.user_attrs["epochs"] >= 1 for t in study.trials)
    tags = {
        int(r.data.tags["adamtune.trial_number"]): r.data.tags
        for r in mlflow_children(service.settings.tracking_uri, "mixed")
    }
    assert {n: tag["adamtune.state"] for n, tag in tags.items()} == {t.number: t.state for t in trials}
    assert all(tags[t.number]["adamtune.reason"] == t.reason for t in trials if t.reason)


@pytest.mark.parametrize("execution", ["packed", "standard"])
def test_cancel_stops_every_trial_and_records_why(service: Any, execution: str) -> None:
    from contextlib import nullcontext

    epochs: list[int] = []

    class CountEpochs:
        def trial_started(self, number: int, config: Any) -> None: ...
        def epoch_reported(self, number: int, epoch: int, metrics: Any) -> None:
            epochs.append(epoch)

        def trial_finished(self, number: int, outcome: Any) -> None: ...

    name = f"cancelled-{execution}"
    service.run(
        spec(
            name=name,
            workload="diabetes_mlp",
            n_trials=8,
            max_epochs=1000,
            scheduler="none",
            execution=execution,
            pack_size=3,
        ),
        progress=lambda spec, done: nullcontext(CountEpochs()),
        should_stop=lambda: len(epochs) >= 12,
    )
    trials = service.summary(name).trials
    if execution == "packed":
        assert len(trials) in (3, 6)  # one pack of 3 per lane (1 or 2 lanes); none started after the cancel
    assert trials and {t.state for t in trials} == {"failed"}
    assert all(
        t.reason in (f"sweep cancelled after epoch {t.epochs}", "sweep cancelled before the trial's first epoch")
        for t in trials
    )
    assert any(t.epochs >= 1 for t in trials)
    tags = {
        int(r.data.tags["adamtune.trial_number"]): r.data.tags
        for r in mlflow_children(service.settings.tracking_uri, name)
    }
    assert {tag["adamtune.state"] for tag in tags.values()} == {"failed"}
    assert all(tags[n]["adamtune.reason"].startswith("sweep cancelled") for n in tags)


def test_resume_reruns_a_trial_left_running_with_its_number_and_params(service: Any) -> None:
    import optuna

    from tuner.study import distributions

    first = spec(
        name="resumed",
        workload="diabetes_mlp",
        n_trials=2,
        max_epochs=2,
        scheduler="none",
        execution="packed",
        pack_size=4,
    )
    service.run(first)
    study = optuna.load_study(study_name="resumed", storage=service.settings.study_storage)
    crashed = study.ask(fixed_distributions=distributions(first.search_space))  # as a crash leaves it: RUNNING
    crashed.report(123.0, 1)

    service.run(first.with_overrides(n_trials=4), resume=True)
    trials = {t.number: t for t in service.summary("resumed").trials}
    assert sorted(trials) == [0, 1, 2, 3] and {t.state for t in trials.values()} == {"completed"}
    rerun = optuna.load_study(study_name="resumed", storage=service.settings.study_storage).trials[2]
    assert rerun.params == crashed.params and sorted(rerun.intermediate_values) == [1, 2]
    children = mlflow_children(service.settings.tracking_uri, "resumed")
    assert sorted(int(r.data.tags["adamtune.trial_number"]) for r in children) == [0, 1, 2, 3]
