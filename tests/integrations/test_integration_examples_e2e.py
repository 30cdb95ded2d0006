"""The Lightning and Hugging Face Trainer examples, tuned end to end by ``tuner sweep run`` on
local Ray (a few trials x 2 epochs), and their config cards exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def tuner(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNER_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.parametrize(
    ("spec", "name", "metric"),
    [
        ("examples/lightning/spec.yaml", "lightning-digits", "val_loss"),
        ("examples/hf_trainer/spec.yaml", "hf-trainer-digits", "eval_loss"),
    ],
    ids=["lightning", "hf_trainer"],
)
def test_example_sweep_runs_and_exports_its_card(tmp_path: Path, spec: str, name: str, metric: str) -> None:
    home = tmp_path / "home"
    done = tuner(home, ROOT, "sweep", "run", spec, "--n-trials", "3", "--max-epochs", "2")
    assert done.returncode == 0, done.stdout + done.stderr

    shown = tuner(home, ROOT, "sweep", "show", name, "--json")
    assert shown.returncode == 0, shown.stderr
    trials = json.loads(shown.stdout)["trial_records"]
    assert len(trials) == 3 and all(t["state"] == "completed" and t["epochs"] == 2 for t in trials), trials

    exported = tuner(home, ROOT, "export", name, "--format", "card")
    assert exported.returncode == 0, exported.stderr
    card = yaml.safe_load(exported.stdout)
    assert card["result"]["metric"] == metric and card["training"]["epochs"] == 2
    assert card["workload"]["name"].endswith(spec.replace("spec.yaml", "train.py:train"))
    optimizer = getattr(torch.optim, card["optimizer"]["name"])(
        torch.nn.Linear(2, 2).parameters(), **card["optimizer"]["kwargs"]
    )
    assert optimizer.param_groups[0]["lr"] == card["optimizer"]["kwargs"]["lr"]


def test_asha_stops_a_lightning_trial_through_the_callback(tmp_path: Path) -> None:
    """Ray stops a trial inside ``trial.report`` (``SystemExit``): through the callback it ends
    the fit and the trial is recorded early-stopped, not failed."""
    spec = {
        "name": "lightning-asha",
        "workload": f"{ROOT}/examples/lightning/train.py:train",
        "search_space": {"params": {"lr": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-1}}},
        "n_trials": 7,  # a rung stops trials once 3 completed ones show it ranks them as their ends do
        "max_epochs": 3,
        "metric": "val_loss",
        "scheduler": "asha",
        "asha": {"grace_period": 1, "reduction_factor": 2},
        "baseline": False,
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    home = tmp_path / "home"
    done = tuner(home, tmp_path, "sweep", "run", "spec.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = json.loads(tuner(home, tmp_path, "sweep", "show", "lightning-asha", "--json").stdout)["trial_records"]
    states = sorted((t["state"], t["epochs"]) for t in trials)
    assert ("early-stopped", 1) in states and ("completed", 3) in states, trials
    assert {state for state, _ in states} <= {"completed", "early-stopped"}, trials
