"""`kill -9` of `tuner sweep run` at several points of one sweep, and once Ctrl-C (SIGINT: exit
130, a hint to `--resume`), each followed by `--resume`: the sweep ends with exactly n_trials
trials, each once in Optuna and once (active, ended with the same state) in MLflow, and its parent
run ends FINISHED. Both executors."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

N_TRIALS = 8


def count(home: Path, sql: str) -> int:
    """A read-only count from the sweep's Optuna database (0 while it or its tables do not exist)."""
    path = home / "optuna.db"
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def run(home: Path, spec: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TUNER_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", "sweep", "run", str(spec), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(proc: subprocess.Popen, home: Path, sql: str, at_least: int) -> None:
    """Poll until ``sql`` counts ``at_least`` or the run ends."""
    deadline = time.monotonic() + 300
    while proc.poll() is None and count(home, sql) < at_least:
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.05)


def kill_when(proc: subprocess.Popen, home: Path, sql: str, at_least: int) -> None:
    """SIGKILL the run's whole process group once ``sql`` counts ``at_least`` (or let it finish)."""
    wait_for(proc, home, sql, at_least)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


def interrupt_when(proc: subprocess.Popen, home: Path, sql: str, at_least: int) -> None:
    """Ctrl-C (SIGINT to the ``tuner`` process) once ``sql`` counts ``at_least`` more than when
    the run started (so its own trials are training, whatever earlier runs left): the run stops
    with exit code 130, tells how to go on, and leaves the trials it was running to resume."""
    wait_for(proc, home, sql, count(home, sql) + at_least)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "--resume" in err
    assert count(home, "SELECT count(*) FROM trials WHERE state = 'RUNNING'") >= 1
    assert count(home, "SELECT count(*) FROM trials WHERE state != 'RUNNING'") < N_TRIALS


@pytest.mark.parametrize("execution", ["standard", "packed"])
def test_resume_after_kills_at_many_points_finishes_exactly_n_trials(tmp_path: Path, execution: str) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    spec = tmp_path / "s.yaml"
    spec.write_text(
        # 20 epochs (~0.5 s a trial once its worker is up): Ctrl-C lands while a trial trains
        f"name: crash\nworkload: digits_mlp\nsearch_space: adam\nn_trials: {N_TRIALS}\nmax_epochs: 20\n"
        f"execution: {execution}\npack_size: 4\n"
    )
    points = [  # (how it stops, what is counted, how many): from the study's creation to the last trials
        (kill_when, "SELECT count(*) FROM studies", 1),
        (kill_when, "SELECT count(*) FROM trials", 1),
        (interrupt_when, "SELECT count(*) FROM trial_intermediate_values", 3),  # 3 more: mid-trial (mid-pack)
        (kill_when, "SELECT count(*) FROM trials WHERE state != 'RUNNING'", 3),
        (kill_when, "SELECT count(*) FROM trial_intermediate_values", 70),
        (kill_when, "SELECT count(*) FROM trials WHERE state != 'RUNNING'", 6),
    ]
    for i, (stop, sql, at_least) in enumerate(points):
        stop(run(tmp_path, spec, *(["--resume"] if i else [])), tmp_path, sql, at_least)
    last = run(tmp_path, spec, "--resume")
    out, err = last.communicate(timeout=600)
    assert last.returncode == 0, out + err

    trials = optuna.load_study(study_name="crash", storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials
    assert sorted(t.number for t in trials) == list(range(N_TRIALS))
    assert all(t.state.is_finished() for t in trials)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("crash")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = [r for r in runs if r.data.tags.get("adamtune.kind") == "trial"]
    assert sorted(int(r.data.tags["adamtune.trial_number"]) for r in children) == list(range(N_TRIALS))
    states = {"COMPLETE": "completed", "PRUNED": "early-stopped", "FAIL": "failed"}
    optuna_states = {t.number: states[t.state.name] for t in trials}
    mlflow_states = {
        int(r.data.tags["adamtune.trial_number"]): (r.info.status, r.data.tags.get("adamtune.state")) for r in children
    }
    # Each run ended with its trial's state (a worker that died under the load of the kills may fail a trial).
    assert mlflow_states == {n: ("FAILED" if s == "failed" else "FINISHED", s) for n, s in optuna_states.items()}
    (parent,) = [r for r in runs if r.data.tags.get("adamtune.kind") == "sweep"]
    assert parent.info.status == "FINISHED"
