"""Stopping `tuner serve` with a signal: quick, leaves no Ray process behind, and its running
sweep resumes at the next start exactly as after `kill -9`."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from serving import free_port, kill_marked, listening_ports, processes_with, serve, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc"),
]

STOP_WITHIN_S = 10.0
RAY_DASHBOARD_PORT = 8265


def epochs_stored(home: Path) -> int:
    """Epoch values the sweep's study holds: a read-only count (0 before its tables exist)."""
    path = home / "optuna.db"
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT count(*) FROM trial_intermediate_values").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not there yet, or the file is locked
        return 0


def state(url: str, name: str) -> dict:
    response = httpx.get(f"{url}/sweeps/{name}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_signal_stops_serve_quickly_leaves_no_ray_and_the_sweep_resumes(tmp_path: Path) -> None:
    """SIGTERM to the server, then, on the next start, SIGINT to its process group (a terminal's
    Ctrl-C) while the resumed sweep runs: each stop is quick and leaves no process, and the sweep
    resumes after each as after `kill -9`, until a third start finishes it."""
    import optuna

    from tuner.store import SweepStore

    n_trials = 3
    spec = {
        "name": "stopped",
        "workload": "digits_mlp",
        "search_space": "adam",
        "n_trials": n_trials,
        "max_epochs": 100,  # ~2.5 s a trial: the signal lands while one trains (at 15 all could end first)
        "scheduler": "none",
        "seed": 0,
    }
    marker = f"adamtune-test-{uuid.uuid4().hex}"  # in the server's environment, so in every process it starts
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    try:
        for attempt, (sig, to_group) in enumerate([(signal.SIGTERM, False), (signal.SIGINT, True)], 1):
            stored = epochs_stored(tmp_path)
            with serve(tmp_path, port, ADAMTUNE_TEST_MARKER=marker) as proc:
                if attempt == 1:
                    assert httpx.post(f"{url}/sweeps", json=spec, timeout=30).status_code == 201
                wait_for(  # a trial of this start trains: its study holds a new epoch (a stopped start left it RUNNING)
                    lambda stored=stored: (
                        epochs_stored(tmp_path) > stored and state(url, "stopped")["trials"]["running"] >= 1
                    ),
                    timeout=300,
                    what="a running trial",
                    interval=0.2,
                )
                started = processes_with(marker)
                assert any("raylet" in cmd for cmd in started.values()), started  # the check below sees Ray's processes
                assert RAY_DASHBOARD_PORT not in listening_ports(set(started)), "Ray's dashboard listens on 8265"

                signalled = time.monotonic()
                (os.killpg if to_group else os.kill)(proc.pid, sig)
                code = proc.wait(timeout=60)
                took = time.monotonic() - signalled
                assert code == 0 and took < STOP_WITHIN_S, f"{sig.name}: exit code {code} after {took:.1f} s"
            wait_for(lambda: not processes_with(marker), timeout=3, what="the server's processes to end", interval=0.1)

            sweep = SweepStore(f"sqlite:///{tmp_path / 'tuner.db'}").get_by_name("stopped")
            assert (
                sweep.state == "running" and sweep.attempts == attempt
            )  # as a crash leaves it: requeued at the next start
            before = optuna.load_study(study_name="stopped", storage=storage).trials
            assert any(t.state == optuna.trial.TrialState.RUNNING for t in before), sig.name
            assert not any(t.state == optuna.trial.TrialState.FAIL for t in before), sig.name

        with serve(tmp_path, port, ADAMTUNE_TEST_MARKER=marker):
            wait_for(
                lambda: state(url, "stopped")["state"] in {"completed", "failed"}, timeout=300, what="the resumed sweep"
            )
            done = state(url, "stopped")
            assert done["state"] == "completed", done
        trials = optuna.load_study(study_name="stopped", storage=storage).trials
        assert len(trials) == n_trials and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        assert SweepStore(f"sqlite:///{tmp_path / 'tuner.db'}").get_by_name("stopped").attempts == 3
    finally:
        kill_marked(marker)
