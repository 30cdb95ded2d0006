"""Sweeps that log to an MLflow tracking server (PostgreSQL backend store, artifacts served by it),
as `tuner sweep run` does with ``TUNER_MLFLOW_URI=http://…``: every trial lands on the server once,
a restart of the server mid-sweep loses nothing, and a server that stays down fails the sweep with
a TrackingError after ``TUNER_MLFLOW_RETRY_SECONDS`` while Optuna keeps the trials.

Skipped without PostgreSQL on 127.0.0.1:5432 (``postgres_url_factory``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
_T = TypeVar("_T")


class MlflowServer:
    """``mlflow server`` on loopback as `tuner ui` runs it (one worker, no job execution), in its own
    process group; artifacts uploaded through it (``--serve-artifacts``, MLflow's default) land in
    ``artifacts``. :meth:`stop` then :meth:`start` restart it on the same port and backend store."""

    def __init__(self, backend: str, artifacts: Path, log: Path) -> None:
        self.backend, self.artifacts, self.log = backend, artifacts, log
        with socket.socket() as probe:  # a free port; the server binds it right after
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> float:
        """Start the server and wait until it answers; returns the seconds that took."""
        began = time.monotonic()
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend,
            "--artifacts-destination",
            str(self.artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self._healthy, timeout, f"MLflow server on {self.url}")
        return time.monotonic() - began

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"mlflow server exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """SIGTERM the server's process group (the CLI and its uvicorn child); SIGKILL after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        stop_group(self.process, timeout=15)


def stop_group(process: subprocess.Popen, timeout: float) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def wait_for(check: Callable[[], _T], timeout: float, what: str, every: float = 0.2) -> _T:
    """Poll ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@pytest.fixture
def server(postgres_url_factory, tmp_path: Path) -> Iterator[MlflowServer]:
    """A started server on a fresh PostgreSQL database (dropped after the test, once the server is gone)."""
    server = MlflowServer(postgres_url_factory(), tmp_path / "served-artifacts", tmp_path / "mlflow-server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Sweep:
    """`tuner sweep run` as a user runs it, against ``server``, in its own process group."""

    def __init__(self, tmp_path: Path, server: MlflowServer, spec: dict[str, Any], *args: str, **env: str) -> None:
        self.name, self.n_trials, self.home = spec["name"], spec["n_trials"], tmp_path / "home"
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        self.log = tmp_path / f"sweep-{len(list(tmp_path.glob('sweep-*.log')))}.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TUNER_", "MLFLOW_"))},
            "TUNER_HOME": str(self.home),
            "TUNER_MLFLOW_URI": server.url,
            **env,
        }
        self.began = time.monotonic()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tuner", "sweep", "run", str(path), *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, timeout: float = 300.0) -> tuple[int, str, float]:
        """Exit code, output and seconds since start."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the sweep did not end within {timeout:g} s:\n{self.output()[-3000:]}") from None
        return code, self.output(), time.monotonic() - self.began

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_group(self.process, timeout=30)

    def optuna_trials(self) -> list:
        import optuna

        return optuna.load_study(study_name=self.name, storage=f"sqlite:///{self.home / 'optuna.db'}").get_trials()


def spec(name: str, n_trials: int, max_epochs: int = 3) -> dict[str, Any]:
    return {
        "name": name,
        "workload": "diabetes_mlp",
        "search_space": "adam",
        "n_trials": n_trials,
        "max_epochs": max_epochs,
        "scheduler": "none",
    }


def trial_runs(client: Any, name: str) -> list:
    """Every child run of the sweep's trials on the server, deleted ones included."""
    from mlflow.entities import ViewType

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id], "tags.`adamtune.kind` = 'trial'", run_view_type=ViewType.ALL, max_results=1000
    )


def first_trial_run(client: Any, name: str) -> bool:
    try:
        return bool(trial_runs(client, name))
    except Exception:  # noqa: BLE001 - the sweep may be creating the experiment
        return False


def assert_recorded_once(client: Any, sweep: Sweep, max_epochs: int) -> None:
    """One ended child run per trial number (none deleted, none doubled), each epoch logged once."""
    runs = trial_runs(client, sweep.name)
    numbers = Counter(int(run.data.tags["adamtune.trial_number"]) for run in runs)
    assert numbers == Counter(range(sweep.n_trials)), numbers
    trials = {t.number: t for t in sweep.optuna_trials()}
    assert sorted(trials) == list(range(sweep.n_trials)) and all(t.state.is_finished() for t in trials.values())
    for run in runs:
        assert run.info.lifecycle_stage == "active" and run.info.status in ("FINISHED", "FAILED"), run.info
        assert {"lr", "beta1", "beta2", "eps"} <= set(run.data.params)
        trial = trials[int(run.data.tags["adamtune.trial_number"])]
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert [m.step for m in history] == list(range(1, len(history) + 1)), history  # each epoch once
        if run.data.tags["adamtune.state"] == "completed":
            assert trial.state.name == "COMPLETE" and len(history) == max_epochs and history[-1].value == trial.value


def test_a_sweep_logs_through_the_server_and_a_restart_mid_sweep_loses_nothing(
    server: MlflowServer, tmp_path: Path
) -> None:
    """One sweep for both: its trials, parent run and artifacts go through the server (none to
    local files), and the server's restart after the first trial's run costs nothing."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server.url)
    sweep = Sweep(tmp_path, server, spec("restarted", n_trials=6))  # TUNER_MLFLOW_RETRY_SECONDS: the default, 60 s
    try:
        wait_for(
            lambda: sweep.process.poll() is not None or first_trial_run(client, sweep.name),
            240,
            "the first trial's run",
        )
        assert sweep.process.poll() is None, sweep.output()[-3000:]
        stopped = time.monotonic()
        server.stop()
        restart = server.start()
        down = time.monotonic() - stopped
        code, output, took = sweep.wait()
    finally:
        sweep.stop()
    assert code == 0, output[-3000:]
    assert_recorded_once(client, sweep, max_epochs=3)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name(sweep.name).experiment_id], "tags.`adamtune.kind` = 'sweep'"
    )
    counts = [parent.data.metrics[f"trials_{state}"] for state in ("completed", "early_stopped", "failed")]
    assert sum(counts) == 6 and parent.info.status == "FINISHED"
    stalls = [float(s) for s in re.findall(r"answered \S+ again after ([\d.]+) s", output)]
    assert stalls, output[-3000:]  # some write did meet the server down, and was retried

    experiment = client.get_experiment_by_name(sweep.name)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server stores them
    assert parent.data.params["workload"] == "diabetes_mlp" and "best_val_loss" in parent.data.metrics
    assert {"spec.json", "best_config.json", "analysis"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    plots = [a.path for a in client.list_artifacts(parent.info.run_id, "analysis") if a.path.endswith(".png")]
    assert plots
    stored = {p.name for p in server.artifacts.rglob("*") if p.is_file()}  # uploaded through the server to its store
    assert {"spec.json", "best_config.json", Path(plots[0]).name} <= stored
    assert not (sweep.home / "mlflow.db").exists() and not (sweep.home / "mlartifacts").exists()
    print(
        f"\nserver down {down:.1f} s (start {restart:.1f} s); a write waited {max(stalls):.1f} s at most; sweep {took:.1f} s"
    )


def test_a_server_down_past_the_bound_fails_the_sweep_and_optuna_keeps_the_trials(
    server: MlflowServer, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server.url)
    sweep = Sweep(tmp_path, server, spec("abandoned", n_trials=4), TUNER_MLFLOW_RETRY_SECONDS="3")
    try:
        wait_for(
            lambda: sweep.process.poll() is not None or first_trial_run(client, sweep.name),
            240,
            "the first trial's run",
        )
        assert sweep.process.poll() is None, sweep.output()[-3000:]
        server.stop()
        code, output, _ = sweep.wait()
    finally:
        sweep.stop()
    assert code == 1, output[-3000:]
    error = " ".join(output[output.index("error: ") :].split())  # the console wraps long lines
    assert f"MLflow at {server.url} stayed unreachable" in error and "TUNER_MLFLOW_RETRY_SECONDS=3" in error, error
    assert "trials are kept in its Optuna study" in error and "Traceback" not in output, output[-3000:]
    trials = sweep.optuna_trials()
    assert len(trials) == 4 and all(t.state.is_finished() for t in trials)

    server.start()  # as the message says: once MLflow answers, --resume writes the missing runs
    resumed = Sweep(tmp_path, server, spec("abandoned", n_trials=4), "--resume")
    try:
        code, output, _ = resumed.wait()
    finally:
        resumed.stop()
    assert code == 0, output[-3000:]
    runs = trial_runs(client, sweep.name)
    assert sorted(int(r.data.tags["adamtune.trial_number"]) for r in runs) == [0, 1, 2, 3]
    assert all(r.data.tags.get("adamtune.state") and r.info.status != "RUNNING" for r in runs)
