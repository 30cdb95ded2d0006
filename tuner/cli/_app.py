"""The Typer application and the settings it runs with."""

from __future__ import annotations

import typer
from rich.console import Console

from tuner.settings import Settings

app = typer.Typer(
    name="tuner",
    help="adamtune: tune torch.optim.Adam's lr, betas, eps and weight_decay with Ray Tune + Optuna, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
sweep_app = typer.Typer(help="Run, list and inspect sweeps.", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")

console = Console()
if not console.is_terminal:  # logs and pipes: don't fold tables to 80 columns
    console = Console(width=160)
err_console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    """Settings from ``TUNER_*`` environment variables (read at each command's start)."""
    return Settings()


def service():
    """The sweep service on the configured stores."""
    from tuner.sweeps import SweepService

    return SweepService(settings())
