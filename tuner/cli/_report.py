"""``tuner report`` (one self-contained HTML page) and ``tuner dashboard`` (optuna-dashboard)."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from tuner.cli._app import app, console, service


@app.command("report")
def report(
    name: str = typer.Argument(..., help="Sweep name."),
    output: Path | None = typer.Option(None, "--output", "-o", help="HTML file to write [default: report-NAME.html]."),
) -> None:
    """Write the sweep's report: plots, importance, top trials, every trial's state, the baseline and the config card.

    The page is self-contained (plots inline, no external CSS or scripts): it opens offline.
    """
    typer.echo("making the report…", err=True)
    html = service().report(name)
    path = output if output is not None else Path(f"report-{name}.html")
    path.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {path}")


@app.command("dashboard")
def dashboard(
    name: str = typer.Argument(..., help="Sweep name."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8080, "--port", help="TCP port."),
) -> None:
    """Serve optuna-dashboard on the configured Optuna storage, opened on the sweep's study; Ctrl-C or SIGTERM stops it."""
    from optuna_dashboard import run_server

    sweeps = service()
    sweeps.summary(name)  # SweepNotFoundError (exit code 2) before anything is served
    storage = sweeps.studies.storage
    study_id = storage.get_study_id_from_name(name)
    console.print(
        f"optuna-dashboard on http://{host}:{port}/dashboard/studies/{study_id} (sweep {name}); Ctrl-C stops it",
        markup=False,
        highlight=False,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM unwinds as Ctrl-C does
    try:
        run_server(storage, host=host, port=port)
    except KeyboardInterrupt:
        pass
