"""``tuner sweep run|submit|list|show|cancel``, ``tuner reevaluate`` and ``tuner workloads``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from tuner.cli._app import app, console, settings, skip_teardown, sweep_app
from tuner.cli._backend import backend
from tuner.cli._ui import experiment_url
from tuner.records import Outcome

SERVER = typer.Option(None, "--server", envvar="TUNER_SERVER", help="URL of a `tuner serve`; local stores if unset.")


@sweep_app.command("run")
def run(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="Sweep spec YAML (see examples/digits.yaml)."),
    n_trials: Optional[int] = typer.Option(None, "--n-trials", min=1, help="Override the spec's n_trials."),
    max_epochs: Optional[int] = typer.Option(None, "--max-epochs", min=1, help="Override the spec's max_epochs."),
    resume: bool = typer.Option(False, "--resume", help="Continue a stored sweep of the same name (finished trials are kept)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="TUNER_RAY_ADDRESS", help="Connect to this Ray cluster instead of starting local Ray."),
) -> None:
    """Run a sweep here, to completion, with a live progress view; then print the best config."""
    from tuner.progress import ProgressView
    from tuner.review import render
    from tuner.service import SweepService
    from tuner.spec import load_spec

    spec = load_spec(spec_path).with_overrides(n_trials=n_trials, max_epochs=max_epochs)
    config = settings()
    if ray_address:
        config = config.model_copy(update={"ray_address": ray_address})
    svc = SweepService(config)
    summary = svc.run(
        spec,
        resume=resume,
        progress=lambda s, done: ProgressView(s.name, s.n_trials, s.metric, s.mode, done=done, console=console),
        on_reevaluated=print_reevaluated,
        release=True,  # Ray and the MLflow writer stop while the analysis is made
    )
    skip_teardown.set()
    counts = ", ".join(f"{summary.count(s)} {s}" for s in ("completed", "early-stopped", "failed"))
    continued = sum(t.continues is not None for t in summary.trials)
    console.print(
        f"\nsweep {summary.name}: {len(summary.trials)} trials ({counts}); {summary.count('completed')} ran all "
        f"{summary.spec['max_epochs']} epochs" + (f", {continued} of them continuing an early-stopped config" if continued else ""),
        markup=False,
    )
    if summary.lr_range is not None:
        found = summary.lr_range
        console.print(
            f"lr range test: {found['steps']} steps ({found['epochs']:.2g} epoch) raising lr from {found['lr_min']:.1e} to "
            f"{found['lr_max']:.1e}; the loss fell fastest at lr {found['steepest']:.2g}, so lr was searched in "
            f"[{found['low']:.2g}, {found['high']:.2g}]",
            highlight=False, markup=False,
        )
    if not summary.best():
        console.print(f"no trial completed; `tuner sweep show {summary.name}` lists the reasons", markup=False)
        raise typer.Exit(1)
    console.print("best config:")
    console.print(render(svc.best(summary.name), "json"), highlight=False, markup=False)
    comparison = svc.comparison(summary.name)
    if comparison is not None:
        console.print(f"against the baseline: {comparison}", highlight=False, markup=False)
    console.print(
        f"export it:      tuner export {summary.name} --format python   (--format card: config card)\n"
        f"report page:    tuner report {summary.name}\n"
        f"open dashboard: tuner ui, then {experiment_url('http://127.0.0.1:5000', svc.tracker.experiment_id(summary.name))}"
        f"   (MLflow, store {config.tracking_uri})",
        highlight=False,
        markup=False,
    )


def print_reevaluated(number: int, seed: int, outcome: Outcome) -> None:
    """One progress line per finished re-evaluation run."""
    value = "-" if outcome.value is None else f"{outcome.value:.5g}"
    note = f" ({outcome.reason})" if outcome.state == "failed" else ""
    console.print(f"re-evaluated trial {number} with seed {seed}: {outcome.state}, {value}{note}", highlight=False, markup=False)


@app.command("reevaluate")
def reevaluate(
    name: str = typer.Argument(..., help="Sweep name (or queue id)."),
    top_k: int = typer.Option(3, "--top-k", min=1, max=100, help="Re-train the K best completed trials."),
    seeds: int = typer.Option(3, "--seeds", min=1, max=100, help="New seeds per trial (the sweep's seed + 1, + 2, ...)."),
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
            table.add_row(str(trial.number) + (" (baseline)" if trial.baseline else ""), f"{trial.value:.5g}",
                          f"{stats.mean:.5g}", f"{stats.std:.2g}", str(len(stats.values)), str(stats.failed))
    console.print(table)
    best = summary.pick()[0]
    console.print(f"recommended: trial {best.number}; `tuner export {summary.name} --format card`", markup=False)


@sweep_app.command("submit")
def submit(
    spec_path: Path = typer.Argument(..., metavar="SPEC", help="Sweep spec YAML."),
    n_trials: Optional[int] = typer.Option(None, "--n-trials", min=1, help="Override the spec's n_trials."),
    max_epochs: Optional[int] = typer.Option(None, "--max-epochs", min=1, help="Override the spec's max_epochs."),
    server: Optional[str] = SERVER,
) -> None:
    """Queue a sweep for `tuner serve` (on --server, or the local queue) and print its id."""
    from tuner.spec import load_spec

    spec = load_spec(spec_path).with_overrides(n_trials=n_trials, max_epochs=max_epochs)
    status = backend(server).submit(spec.model_dump(mode="json"))
    follow = f"tuner sweep show {status['name']}" + (f" --server {server}" if server else "")
    console.print(f"queued sweep {status['name']} (id {status['id']}); follow it with `{follow}`", markup=False)


@sweep_app.command("list")
def list_sweeps(
    state: Optional[str] = typer.Option(None, "--state", help="Only sweeps in this state (queued, running, completed, failed, cancelled)."),
    server: Optional[str] = SERVER,
) -> None:
    """List sweeps: state, trials finished, best value."""
    table = Table("sweep", "state", "workload", "trials", "completed", "stopped", "failed", "best")
    for s in backend(server).list(state):
        t = s["trials"]
        best = f"{s['metric']}={s['best']['value']:.5g}" if s["best"] else "-"
        finished = t["completed"] + t["early-stopped"] + t["failed"]
        table.add_row(s["name"], s["state"], s["workload"], f"{finished}/{s['n_trials']}",
                      str(t["completed"]), str(t["early-stopped"]), str(t["failed"]), best)
    console.print(table)


@sweep_app.command("show")
def show(
    name: str = typer.Argument(..., help="Sweep name (or queue id)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    server: Optional[str] = SERVER,
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
        table = Table("trial", "state", "epochs", status["metric"], "lr", "beta1", "beta2", "eps", "weight_decay", "reason")
        for trial in trials:
            c = trial["config"]
            table.add_row(
                str(trial["number"]) + (" (baseline)" if trial.get("baseline") else "")
                + (f" (continues {trial['continues']})" if trial.get("continues") is not None else ""),
                trial["state"], str(trial["epochs"]),
                "-" if trial["value"] is None else f"{trial['value']:.5g}",
                *(f"{c[k]:.4g}" if c else "-" for k in ("lr", "beta1", "beta2", "eps", "weight_decay")),
                trial["reason"] or "",
            )
        console.print(table)


@sweep_app.command("cancel")
def cancel(name: str = typer.Argument(..., help="Sweep name (or queue id)."), server: Optional[str] = SERVER) -> None:
    """Cancel a queued sweep, or stop a running one (its running trials end as failed: cancelled)."""
    status = backend(server).cancel(name)
    word = "cancelled" if status["state"] == "cancelled" else "asked to stop"
    console.print(f"sweep {status['name']} {word}", markup=False)


@app.command("workloads")
def workloads() -> None:
    """List the registered workloads (entry-point group adamtune.workloads)."""
    from workers import available_workloads

    for name in available_workloads():
        console.print(name)

