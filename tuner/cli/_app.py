"""The Typer application and the settings it runs with."""

from __future__ import annotations

import inspect
import threading
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup

from tuner.settings import Settings

#: Commands in the order a newcomer uses them (``tuner --help`` lists them so); others follow.
ORDER = ("sweep", "workloads", "export", "report", "ui", "dashboard", "reevaluate", "serve")
#: Help fills a wide terminal up to this many columns (80 in pipes and logs).
CONTEXT = {"max_content_width": 120}


class Command(TyperCommand):
    """A command whose usage line and help name an argument by its metavar, upper case
    (``tuner export [OPTIONS] NAME``; Typer writes a required one as ``{name}``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar is None and param.name:
                param.metavar = param.name.upper()

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append((name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(TyperGroup):
    """A command group that lists its commands in :data:`ORDER` with their whole first paragraph
    (Click cuts each to one line ending in "...")."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(ORDER)))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            text = command.short_help or inspect.cleandoc(command.help or "").partition("\n\n")[0]
            rows.append((name, " ".join(text.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class App(typer.Typer):
    """``typer.Typer`` whose commands are :class:`Command` unless told otherwise."""

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(name, cls=cls or Command, **kwargs)


# Plain (Click) help: Typer's rich help panel prints a `<bool>` placeholder after flags, which take no value.
app = App(
    name="tuner",
    cls=Group,
    help="adamtune: tune torch.optim.Adam's lr, betas, eps and weight_decay with Ray Tune + Optuna, tracked in MLflow.",
    epilog=(
        "Example (a 16-trial sweep on scikit-learn's digits, under a minute on a laptop):\n\n"
        "\b\n"
        "  tuner sweep run examples/digits.yaml   # live progress, then the best config\n"
        "  tuner export digits-mlp --format python\n"
        "  tuner report digits-mlp                # one HTML page: plots, trials, the baseline\n\n"
        "`tuner COMMAND --help` explains each command."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)
sweep_app = App(
    cls=Group,
    help="Run, list and inspect sweeps (start here: tuner sweep run SPEC).",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)
app.add_typer(sweep_app, name="sweep")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"adamtune {version('adamtune')}")
        raise typer.Exit()


@app.callback()  # options of `tuner` itself, before the command
def _options(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print adamtune's version and exit."
    ),
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
