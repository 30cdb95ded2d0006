"""The Typer application and the settings it runs with."""

from __future__ import annotations

import threading

import typer
from rich.console import Console

from tuner.settings import Settings

# Plain (Click) help: Typer's rich help panel prints a `<bool>` placeholder after flags, which take no value.
app = typer.Typer(
    name="tuner",
    help="adamtune: tune torch.optim.Adam's lr, betas, eps and weight_decay with Ray Tune + Optuna, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
sweep_app = typer.Typer(help="Run, list and inspect sweeps.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(sweep_app, name="sweep")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"adamtune {version('adamtune')}")
        raise typer.Exit()


@app.callback()  # options of `tuner` itself, before the command
def _options(
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print adamtune's version and exit."),
) -> None:
    pass

console = Console()
if not console.is_terminal:  # logs and pipes: don't fold tables to 80 columns
    console = Console(width=160)
err_console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    """Settings from ``TUNER_*`` environment variables (read at each command's start)."""
    return Settings()


def service():
    """The sweep service on the configured stores."""
    from tuner.service import SweepService

    return SweepService(settings())


#: Set by a command whose process has nothing left to clean up once it returns (``sweep run``
#: stopped Ray and the MLflow writer itself): ``main`` then skips the interpreter's teardown.
skip_teardown = threading.Event()
