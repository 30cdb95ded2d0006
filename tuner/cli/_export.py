"""``tuner export``: the best configs of a sweep as JSON, YAML or a Python snippet, or its config
card; with ``--artifacts DIR``, also the recommended trial's files (its checkpoints)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer
import yaml

from tuner.cli._app import app
from tuner.cli._backend import backend, recommended_files
from tuner.cli._sweep import SERVER
from tuner.errors import UserInputError


class Format(StrEnum):
    json = "json"
    yaml = "yaml"
    python = "python"
    card = "card"


@app.command("export")
def export(
    name: str = typer.Argument(..., help="Sweep name (or queue id)."),
    fmt: Format = typer.Option(
        Format.json,
        "--format",
        "-f",
        help="json and yaml load as torch.optim.Adam kwargs (+ 'source'); card: the config card (YAML; JSON with -o FILE.json).",
    ),
    top: int = typer.Option(
        1, "--top", "-k", min=1, max=100, help="Export the K best completed trials (a list when K > 1)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="With --format card: add the config transferred to this batch size "
        "(square-root rule for Adam, Malladi et al. 2022; a heuristic).",
    ),
    artifacts: Path | None = typer.Option(
        None,
        "--artifacts",
        file_okay=False,
        help="Also copy the recommended trial's files (what it wrote in trial.dir: checkpoints) "
        "from MLflow into DIR (made if missing; files of the same name are replaced).",
    ),
    server: str | None = SERVER,
) -> None:
    """Export the best Adam config(s) of a sweep, ready for torch.optim.Adam(...), or its config card."""
    if batch_size is not None and fmt is not Format.card:
        raise UserInputError("--batch-size applies to --format card only")
    if artifacts is not None:
        if server is not None:
            raise UserInputError(
                "--artifacts copies from this machine's MLflow store; run it without --server where the sweep ran"
            )
        number, copied = recommended_files(name, artifacts)
        typer.echo(f"trial {number}, the recommended one: {len(copied)} file(s) copied into {artifacts}", err=True)
        for path in copied:
            typer.echo(f"  {artifacts / path}", err=True)
    if fmt is Format.card:
        card = backend(server).card(name, batch_size=batch_size)
        as_json = output is not None and output.suffix == ".json"
        text = json.dumps(card, indent=2) + "\n" if as_json else yaml.safe_dump(card, sort_keys=False)
    else:
        text = backend(server).best(name, top=top, fmt=fmt.value)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}", err=True)
