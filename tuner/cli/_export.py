"""``tuner export``: the best configs of a sweep as JSON, YAML or a Python snippet."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from tuner.cli._app import app
from tuner.cli._backend import backend
from tuner.cli._sweep import SERVER


class Format(str, Enum):
    json = "json"
    yaml = "yaml"
    python = "python"


@app.command("export")
def export(
    name: str = typer.Argument(..., help="Sweep name (or queue id)."),
    fmt: Format = typer.Option(Format.json, "--format", "-f", help="json and yaml load as torch.optim.Adam kwargs (+ 'source')."),
    top: int = typer.Option(1, "--top", "-k", min=1, max=100, help="Export the K best completed trials (a list when K > 1)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
    server: Optional[str] = SERVER,
) -> None:
    """Export the best Adam config(s) of a sweep, ready for torch.optim.Adam(...)."""
    text = backend(server).best(name, top=top, fmt=fmt.value)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}", err=True)
