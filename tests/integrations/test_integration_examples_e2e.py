"""The Lightning and Hugging Face Trainer examples, tuned end to end by ``tuner sweep run`` on
local Ray (a few trials x 2-3 epochs), and their config cards exported: the Hugging Face spec as
shipped, the Lightning one with ASHA set to stop a trial (one sweep covers both)."""

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


def assert_card_loads_into_torch(home: Path, cwd: Path, name: str, metric: str, epochs: int, workload: str) -> None:
    """``tuner export NAME --format card`` names the metric, epochs and workload, and its optimizer
    kwargs build the named ``torch.optim`` class with that lr."""
    exported = tuner(home, cwd, "export", name, "--format", "card")
    assert exported.returncode == 0, exported.stderr
    card = yaml.safe_load(exported.stdout)
    assert card["result"]["metric"] == metric and card["training"]["epochs"] == epochs
    assert card["workload"]["name"].endswith(workload)
    optimizer = getattr(torch.optim, card["optimizer"]["name"])(
        torch.nn.Linear(2, 2).parameters(), **card["optimizer"]["kwargs"]
    )
    assert optimizer.param_groups[0]["lr"] == card["optimizer"]["kwargs"]["lr"]


def test_the_hf_trainer_example_sweep_runs_and_exports_its_card(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = tuner(home, ROOT, "sweep", "run", "examples/hf_trainer/spec.yaml", "--n-trials", "3", "--max-epochs", "2")
    assert done.returncode == 0, done.stdout + done.stderr

    shown = tuner(home, ROOT, "sweep", "show", "hf-trainer-digits", "--json")
    assert shown.returncode == 0, shown.stderr
    trials = json.loads(shown.stdout)["trial_records"]
    assert len(trials) == 3 and all(t["state"] == "completed" and t["epochs"] == 2 for t in trials), trials
    assert_card_loads_into_torch(home, ROOT, "hf-trainer-digits", "eval_loss", 2, "examples/hf_trainer/train.py:train")


def test_asha_stops_a_lightning_example_trial_through_the_callback_and_the_card_exports(tmp_path: Path) -> None:
    """The Lightning example's spec, its lr range widened and ASHA set to stop early: Ray stops
    a trial inside ``trial.report`` (``SystemExit``); through the callback it ends the fit and
    the trial is recorded early-stopped, not failed. The sweep's card loads into torch."""
    spec = yaml.safe_load((ROOT / "examples/lightning/spec.yaml").read_text())
    spec.update(
        {
            "name": "lightning-asha",
            "workload": f"{ROOT}/examples/lightning/train.py:train",  # the spec's own, from this folder
            "search_space": {"params": {"lr": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-1}}},
            "n_trials": 7,  # a rung stops trials once 3 completed ones show it ranks them as their ends do
            "max_epochs": 3,
            "asha": {"grace_period": 1, "reduction_factor": 2},
            "baseline": False,
        }
    )
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    home = tmp_path / "home"
    done = tuner(home, tmp_path, "sweep", "run", "spec.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = json.loads(tuner(home, tmp_path, "sweep", "show", "lightning-asha", "--json").stdout)["trial_records"]
    states = sorted((t["state"], t["epochs"]) for t in trials)
    assert ("early-stopped", 1) in states and ("completed", 3) in states, trials
    assert {state for state, _ in states} <= {"completed", "early-stopped"}, trials
    assert_card_loads_into_torch(home, tmp_path, "lightning-asha", "val_loss", 3, "examples/lightning/train.py:train")
