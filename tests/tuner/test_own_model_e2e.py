"""A user's own ``train(trial)`` file, tuned end to end: shipped to the Ray workers through
``runtime_env``, failures recorded with reasons, the schedule exported as plain PyTorch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

USER_CODE = """
import json, math, os, sys
from pathlib import Path

import torch
from torch import nn


def broken_helper():
    return 1 / 0


def train(trial):
    out = Path(trial.workload_args["out"])
    model = nn.Linear(4, 1)
    optimizer = trial.optimizer(model.parameters())
    scheduler = trial.lr_scheduler(optimizer, total_steps=trial.max_epochs * 5)
    x = torch.randn(64, 4)
    y = x.sum(dim=1, keepdim=True)
    lrs = []
    for epoch in range(trial.max_epochs):
        for step in range(5):
            lrs.append(optimizer.param_groups[0]["lr"])
            loss = ((model(x) - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        (out / f"trial-{trial.number}.json").write_text(json.dumps({"file": __file__, "cwd": os.getcwd(), "sees": os.path.isfile("fit.py"), "lrs": lrs}))
        if trial.number == 1:
            broken_helper()
        trial.report(val_loss=math.nan if trial.number == 2 else loss.item())
"""

SPEC = """
name: own
workload: code/fit.py:train
workload_args: {{out: {out}}}
search_space:
  params:
    lr: {{distribution: log_uniform, low: 1.0e-3, high: 1.0e-2}}
    schedule: cosine
    warmup_fraction: 0.2
n_trials: 4
max_epochs: 3
scheduler: none
excludes: [data/]
"""


def tuner(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNER_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("own-model")
    (root / "code").mkdir()
    (root / "code" / "fit.py").write_text(USER_CODE)
    (root / "code" / "data").mkdir()
    (root / "code" / "data" / "big.bin").write_bytes(b"\0" * 1024)  # excluded from the upload
    out = root / "out"
    out.mkdir()
    (root / "spec.yaml").write_text(SPEC.format(out=out))
    home = root / "home"
    done = tuner(home, root, "sweep", "run", "spec.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    return {"root": root, "home": home, "out": out, "stdout": done.stdout}


def test_the_users_file_is_imported_on_the_worker_from_the_uploaded_runtime_env(sweep: dict) -> None:
    original = (sweep["root"] / "code" / "fit.py").resolve()
    for number in range(4):
        seen = json.loads((sweep["out"] / f"trial-{number}.json").read_text())
        imported = Path(seen["file"]).resolve()
        assert imported != original and imported.name == "fit.py"
        assert "runtime_resources" in imported.parts or any(p.startswith("_ray_pkg_") for p in imported.parts)
        cwd = Path(seen["cwd"]).resolve()  # a folder of the trial's own, holding the uploaded folder's files
        assert cwd != imported.parent and cwd.parent.name == "working_dirs" and seen["sees"]
        assert not (cwd / "fit.py").exists()  # once it ended, the folder keeps only what the trial wrote
        assert not (imported.parent / "data").exists()  # `excludes` kept it out of the upload
    assert len({json.loads((sweep["out"] / f"trial-{n}.json").read_text())["cwd"] for n in range(4)}) == 4


def test_trial_states_and_reasons(sweep: dict) -> None:
    import optuna

    study = optuna.load_study(study_name="own", storage=f"sqlite:///{sweep['home'] / 'optuna.db'}")
    trials = {t.number: t for t in study.get_trials()}
    assert sorted(trials) == [0, 1, 2, 3]
    assert trials[0].state == trials[3].state == optuna.trial.TrialState.COMPLETE
    assert trials[1].state == trials[2].state == optuna.trial.TrialState.FAIL
    reason = trials[1].user_attrs["reason"]
    assert reason.startswith("ZeroDivisionError: division by zero (at fit.py:")
    assert "in broken_helper <- fit.py:" in reason and "in train" in reason
    assert trials[2].user_attrs["reason"] == "val_loss became nan at epoch 1"


def test_mlflow_child_runs_have_params_metrics_and_state(sweep: dict) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{sweep['home'] / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("own")
    runs = client.search_runs([experiment.experiment_id], "tags.`adamtune.kind` = 'trial'")
    assert len(runs) == 4
    for run in runs:
        assert {"lr", "beta1", "beta2", "eps", "weight_decay", "schedule", "warmup_fraction"} <= set(run.data.params)
        baseline = run.data.tags.get("adamtune.baseline") == "true"  # trial 0: torch's defaults, constant lr
        assert run.data.params["schedule"] == ("constant" if baseline else "cosine")
        assert baseline == (run.data.tags["adamtune.trial_number"] == "0")
        state = run.data.tags["adamtune.state"]
        if state == "completed":
            history = client.get_metric_history(run.info.run_id, "val_loss")
            assert [m.step for m in history] == [1, 2, 3]
            assert "adam_eps_dominated_frac" in run.data.metrics
        else:
            assert state == "failed" and run.data.tags["adamtune.reason"]


def test_exported_schedule_equals_the_trials_per_step_lr(sweep: dict) -> None:
    import math

    import torch

    exported = tuner(sweep["home"], sweep["root"], "export", "own", "--format", "python")
    assert exported.returncode == 0, exported.stderr
    card = json.loads(tuner(sweep["home"], sweep["root"], "export", "own", "--format", "json").stdout)
    used = json.loads((sweep["out"] / f"trial-{card['source']['trial']}.json").read_text())["lrs"]
    namespace = {"torch": torch, "math": math, "model": torch.nn.Linear(4, 1)}
    exec(exported.stdout.replace("total_steps = ", "total_steps = 15  # ", 1), namespace)
    optimizer, scheduler = namespace["optimizer"], namespace["scheduler"]
    replayed = []
    for _ in range(15):
        replayed.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert replayed == pytest.approx(used, rel=1e-12, abs=0)
    assert len(set(used)) > 3  # warm-up then cosine: the lr changed per step


def test_example_own_model_spec_runs_and_exports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = tuner(home, ROOT, "sweep", "run", "examples/own_model/spec.yaml", "--n-trials", "3", "--max-epochs", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    exported = tuner(home, ROOT, "export", "own-model", "--format", "json")
    card = json.loads(exported.stdout)
    assert card["source"]["workload"].endswith("examples/own_model/train.py:train") and card["source"]["epochs"] == 4
    code = textwrap.dedent(
        """
        import json, sys, torch
        card = json.load(sys.stdin)
        torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), **{k: card[k] for k in ("lr", "betas", "eps", "weight_decay")})
        print("ok")
        """
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], input=exported.stdout, capture_output=True, text=True, check=True
    )
    assert ran.stdout.strip() == "ok"
