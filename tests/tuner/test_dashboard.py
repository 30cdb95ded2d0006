"""``tuner dashboard NAME``: optuna-dashboard on the sweep's Optuna storage, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from study_cases import sweep_in_home

ROOT = Path(__file__).resolve().parents[2]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, whatever *_proxy says


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tuner(home: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args],
        cwd=ROOT,
        env={**os.environ, "TUNER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def studies(port: int) -> list[str] | None:
    """Names optuna-dashboard lists, or ``None`` while it does not answer."""
    try:
        with NO_PROXY.open(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
            if response.status != 200:
                return None
            return [s["study_name"] for s in json.load(response)["study_summaries"]]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_dashboard_serves_the_sweep_study_on_loopback_and_stops_on_sigterm(tmp_path: Path) -> None:
    sweep_in_home(tmp_path, "dash")
    port = free_port()
    proc = tuner(tmp_path, "dashboard", "dash", "--port", str(port), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        listed = None
        while listed is None:
            assert proc.poll() is None, f"tuner dashboard exited with {proc.returncode}: {proc.communicate()}"
            assert time.monotonic() < deadline, "optuna-dashboard did not answer /api/studies within 60 s"
            listed = studies(port)
            time.sleep(0.2)
        assert listed == ["dash"]

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/dashboard/studies/" in out
    assert studies(port) is None  # the port is released


def test_an_unknown_sweep_exits_2_and_creates_no_store(tmp_path: Path) -> None:
    proc = tuner(tmp_path, "dashboard", "nope", "--port", str(free_port()))
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 2, (out, err)
    assert "no sweep named 'nope'" in err
    assert not (tmp_path / "optuna.db").exists()
