"""Script mode (workload: train.py): a script runs top to bottom once per trial with its own
command line, reaches the running trial with ``from workers import trial``, and still runs
alone with ``python train.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.trainable import train_trial

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {"lr": 3e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "trial_number": 5}

SCRIPT = """
import argparse, json, os, sys
import torch
from workers import trial

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--out", default="seen.json")
args = parser.parse_args()

model = torch.nn.Linear(3, 1)
optimizer = trial.optimizer(model.parameters())
x = torch.randn(32, 3)
for epoch in range(args.epochs):
    loss = (model(x) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    trial.report(val_loss=loss.item())
with open(args.out, "w") as f:
    json.dump({"argv": sys.argv, "name": __name__, "lr": trial.config["lr"], "number": trial.number,
               "in_sweep": trial.in_sweep, "dir": str(trial.dir), "cwd": os.getcwd(), "epochs": args.epochs}, f)
"""


def run(script: Path, *, script_args: list[str] = (), max_epochs: int = 3, trial_dir: Path | None = None) -> list[dict]:
    rows: list[dict] = []
    train_trial(
        CONFIG,
        workload=str(script),
        script_args=list(script_args),
        max_epochs=max_epochs,
        seed=0,
        metric="val_loss",
        trial_dir=trial_dir,
        report=rows.append,
    )
    return rows


@pytest.fixture
def script(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "train.py").write_text(SCRIPT)
    return folder / "train.py"


def test_a_script_runs_whole_with_its_command_line_and_the_running_trial(script: Path, tmp_path: Path) -> None:
    import ray  # noqa: F401 - importing Ray adds to sys.path itself

    argv, path, cwd = list(sys.argv), list(sys.path), os.getcwd()
    rows = run(script, script_args=["--epochs", "3"], trial_dir=tmp_path / "t5")
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all("error" not in r for r in rows)
    seen = json.loads((tmp_path / "t5" / "seen.json").read_text())  # written in the trial's own folder
    assert seen["argv"] == [str(script.resolve()), "--epochs", "3"] and seen["name"] == "__main__"
    assert seen["lr"] == 3e-3 and seen["number"] == 5 and seen["in_sweep"]
    assert Path(seen["dir"]) == Path(seen["cwd"]) == (tmp_path / "t5").resolve()
    assert (sys.argv, sys.path, os.getcwd()) == (argv, path, cwd)  # all restored
    assert not (script.parent / "seen.json").exists()


def test_an_argparse_error_names_the_script_not_adamtune(script: Path) -> None:
    rows = run(script, script_args=["--bogus"])
    assert (
        rows[-1]["error"]
        == "ScriptExit: train.py exited with status 2: train.py: error: unrecognized arguments: --bogus"
    )


def test_exit_statuses_and_a_script_that_never_reports(tmp_path: Path) -> None:
    ok = tmp_path / "ok.py"
    ok.write_text(
        "import sys, torch\nfrom workers import trial\nopt = trial.optimizer([torch.nn.Parameter(torch.zeros(1))])\n"
        "trial.report(val_loss=1.0)\nsys.exit(0)\n"
    )
    assert [r.get("error") for r in run(ok)] == [None]
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nsys.exit('no data found')\n")
    assert run(bad)[-1]["error"] == "ScriptExit: bad.py exited with status 1: no data found"
    silent = tmp_path / "silent.py"
    silent.write_text("x = 1\n")
    assert run(silent)[-1]["error"].startswith("RuntimeError: silent.py ended without calling trial.report()")
    broken = tmp_path / "broken.py"
    broken.write_text("import math\n\n\ndef f():\n    return 1 / 0\n\n\nf()\n")
    assert (
        run(broken)[-1]["error"]
        == "ZeroDivisionError: division by zero (at broken.py:5 in f <- broken.py:8 in <module>)"
    )


def test_a_script_longer_than_max_epochs_ends_at_the_report_past_them(script: Path) -> None:
    rows = run(script, script_args=["--epochs", "9"], max_epochs=2)
    assert [r["epoch"] for r in rows] == [1, 2] and "error" not in rows[-1]


def test_the_script_runs_alone_with_torchs_defaults(script: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), "--epochs", "2"],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["epoch 1", "epoch 2"]
    seen = json.loads((script.parent / "seen.json").read_text())
    assert seen["lr"] == 1e-3 and not seen["in_sweep"] and Path(seen["dir"]) == script.parent.resolve()


def test_the_trial_module_forwards_to_the_running_trial_and_keeps_its_own_names() -> None:
    from workers import trial
    from workers.trial import StopTrial, Trial, running

    assert trial.Trial is Trial and trial.StopTrial is StopTrial
    mine = Trial(config={"lr": 0.5, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, number=7, reporter=lambda row: None)
    with running(mine):
        assert trial.number == 7 and trial.config["lr"] == 0.5 and trial.in_sweep
    assert trial.config["lr"] == 1e-3 and not trial.in_sweep  # outside a sweep: torch's defaults
    with pytest.raises(AttributeError):
        trial._epoch  # noqa: B018 - private names are not forwarded


def test_the_example_script_is_four_lines_from_a_plain_pytorch_script() -> None:
    text = (ROOT / "examples" / "script" / "train.py").read_text()
    marked = [line for line in text.splitlines() if line.rstrip().endswith("# adamtune")]
    assert marked == [
        "from workers import trial  # adamtune",
        "optimizer = trial.optimizer(model.parameters())  # adamtune",
        "    trial.report(val_loss=val_loss)  # adamtune",
    ]
    docs = (ROOT / "docs" / "workloads.md").read_text()
    assert "-optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)" in docs
