"""``tuner sweep run|submit|list|show|cancel``, ``tuner reevaluate`` and ``tuner workloads``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from tuner.cli._app import app, console, settings, skip_teardown, sweep_app
from tuner.cli._backend import backend
from tuner.cli._ui import experiment_url
from tuner.records import Outcome

if TYPE_CHECKING:
    from tuner.progress import ProgressView
    from tuner.records import SweepSummary
    from tuner.service import SweepService
    from tuner.spec import SweepSpec

SERVER = typer.Option(None, "--server", envvar="TUNER_SERVER", help="URL of a `tuner serve`; local stores if unset.")


@sweep_app.command("run")
def run(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="Sweep spec YAML (see examples/digits.yaml)."),
    n_trials: int | None = typer.Option(None, "--n-trials", min=1, help="Override the spec's n_trials."),
    max_epochs: int | None = typer.Option(None, "--max-epochs", min=1, help="Override the spec's max_epochs."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a stored sweep of the same name (finished trials are kept)."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        envvar="TUNER_RAY_ADDRESS",
        help="Connect to this Ray cluster instead of starting local Ray.",
    ),
) -> None:
    """Run a sweep here, to completion, with a live progress view; then print the best config."""
    start = time.monotonic()  # the view's clock counts the wait before the first trial too
    from tuner.progress import ProgressView
    from tuner.service import SweepService
    from tuner.spec import load_spec

    spec = load_spec(spec_path).with_overrides(n_trials=n_trials, max_epochs=max_epochs)
    config = settings()
    if ray_address:
        config = config.model_copy(update={"ray_address": ray_address})
    svc = SweepService(config)

    def view(s: SweepSpec, done: int) -> ProgressView:
        best = svc.summary(s.name).best() if done else []  # resumed: the best of the trials already finished
        return ProgressView(
            s.name,
            s.n_trials,
            s.metric,
            s.mode,
            done=done,
            objective=s.objective,
            start=start,
            best=(best[0].value, best[0].number) if best else None,
            console=console,
        )

    summary = svc.run(
        spec,
        resume=resume,
        progress=view,
        on_reevaluated=print_reevaluated,
        release=True,  # Ray stops while the analysis is made
        on_phase=lambda message: console.print(message, style="dim", highlight=False, markup=False),
        on_result=lambda done: print_result(svc, done),  # before the analysis
    )
    skip_teardown.set()
    svc.close()  # the MLflow writer, once the analysis is on the parent run
    if not summary.best():  # no trial completed (print_result said so)
        raise typer.Exit(1)


def print_result(svc: SweepService, summary: SweepSummary) -> None:
    """Print the sweep's counts, the lr range test's finding, the best config against the baseline
    and where to look next (export, report, MLflow UI, Optuna dashboard); without a completed
    trial, a line saying so instead of the best config."""
    counts = ", ".join(f"{summary.count(s)} {s}" for s in ("completed", "early-stopped", "failed"))
    continued = sum(t.continues is not None for t in summary.trials)
    console.print(
        f"\nsweep {summary.name}: {len(summary.trials)} trials ({counts}); {summary.count('completed')} ran all "
        f"{summary.spec['max_epochs']} epochs"
        + (f", {continued} of them continuing an early-stopped config" if continued else ""),
        markup=False,
    )
    if summary.lr_range is not None:
        found = summary.lr_range
        console.print(
            f"lr range test: {found['steps']} steps ({found['epochs']:.2g} epoch) raising lr from {found['lr_min']:.1e} to "
            f"{found['lr_max']:.1e}; the loss fell fastest at lr {found['steepest']:.2g}, so lr was searched in "
            f"[{found['low']:.2g}, {found['high']:.2g}]",
            highlight=False,
            markup=False,
        )
    if not summary.best():
        console.print(f"no trial completed; `tuner sweep show {summary.name}` lists the reasons", markup=False)
        return
    best = summary.pick()[0]
    metric = summary.spec["metric"]
    what = " (the baseline: torch's default Adam)" if best.baseline else ""
    console.print(f"best config: trial {best.number}{what}, {metric} {best.value:.5g}", highlight=False, markup=False)
    console.print(config_table(best.config), highlight=False)
    comparison = svc.comparison(summary.name)
    if comparison is not None:
        console.print(f"against the baseline: {comparison}", highlight=False, markup=False)
    url = experiment_url("http://127.0.0.1:5000", svc.tracker.experiment_id(summary.name))
    console.print(
        f"full JSON:        tuner export {summary.name}   (--format python: a snippet; --format card: the config card)\n"
        f"report page:      tuner report {summary.name}\n"
        f"MLflow UI:        tuner ui, then {url}   (store {svc.settings.tracking_uri})\n"
        f"Optuna dashboard: tuner dashboard {summary.name}",
        highlight=False,
        markup=False,
    )


def config_table(config: Mapping[str, Any]) -> Table:
    """A trial's Adam config as a short table: 4 significant digits, 1-beta (what the search samples,
    on a log scale) under each beta, the schedule last."""
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 2))
    if config.get("algorithm", "adam") != "adam":
        table.add_row("algorithm", str(config["algorithm"]))
    for key in ("lr", "beta1", "beta2", "eps", "weight_decay"):
        if key in config:
            table.add_row(key, f"{config[key]:.4g}")
            if key.startswith("beta"):
                table.add_row(f"1-{key}", f"{1 - config[key]:.3e}")
    if "schedule" in config:
        warmup = config.get("warmup_fraction") or 0.0
        table.add_row("schedule", str(config["schedule"]) + (f", warmup {warmup:.4g} of the steps" if warmup else ""))
    return table


def print_reevaluated(number: int, seed: int, outcome: Outcome) -> None:
    """One progress line per finished re-evaluation run."""
    value = "-" if outcome.value is None else f"{outcome.value:.5g}"
    note = f" ({outcome.reason})" if outcome.state == "failed" else ""
    console.print(
        f"re-evaluated trial {number} with seed {seed}: {outcome.state}, {value}{note}", highlight=False, markup=False
    )


@app.command("reevaluate")
def reevaluate(
    name: str = typer.Argument(..., help="Sweep name (or queue id)."),
    top_k: int = typer.Option(3, "--top-k", min=1, max=100, help="Re-train the K best completed trials."),
    seeds: int = typer.Option(
        3, "--seeds", min=1, max=100, help="New seeds per trial (the sweep's seed + 1, + 2, ...)."
    ),
) -> None:
    """Re-train the best configs with new seeds for every epoch; the best by mean becomes the recommended config.

    Runs already recorded are kept, so running it again after an interruption only trains what is missing.
    """
    from tuner.service import SweepService

    svc = SweepService(settings())
    summary = svc.reevaluate(name, top_k=top_k, seeds=seeds, on_done=print_reevaluated)
    table = Table("trial", f"sweep {summary.spec['metric']}", "mean", "std", "seeds", "failed")
    for trial in summary.pick(top_k):
        stats = summary.seed_stats(trial.number)
        if stats is not None:
            table.add_row(
                str(trial.number) + (" (baseline)" if trial.baseline else ""),
                f"{trial.value:.5g}",
                f"{stats.mean:.5g}",
                f"{stats.std:.2g}",
                str(len(stats.values)),
                str(stats.failed),
            )
    console.print(table)
    best = summary.pick()[0]
    console.print(f"recommended: trial {best.number}; `tuner export {summary.name} --format card`", markup=False)


@sweep_app.command("submit")
def submit(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="Sweep spec YAML."),
    n_trials: int | None = typer.Option(None, "--n-trials", min=1, help="Override the spec's n_trials."),
    max_epochs: int | None = typer.Option(None, "--max-epochs", min=1, help="Override the spec's max_epochs."),
    server: str | None = SERVER,
) -> None:
    """Queue a sweep for `tuner serve` (on --server, or the local queue) and print its id."""
    from tuner.spec import load_spec

    spec = load_spec(spec_path).with_overrides(n_trials=n_trials, max_epochs=max_epochs)
    status = backend(server).submit(spec.model_dump(mode="json"))
    follow = f"tuner sweep show {status['name']}" + (f" --server {server}" if server else "")
    console.print(f"queued sweep {status['name']} (id {status['id']}); follow it with `{follow}`", markup=False)


@sweep_app.command("list")
def list_sweeps(
    state: str | None = typer.Option(
        None, "--state", help="Only sweeps in this state (queued, running, completed, failed, cancelled)."
    ),
    server: str | None = SERVER,
) -> None:
    """List sweeps: state, trials finished, best value."""
    table = Table("sweep", "state", "workload", "trials", "completed", "stopped", "failed", "best")
    for s in backend(server).list(state):
        t = s["trials"]
        best = f"{s['metric']}={s['best']['value']:.5g}" if s["best"] else "-"
        finished = t["completed"] + t["early-stopped"] + t["failed"]
        table.add_row(
            s["name"],
            s["state"],
            s["workload"],
            f"{finished}/{s['n_trials']}",
            str(t["completed"]),
            str(t["early-stopped"]),
            str(t["failed"]),
            best,
        )
    console.print(table)


@sweep_app.command("show")
def show(
    name: str = typer.Argument(..., help="Sweep name (or queue id)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    server: str | None = SERVER,
) -> None:
    """Show a sweep's state, best config and every trial (config, state, epochs, value, reason)."""
    where = backend(server)
    status = where.status(name)
    trials = where.trials(status["name"])
    if as_json:
        console.print_json(json.dumps({**status, "trial_records": trials}))
        return
    t = status["trials"]
    console.print(
        f"sweep {status['name']}: {status['state']}, workload {status['workload']}, {status['metric']} ({status['mode']}), "
        f"{t['completed']} completed / {t['early-stopped']} stopped / {t['failed']} failed of {status['n_trials']}"
        + (f"; error: {status['error']}" if status["error"] else ""),
        markup=False,
    )
    if status["best"]:
        console.print("best config:")
        console.print(where.best(status["name"]), highlight=False, markup=False, end="")
    if status.get("baseline"):
        console.print(f"against the baseline: {status['baseline']['summary']}", highlight=False, markup=False)
    if trials:
        table = Table(
            "trial",
            "state",
            "epochs",
            status["metric"],
            "lr",
            "beta1",
            "1-beta1",
            "beta2",
            "1-beta2",
            "eps",
            "weight_decay",
            "reason",
        )
        for trial in trials:
            c = trial["config"]
            table.add_row(
                str(trial["number"])
                + (" (baseline)" if trial.get("baseline") else "")
                + (f" (continues {trial['continues']})" if trial.get("continues") is not None else ""),
                trial["state"],
                str(trial["epochs"]),
                "-" if trial["value"] is None else f"{trial['value']:.5g}",
                *(_cell(c, k) for k in ("lr", "beta1", "1-beta1", "beta2", "1-beta2", "eps", "weight_decay")),
                trial["reason"] or "",
            )
        console.print(table)


def _cell(config: Mapping[str, Any], key: str) -> str:
    """A config value for the trial table: 4 significant digits; ``1-beta1``/``1-beta2`` in
    scientific notation (beta2 0.9998 and 0.9999 are 2.0e-04 and 1.0e-04 apart from 1)."""
    if not config:
        return "-"
    if key.startswith("1-"):
        return f"{1 - config[key[2:]]:.2e}"
    return f"{config[key]:.4g}"


@sweep_app.command("cancel")
def cancel(name: str = typer.Argument(..., help="Sweep name (or queue id)."), server: str | None = SERVER) -> None:
    """Cancel a queued sweep, or stop a running one (its running trials end as failed: cancelled)."""
    status = backend(server).cancel(name)
    word = "cancelled" if status["state"] == "cancelled" else "asked to stop"
    console.print(f"sweep {status['name']} {word}", markup=False)


@app.command("workloads")
def workloads() -> None:
    """List the registered workloads (entry-point group adamtune.workloads), one line each.

    A spec's workload can also be your own: path/to/file.py:attr, package.module:attr, or a script train.py.
    """
    from workers.workloads import available_workloads, workload_target

    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    for name in available_workloads():
        try:
            target = workload_target(name)
        except RuntimeError as e:  # registered twice with different targets
            table.add_row(name, str(e))
            continue
        table.add_row(name, _describe(target))
    console.print(table, highlight=False)


def _describe(target: str) -> str:
    """The first sentence of a ``module:attr`` workload's docstring, read from its source without
    importing it (no torch: the command stays quick); the target itself where there is none."""
    import ast
    import importlib.util

    module, _, attr = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        source = Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""
        tree = ast.parse(source)
    except (ImportError, OSError, SyntaxError, ValueError):
        return target
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == attr:
            doc = (ast.get_docstring(node) or "").split("\n\n")[0]
            doc = re.sub(r":\w+:`~?([^`]+)`", r"\1", doc).replace("``", "")
            return " ".join(doc.split()) or target
    return target
