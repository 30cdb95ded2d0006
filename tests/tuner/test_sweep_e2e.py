"""The walking skeleton end to end: `tuner sweep run` → stores → `tuner export` → a retrained torch Adam."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUNER = [sys.executable, "-m", "tuner"]
pytestmark = pytest.mark.slow


# `python -m tuner` that writes, as it exits, the modules it imported to the file $MODULES_OUT
PROBED_TUNER = [
    sys.executable,
    "-c",
    "import atexit, json, os, runpy, sys\n"
    "out = os.environ['MODULES_OUT']\n"
    "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules))))\n"
    "sys.argv[0] = 'tuner'\n"
    "runpy.run_module('tuner', run_name='__main__', alter_sys=True)",
]


def tuner(home: Path, *args: str, modules_out: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNER_HOME": str(home)}
    command = TUNER if modules_out is None else PROBED_TUNER
    if modules_out is not None:
        env["MODULES_OUT"] = str(modules_out)
    return subprocess.run([*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("tuner-home")
    done = tuner(home, "sweep", "run", "examples/digits.yaml", modules_out=home / "driver-modules.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "best config:" in done.stdout and "tuner ui" in done.stdout
    assert "starting Ray…" in done.stdout and "making the analysis…" in done.stdout  # each wait has a line
    live = re.search(r"trials finished; best val_loss (\S+) \(trial (\d+)\)", done.stdout)
    best = re.search(r"best config: trial (\d+)[^,\n]*, val_loss (\S+)", done.stdout)
    assert live and best and (live[2], live[1]) == (best[1], best[2]), done.stdout  # the live best is the result
    assert "against the baseline: val_loss " in done.stdout and "with torch's defaults" in done.stdout
    (home / "first-run.json").write_text(json.dumps(trial_table(home, "digits-mlp")))  # later tests add trials
    (home / "first-run.out").write_text(done.stdout)
    return home


def test_the_best_config_prints_as_a_short_table_with_1_minus_beta(home: Path) -> None:
    """4 significant digits; under each beta its 1 - beta (what the search samples, on a log
    scale); the schedule last."""
    out = (home / "first-run.out").read_text()
    number = int(re.search(r"best config: trial (\d+)", out)[1])
    rows, _ = json.loads((home / "first-run.json").read_text())
    config = next(row[4] for row in rows if row[0] == number)
    after = out.split("best config:", 1)[1].splitlines()[1:]
    table = [line.split() for line in itertools.takewhile(lambda line: line.startswith("  "), after)]
    expected = []
    for key in ("lr", "beta1", "beta2", "eps", "weight_decay"):
        expected.append([key, f"{config[key]:.4g}"])
        if key.startswith("beta"):
            expected.append([f"1-{key}", f"{1 - config[key]:.3e}"])
    assert table == [*expected, ["schedule", "constant"]], out


def test_the_driver_never_imports_mlflow(home: Path) -> None:
    """Its parent run, analysis and trials reach MLflow through the writer process
    (tuner/tracking/_writer.py), which imports it once for the sweep."""
    modules = json.loads((home / "driver-modules.json").read_text())
    assert "tuner.tracking" in modules and "optuna" in modules  # the probe saw the sweep's driver
    assert [m for m in modules if m.split(".")[0] == "mlflow"] == []


def test_ray_tune_keeps_no_per_trial_logs_of_its_own(home: Path) -> None:
    """Every report goes to the study and MLflow; Ray Tune's own CSV, JSON and TensorBoard
    loggers (work on the driver for each report) are off (tuner/executor/_ray.py)."""
    trial_folders = [p for p in (home / "ray" / "digits-mlp").iterdir() if p.is_dir()]
    assert trial_folders  # the probe looked where Tune keeps its trials
    logs = [p.name for folder in trial_folders for p in folder.iterdir() if p.is_file()]
    assert not [name for name in logs if name in ("progress.csv", "result.json") or "tfevents" in name], logs
    modules = json.loads((home / "driver-modules.json").read_text())
    assert "tensorboardX" not in modules


def test_mlflow_has_a_parent_and_one_child_per_trial(home: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits-mlp")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("adamtune.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("adamtune.kind") == "trial"]
    assert len(parents) == 1 and len(children) == 16
    parent = parents[0]
    assert parent.data.params["workload"] == "digits_mlp" and parent.data.params["n_trials"] == "16"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    counts = [parent.data.metrics[f"trials_{s}"] for s in ("completed", "early_stopped", "failed")]
    assert sum(counts) == 16 and counts[0] >= 1
    best = min(float(c.data.metrics["val_loss"]) for c in children if c.data.tags["adamtune.state"] == "completed")
    assert parent.data.metrics["best_val_loss"] == best
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"spec.json", "best_config.json", "analysis"} <= artifacts
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "analysis")}
    assert {"analysis/optimization_history.png", "analysis/importance.json"} <= plots
    assert (
        any(k.startswith("importance_fanova_") for k in parent.data.metrics)
        and "baseline_val_loss" in parent.data.metrics
    )
    (baseline,) = [c for c in children if c.data.tags.get("adamtune.baseline") == "true"]
    assert baseline.data.tags["adamtune.trial_number"] == "0" and baseline.data.tags["adamtune.state"] == "completed"
    assert (baseline.data.params["lr"], baseline.data.params["beta2"], baseline.data.params["schedule"]) == (
        "0.001",
        "0.999",
        "constant",
    )
    assert len(client.get_metric_history(baseline.info.run_id, "val_loss")) == 8  # ASHA never stops it early
    numbers = set()
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {"lr", "beta1", "beta2", "eps", "weight_decay"} <= set(run.data.params)
        assert 0 < float(run.data.params["beta1"]) < 1 and 0 < float(run.data.params["beta2"]) < 1
        state = run.data.tags["adamtune.state"]
        assert state in {"completed", "early-stopped", "failed"}
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert [m.step for m in history] == list(range(1, len(history) + 1))
        if state == "completed":
            assert len(history) == 8 and "val_accuracy" in run.data.metrics
            for diagnostic in ("adam_eps_dominated_frac", "adam_update_rms_ratio", "adam_nonfinite"):
                assert len(client.get_metric_history(run.info.run_id, diagnostic)) == 8
        numbers.add(int(run.data.tags["adamtune.trial_number"]))
    assert numbers == set(range(16))


def test_optuna_study_has_n_trials_with_honest_states(home: Path) -> None:
    import optuna

    study = optuna.load_study(study_name="digits-mlp", storage=f"sqlite:///{home / 'optuna.db'}")
    trials = study.get_trials()
    assert len(trials) == 16 and all(t.state.is_finished() for t in trials)
    states = {t.state for t in trials}
    assert optuna.trial.TrialState.COMPLETE in states
    for t in trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            assert t.value is not None and t.user_attrs["epochs"] < 8
        if t.state != optuna.trial.TrialState.FAIL:  # every epoch's value, the last one included
            assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs"] + 1))
        assert t.user_attrs["beta1"] == 1 - t.params["one_minus_beta1"] and t.user_attrs["schedule"] == "constant"


def test_exported_config_retrains_torch_adam_to_90_percent(home: Path) -> None:
    import torch

    from workers import get_workload

    out = tuner(home, "export", "digits-mlp", "--format", "json")
    assert out.returncode == 0, out.stderr
    card = json.loads(out.stdout)
    assert card["source"]["sweep"] == "digits-mlp" and len(card["betas"]) == 2

    workload = get_workload("digits_mlp")
    train, val = workload.load_data()
    model = workload.build_model(seed=0)
    opt = torch.optim.Adam(model.parameters(), **{k: card[k] for k in ("lr", "betas", "eps", "weight_decay")})
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        for idx in torch.randperm(len(train.x), generator=g).split(workload.batch_size):
            opt.zero_grad()
            workload.loss(model(train.x[idx]), train.y[idx]).backward()
            opt.step()
    with torch.no_grad():
        metrics = workload.evaluate(model(val.x), val.y)
    assert metrics["val_accuracy"] >= 0.9


def test_export_formats_list_and_show(home: Path) -> None:
    top = json.loads(tuner(home, "export", "digits-mlp", "--top", "3").stdout)
    values = [c["source"]["value"] for c in top]
    assert len(top) >= 2 and values == sorted(values)
    snippet = tuner(home, "export", "digits-mlp", "--format", "python").stdout
    assert snippet.count("torch.optim.Adam(") == 1
    assert "digits-mlp" in tuner(home, "sweep", "list").stdout
    probe = home / "show-modules.json"
    shown = json.loads(tuner(home, "sweep", "show", "digits-mlp", "--json", modules_out=probe).stdout)
    assert sum(shown["trials"].values()) == 16 and len(shown["trial_records"]) == 16
    # its MLflow ids come from its study (tuner.records.MlflowIds): MLflow is not opened to read them
    assert not [m for m in json.loads(probe.read_text()) if m.split(".")[0] == "mlflow"]
    from mlflow.tracking import MlflowClient

    runs = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}").search_runs([shown["mlflow_experiment_id"]])
    kinds = {(r.data.tags["adamtune.kind"], r.data.tags.get("adamtune.trial_number")): r.info.run_id for r in runs}
    by_number = {number: run for (kind, number), run in kinds.items() if kind == "trial"}
    assert kinds["sweep", None] == shown["mlflow_run_id"]
    assert [by_number[str(c["source"]["trial"])] for c in top] == [c["source"]["mlflow_run_id"] for c in top]
    assert shown["baseline"]["metric"] == "val_loss" and shown["trial_records"][0]["baseline"] is True


def test_card_export_loads_into_torch(home: Path, tmp_path: Path) -> None:
    import torch
    import yaml

    probe = tmp_path / "card-modules.json"
    out = tuner(home, "export", "digits-mlp", "--format", "card", "--batch-size", "128", modules_out=probe)
    assert out.returncode == 0, out.stderr
    assert not [m for m in json.loads(probe.read_text()) if m.split(".")[0] == "mlflow"]  # read from the study
    card = yaml.safe_load(out.stdout)
    assert (
        card["training"]["parameters"] > 0 and card["training"]["batch_size"] == 64 and card["transfer"]["kappa"] == 2.0
    )
    assert card["baseline"]["metric"] == "val_loss" and card["diagnostics"]
    optimizer = getattr(torch.optim, card["optimizer"]["name"])(
        torch.nn.Linear(2, 2).parameters(), **card["optimizer"]["kwargs"]
    )
    assert optimizer.param_groups[0]["lr"] == card["optimizer"]["kwargs"]["lr"]
    written = tuner(home, "export", "digits-mlp", "--format", "card", "-o", str(tmp_path / "card.json"))
    assert (
        written.returncode == 0 and json.loads((tmp_path / "card.json").read_text())["optimizer"] == card["optimizer"]
    )
    wrong = tuner(home, "export", "digits-mlp", "--format", "json", "--batch-size", "128")
    assert wrong.returncode == 2 and "--format card" in wrong.stderr


def test_rerun_needs_resume_and_resume_adds_only_missing_trials(home: Path) -> None:
    import optuna

    again = tuner(home, "sweep", "run", "examples/digits.yaml")
    assert again.returncode == 2 and "--resume" in again.stderr
    storage = f"sqlite:///{home / 'optuna.db'}"
    assert len(optuna.load_study(study_name="digits-mlp", storage=storage).trials) == 16

    resumed = tuner(home, "sweep", "run", "examples/digits.yaml", "--resume", "--n-trials", "18")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(optuna.load_study(study_name="digits-mlp", storage=storage).trials) == 18


def test_diverging_trials_fail_with_a_reason_without_crashing(tmp_path: Path) -> None:
    spec = tmp_path / "diverge.yaml"
    spec.write_text(
        "name: diverge\nworkload: diabetes_mlp\nn_trials: 2\nmax_epochs: 3\nscheduler: none\nbaseline: false\n"
        "search_space: {params: {lr: {distribution: log_uniform, low: 1.0e+10, high: 1.0e+11}, beta1: 0.0001}}\n"
    )
    done = tuner(tmp_path, "sweep", "run", str(spec))
    assert done.returncode == 1, done.stdout + done.stderr
    shown = json.loads(tuner(tmp_path, "sweep", "show", "diverge", "--json").stdout)
    assert [t["state"] for t in shown["trial_records"]] == ["failed", "failed"]
    assert all(t["reason"] for t in shown["trial_records"])


def trial_table(home: Path, name: str) -> tuple[list[tuple], dict]:
    """The sweep's trials (number, state, epochs, value, config, continues) and best config, without MLflow ids."""
    shown = tuner(home, "sweep", "show", name, "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    rows = [
        (t["number"], t["state"], t["epochs"], t["value"], t["config"], t["continues"]) for t in status["trial_records"]
    ]
    best = tuner(home, "export", name, "--format", "json")
    assert best.returncode == 0, best.stderr
    config = json.loads(best.stdout)
    config["source"].pop("mlflow_run_id")
    return rows, config


def test_the_same_spec_and_seed_give_the_same_trials_and_best_config(home: Path, tmp_path: Path) -> None:
    """Standard execution runs two trials at a time here; which finishes first must not matter."""
    again = tuner(tmp_path, "sweep", "run", "examples/digits.yaml")
    assert again.returncode == 0, again.stdout + again.stderr
    first = json.loads((home / "first-run.json").read_text())
    assert json.loads(json.dumps(trial_table(tmp_path, "digits-mlp"))) == first
