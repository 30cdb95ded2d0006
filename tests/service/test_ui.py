"""`tuner ui` serves the MLflow UI on the configured store, on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serving import ROOT, free_port, wait_for

pytestmark = pytest.mark.slow


def test_ui_answers_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    proc, out = _start(tmp_path, port)

    def up() -> bool:
        assert proc.poll() is None, "tuner ui exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=120, what="the MLflow UI")
        experiments = httpx.get(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", params={"max_results": 10}, timeout=10
        )
        assert experiments.status_code == 200
        assert (tmp_path / "mlflow.db").exists()
    finally:
        _stop(proc)
    printed = out.read_text()
    assert f"MLflow UI on http://127.0.0.1:{port}" in printed
    assert "GenAI view" in printed and "workflowType=machine_learning" in printed  # what MLflow cannot keep


def _start(home: Path, port: int) -> tuple[subprocess.Popen, Path]:
    """`tuner ui --port PORT` on ``home``, in a process group of its own; its stdout goes to the returned file."""
    out = home / "stdout.txt"
    with out.open("w") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuner", "ui", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "TUNER_HOME": str(home)},
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc, out


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM `tuner ui` (it stops its MLflow server, in a process group of its own), then
    SIGKILL whatever is left in its group."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def _answers(port: int) -> bool:
    """Whether something accepts TCP connections on the loopback port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ui_stopped_by_a_signal_stops_its_mlflow_server(tmp_path: Path, sig: signal.Signals) -> None:
    """The signal goes to `tuner ui` alone (as `kill PID` or a supervisor sends it), not its group."""
    port = free_port()
    proc, _ = _start(tmp_path, port)
    try:

        def up() -> bool:
            assert proc.poll() is None, "tuner ui exited"
            return _answers(port)

        wait_for(up, timeout=120, what="the MLflow UI's port", interval=0.2)
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
        wait_for(lambda: not _answers(port), timeout=5, what="the port to close", interval=0.1)
    finally:
        _stop(proc)
