"""A script tuned as it is, end to end through `tuner sweep run` and Ray: one trial at a time,
so Ray runs the trials one after another in reused worker processes; every trial starts from
the module-level model's initial weights, runs in its own folder, and gets its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import argparse, json, os, sys
from pathlib import Path
import torch
from workers import trial

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

torch.manual_seed(0)
model = torch.nn.Linear(8, 1)
start = float(sum(p.detach().sum() for p in model.parameters()))
optimizer = trial.optimizer(model.parameters())
x = torch.randn(64, 8)
for epoch in range(args.epochs):
    for _ in range(10):
        loss = ((model(x) - 1) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), "model.pt")
    trial.report(val_loss=loss.item())
Path(args.out, f"trial-{trial.number}.json").write_text(json.dumps(
    {"pid": os.getpid(), "start": start, "cwd": os.getcwd(), "dir": str(trial.dir), "argv": sys.argv[1:],
     "files": sorted(os.listdir("."))}))
"""


def test_a_script_sweep_runs_each_trial_fresh_in_its_own_folder(tmp_path: Path) -> None:
    from ray._private.utils import get_num_cpus

    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(SCRIPT)
    (code / "notes.txt").write_text("a file of the user's folder\n")
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "spec.yaml").write_text(
        f"name: script-e2e\nworkload: code/train.py\nscript_args: [--epochs, '2', --out, {out}]\n"
        "search_space: {params: {lr: {distribution: log_uniform, low: 1.0e-3, high: 1.0e-1}}}\n"
        f"n_trials: 4\nmax_epochs: 2\nscheduler: none\nresources_per_trial: {{cpu: {get_num_cpus()}}}\n"
    )
    env = {**os.environ, "TUNER_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "tuner", "sweep", "run", "spec.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 completed" in done.stdout, done.stdout
    seen = [json.loads((out / f"trial-{n}.json").read_text()) for n in range(4)]
    assert len({s["start"] for s in seen}) == 1  # a reused process does not keep the last trial's weights
    assert len({s["pid"] for s in seen}) < 4  # (trials did share a worker process)
    assert all(s["argv"] == ["--epochs", "2", "--out", str(out)] for s in seen)
    assert len({s["cwd"] for s in seen}) == 4 and all(s["cwd"] == s["dir"] for s in seen)
    assert all(s["files"] == ["model.pt", "notes.txt", "train.py"] for s in seen)  # its checkpoint, the user's files
    assert not (code / "model.pt").exists()
