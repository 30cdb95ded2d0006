"""`tuner serve` end to end: submit over HTTP, cancel, wait, fetch the best config; survive kill -9."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from serving import free_port, kill_group, serve, wait_for

pytestmark = pytest.mark.slow

SPEC = {
    "workload": "digits_mlp",
    "search_space": "adam",
    "n_trials": 4,
    "max_epochs": 3,
    "scheduler": "none",
    "seed": 0,
}


def state(url: str, name: str) -> dict:
    """The sweep's status from a server that needs no token."""
    response = httpx.get(f"{url}/sweeps/{name}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_submit_cancel_wait_export(tmp_path: Path) -> None:
    """Over HTTP and through the CLI's --server client, with a token required."""
    import json
    import os
    import subprocess
    import sys

    import torch
    import yaml
    from serving import ROOT

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer tok"}
    env = {**os.environ, "TUNER_API_TOKEN": "tok", "TUNER_SERVER": url, "TUNER_HOME": str(tmp_path / "client")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tuner", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    def get(name: str) -> dict:
        return httpx.get(f"{url}/sweeps/{name}", headers=auth, timeout=10).json()

    with serve(tmp_path, port, TUNER_API_TOKEN="tok"):
        assert httpx.get(f"{url}/sweeps", timeout=10).status_code == 401
        a = httpx.post(f"{url}/sweeps", json={**SPEC, "name": "a"}, headers=auth, timeout=30)
        assert a.status_code == 201, a.text
        spec_file = tmp_path / "b.yaml"
        spec_file.write_text(yaml.safe_dump({**SPEC, "name": "b"}))
        submitted = cli("sweep", "submit", str(spec_file))
        assert submitted.returncode == 0 and "queued sweep b" in submitted.stdout, submitted.stderr
        cancelled = cli("sweep", "cancel", "b")
        assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout, cancelled.stderr

        wait_for(lambda: get("a")["state"] in {"completed", "failed"}, timeout=300, what="sweep a to finish")
        done = get("a")
        assert done["state"] == "completed", done
        assert sum(done["trials"].values()) == 4 and done["mlflow_run_id"]
        assert get("b")["state"] == "cancelled" and get("b")["trials"]["completed"] == 0
        listed = cli("sweep", "list")
        assert "completed" in listed.stdout and "cancelled" in listed.stdout

        card = json.loads(cli("export", "a", "--format", "json").stdout)
        opt = torch.optim.Adam(
            [torch.nn.Parameter(torch.zeros(2))], **{k: card[k] for k in ("lr", "betas", "eps", "weight_decay")}
        )
        assert opt.defaults["lr"] == card["lr"] and card["source"]["sweep"] == "a"
        assert cli("export", "nope").returncode == 2


def test_kill_9_mid_sweep_then_restart_finishes_exactly_n_trials(tmp_path: Path) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    n_trials = 6
    # 100 epochs (~2.5 s a trial once its worker is up): the kill lands while the later trials
    # train (at 6 epochs the four after the first two ended within 0.7 s, before the next poll).
    spec = {**SPEC, "name": "crash", "n_trials": n_trials, "max_epochs": 100}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve(tmp_path, port) as proc:
        assert httpx.post(f"{url}/sweeps", json=spec, timeout=30).status_code == 201
        wait_for(lambda: state(url, "crash")["trials"]["completed"] >= 2, timeout=300, what="two finished trials")
        assert state(url, "crash")["state"] == "running"
        kill_group(proc)  # kill -9, mid-sweep

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    finished_before = [
        t for t in optuna.load_study(study_name="crash", storage=storage).trials if t.state.is_finished()
    ]
    assert 2 <= len(finished_before) < n_trials

    with serve(tmp_path, port):
        wait_for(lambda: state(url, "crash")["state"] in {"completed", "failed"}, timeout=300, what="the resumed sweep")
        assert state(url, "crash")["state"] == "completed"

    trials = optuna.load_study(study_name="crash", storage=storage).trials
    assert len(trials) == n_trials and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for before in finished_before:  # kept, not re-run
        assert trials[before.number].datetime_complete == before.datetime_complete

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("crash")
    children = client.search_runs([experiment.experiment_id], "tags.`adamtune.kind` = 'trial'", max_results=100)
    assert sorted(int(r.data.tags["adamtune.trial_number"]) for r in children) == list(range(n_trials))
    assert all(r.data.tags["adamtune.state"] == "completed" for r in children)
