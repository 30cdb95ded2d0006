"""The CLI's reading and queueing commands with ``--server``: against the API served from a
thread (uvicorn on a loopback port) over fresh SQLite stores, compared with the local answers."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from api_cases import SPEC, store_trials

from tuner.api import create_app
from tuner.cli import main
from tuner.service import SweepService


@pytest.fixture
def server_url(service: SweepService) -> Iterator[str]:
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):  # up within 10 s
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Exit code and stdout of ``tuner ARGS`` run in process."""
    monkeypatch.setattr(sys, "argv", ["tuner", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr().out


def test_show_prints_the_best_config_and_every_trial_also_over_the_server(
    service: SweepService, server_url: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    store_trials(service, {**SPEC, "name": "ran"}, [0.5, None, 0.25])
    monkeypatch.setenv("TUNER_HOME", str(service.settings.home))
    code, local = run_cli(monkeypatch, capsys, "sweep", "show", "ran")
    assert code == 0
    summary, rest = local.split("\n", 1)
    assert summary.startswith("sweep ran: incomplete") and rest.startswith("best config:\n{")
    assert '"trial": 2' in rest and '"value": 0.25' in rest  # the best trial's card, as `tuner export` prints it
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in rest.splitlines() if line.startswith("│")]
    assert [(row[0], row[1], row[2], row[3]) for row in rows] == [
        ("0", "completed", "2", "0.5"),
        ("1", "failed", "2", "-"),
        ("2", "completed", "2", "0.25"),
    ]
    assert rows[1][-1] == "train_loss became nan at epoch 2"

    client_home = tmp_path / "client"
    monkeypatch.setenv("TUNER_HOME", str(client_home))
    assert run_cli(monkeypatch, capsys, "sweep", "show", "ran", "--server", server_url) == (0, local)
    assert not client_home.exists()  # everything came from the server


def test_submit_to_a_server_says_how_to_follow_the_sweep_there(
    server_url: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    monkeypatch.setenv("TUNER_HOME", str(tmp_path / "client"))
    code, out = run_cli(monkeypatch, capsys, "sweep", "submit", str(spec), "--server", server_url)
    assert code == 0
    assert f"follow it with `tuner sweep show digits-api --server {server_url}`" in out
    code, shown = run_cli(monkeypatch, capsys, "sweep", "show", "digits-api", "--server", server_url)
    assert code == 0 and shown.startswith("sweep digits-api: queued")
