"""`tuner ui` serves the MLflow UI on the configured store, on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serving import ROOT, free_port, wait_for

pytestmark = pytest.mark.slow


def test_ui_answers_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner", "ui", "--port", str(port)],
        cwd=ROOT, env={**os.environ, "TUNER_HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )

    def up() -> bool:
        assert proc.poll() is None, "tuner ui exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=120, what="the MLflow UI")
        experiments = httpx.get(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", params={"max_results": 10}, timeout=10)
        assert experiments.status_code == 200
        assert (tmp_path / "mlflow.db").exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
