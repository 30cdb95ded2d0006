"""``tuner serve``: the REST API plus the queue runner, in one process."""

from __future__ import annotations

import ipaddress
import signal
from typing import Any

import typer

from tuner.cli._app import app, console, settings
from tuner.errors import UserInputError


@app.command("serve")
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind; off loopback TUNER_API_TOKEN is required."
    ),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port."),
    max_concurrent: int | None = typer.Option(
        None, "--max-concurrent", min=1, help="Sweeps run at once (default TUNER_MAX_CONCURRENT_SWEEPS or 1)."
    ),
) -> None:
    """Serve the sweep API and run queued sweeps; sweeps a crash left running are resumed.

    SIGTERM or Ctrl-C stops it within seconds: running sweeps go back to the queue (resumed
    at the next start) and the local Ray it started ends with it.
    """
    import uvicorn

    from tuner.api import create_app
    from tuner.service import QueueRunner, SweepService

    config = settings()
    token = config.api_token.get_secret_value() if config.api_token else None
    if not token and not _is_loopback(host):
        raise UserInputError(
            f"binding to {host} exposes the API beyond this machine; set TUNER_API_TOKEN (clients send "
            "'Authorization: Bearer <token>') or bind to 127.0.0.1"
        )
    service = SweepService(config)
    service.open()
    runner = QueueRunner(service.stores, max_concurrent=max_concurrent or config.max_concurrent_sweeps)
    console.print(f"adamtune API on http://{host}:{port} (docs at /docs); stores in {config.home_dir}", markup=False)
    # uvicorn stops gracefully on SIGTERM and SIGINT (the app's shutdown stops the runner
    # and its Ray), then raises the signal again for the handler it found: this one, so
    # the process ends with status 0 instead of dying of the signal or a KeyboardInterrupt.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit)
    uvicorn.run(create_app(service, runner=runner, token=token), host=host, port=port, log_level="info")


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
