"""A script tuned as it is, end to end through `tuner sweep run` and Ray: one trial at a time,
so Ray runs the trials one after another in reused worker processes; every trial starts from
the module-level model's initial weights, runs in its own folder, and gets its command line.
Like pytorch/examples' word_language_model/main.py it saves its best epoch's model itself, and
`tuner export NAME --artifacts DIR` hands back the recommended trial's checkpoint."""

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
parser.add_argument("--save", default="model.pt")
args = parser.parse_args()

torch.manual_seed(0)
model = torch.nn.Linear(8, 1)
start = float(sum(p.detach().sum() for p in model.parameters()))
optimizer = trial.optimizer(model.parameters())
x = torch.randn(64, 8)
best_val_loss = None
for epoch in range(args.epochs):
    for _ in range(10):
        loss = ((model(x) - 1) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    val_loss = ((model(x) - 1) ** 2).mean().item()
    trial.report(val_loss=val_loss)
    if best_val_loss is None or val_loss < best_val_loss:  # its own checkpoint: the best epoch's model
        torch.save(model.state_dict(), args.save)
        best_val_loss, saved = val_loss, float(sum(p.detach().sum() for p in model.parameters()))
Path(args.out, f"trial-{trial.number}.json").write_text(json.dumps(
    {"pid": os.getpid(), "start": start, "cwd": os.getcwd(), "dir": str(trial.dir), "argv": sys.argv[1:],
     "files": sorted(os.listdir(".")), "saved": saved}))
"""


def tuner(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNER_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_a_script_sweep_runs_each_trial_fresh_in_its_own_folder(tmp_path: Path) -> None:
    import torch

    # The CPUs local Ray will detect (a container's quota included), so that one trial takes all of
    # them; Ray has no public API for that count before ray.init (its detection: ray-project/ray#34846).
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
    home = tmp_path / "home"
    done = tuner("sweep", "run", "spec.yaml", cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 completed" in done.stdout, done.stdout
    seen = [json.loads((out / f"trial-{n}.json").read_text()) for n in range(4)]
    assert len({s["start"] for s in seen}) == 1  # a reused process does not keep the last trial's weights
    assert len({s["pid"] for s in seen}) < 4  # (trials did share a worker process)
    assert all(s["argv"] == ["--epochs", "2", "--out", str(out)] for s in seen)
    assert len({s["cwd"] for s in seen}) == 4 and all(s["cwd"] == s["dir"] for s in seen)
    assert all(s["files"] == ["model.pt", "notes.txt", "train.py"] for s in seen)  # its checkpoint, the user's files
    assert not (code / "model.pt").exists()
    assert all(os.listdir(s["dir"]) == ["model.pt"] for s in seen)  # once it ended: what it wrote, only

    best = tuner("export", "script-e2e", cwd=tmp_path, home=home)
    assert best.returncode == 0, best.stderr
    number = json.loads(best.stdout)["source"]["trial"]
    copied = tuner("export", "script-e2e", "--artifacts", "best", cwd=tmp_path, home=home)
    assert copied.returncode == 0, copied.stderr
    assert f"trial {number}, the recommended one: 1 file(s) copied into best" in copied.stderr
    assert os.listdir(tmp_path / "best") == ["model.pt"]  # not the user's notes.txt or train.py
    state = torch.load(tmp_path / "best" / "model.pt")
    weights = float(sum(t.sum() for t in state.values()))
    assert [n for n, s in enumerate(seen) if s["saved"] == pytest.approx(weights)] == [number]
