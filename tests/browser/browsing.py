"""The shared finished sweep of the browser tests and the servers they open it in.

:func:`write_sweep` writes it without Ray, the way a sweep leaves its stores: the Optuna study
(``StudyStore``; each trial with the params, state, values and user attributes the executor
writes), the MLflow runs (``Tracker``: a child run per trial with its epochs, ended with its
state and reason), the analysis on the parent run (``tuner.review.analyze``, as the service logs
it) and ``Tracker.finish_sweep``. :func:`serve` runs a ``tuner`` command (``ui``, ``dashboard``)
on it, on a free loopback port.
"""

from __future__ import annotations

import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]

#: The shared sweep: trial 0 the baseline (torch's default Adam), trials 1-4 tuned and completed,
#: the last ``STOPPED`` early-stopped after epoch 1 (as ASHA stops most trials).
SWEEP = "browser-sweep"
TRIALS = 8
STOPPED = 3
EPOCHS = 3
#: Final val_loss of the completed trials 0 (the baseline) to 4: the best is trial 1 and the
#: baseline ranks 4th of the 5 completed trials.
FINAL = (0.30, 0.20, 0.25, 0.28, 0.35)
BASELINE_RANK = 4


@dataclass(frozen=True)
class Sweep:
    """The shared finished sweep: its stores' folder (``TUNER_HOME``) and what they hold."""

    home: Path
    summary: Any  # tuner.records.SweepSummary
    experiment_id: str  # its MLflow experiment
    parent_run_id: str
    trial_run_ids: dict[int, str]  # MLflow child run per trial number

    def env(self) -> dict[str, str]:
        """This process's environment with ``TUNER_HOME`` this sweep's home and no other ``TUNER_*``."""
        return {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")} | {"TUNER_HOME": str(self.home)}


def _curve(number: int) -> list[tuple[int, dict[str, float]]]:
    """Trial ``number``'s epochs: a completed one falls to its :data:`FINAL` value, a stopped one is worse at epoch 1."""
    if number < len(FINAL):
        val = [FINAL[number] + 0.15 * (EPOCHS - epoch) for epoch in range(1, EPOCHS + 1)]
    else:
        val = [0.9 + 0.05 * number]
    return [(e, {"train_loss": v - 0.05, "val_loss": v}) for e, v in enumerate(val, start=1)]


def write_sweep(home: Path) -> Sweep:
    """Write the shared finished sweep of ``TRIALS`` trials (see the module docstring) to the
    stores of ``home`` (a ``TUNER_HOME``)."""
    import optuna

    from tuner.baseline import BASELINE_ATTR, baseline_config, baseline_params
    from tuner.review import analysis_files, analysis_metrics, analyze, config_card
    from tuner.settings import Settings
    from tuner.spec import parse_spec
    from tuner.study import (
        CONFIG_ATTRS,
        CONFIG_TEXT_ATTR,
        EPOCHS_ATTR,
        REASON_ATTR,
        StudyStore,
        config_text,
        distributions,
    )
    from tuner.tracking import Tracker

    settings = Settings(home=home)
    spec = parse_spec(
        {"name": SWEEP, "workload": "digits_mlp", "search_space": "adam", "n_trials": TRIALS, "max_epochs": EPOCHS}
    )
    store = StudyStore(settings.study_storage)
    store.create(spec)
    study = optuna.load_study(study_name=SWEEP, storage=store.storage)
    tracker = Tracker(settings.tracking_uri, settings.artifact_root)
    parent = tracker.start_sweep(SWEEP, spec.model_dump(mode="json"))
    dists = distributions(spec.search_space)
    rng = random.Random(0)
    runs = {}
    for number in range(TRIALS):
        if number == 0:  # torch's defaults, as a sweep's first trial
            params, config = baseline_params(spec.search_space), baseline_config(spec.search_space)
        else:  # log-uniform draws inside each searched range
            params = {name: math.exp(rng.uniform(math.log(d.low), math.log(d.high))) for name, d in dists.items()}
            config = spec.search_space.to_adam_config(params)
        epochs = _curve(number)
        stopped = number >= TRIALS - STOPPED
        state, reason = ("early-stopped", "stopped by the scheduler after epoch 1") if stopped else ("completed", None)
        attrs = {key: config[key] for key in CONFIG_ATTRS if key in config}  # as the executor writes them
        attrs |= {CONFIG_TEXT_ATTR: config_text(config), EPOCHS_ATTR: len(epochs)}
        attrs |= {BASELINE_ATTR: True} if number == 0 else {}
        attrs |= {REASON_ATTR: reason} if reason else {}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                state=optuna.trial.TrialState.PRUNED if stopped else optuna.trial.TrialState.COMPLETE,
                value=None if stopped else epochs[-1][1]["val_loss"],
                intermediate_values={e: m["val_loss"] for e, m in epochs},
                user_attrs=attrs,
            )
        )
        runs[number] = tracker.start_trial(SWEEP, parent, number, config, replace=False)
        tracker.log_trial(runs[number], epochs, state=state, reason=reason)
    summary = store.summary(SWEEP)
    analysis = analyze(store.storage, SWEEP)
    tracker.log_sweep_results(parent, metrics=analysis_metrics(analysis), files=analysis_files(analysis))
    tracker.finish_sweep(parent, summary, [config_card(summary, t, runs[t.number]) for t in summary.pick(5)])
    experiment_id = tracker.experiment_id(SWEEP)
    assert experiment_id is not None
    return Sweep(home, summary, experiment_id, parent, runs)


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.2 s until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    """Whether something accepts TCP connections on the loopback port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Server:
    """A ``tuner`` command serving on a loopback port, and what it printed so far (its log)."""

    url: str  # http://127.0.0.1:PORT
    log: Path

    def printed(self) -> str:
        """Its stdout and stderr so far."""
        return self.log.read_text()


def serve(args: list[str], sweep: Sweep, *, ready: str, name: str) -> Iterator[Server]:
    """Run ``python -m tuner ARGS --port PORT`` on ``sweep``'s stores until ``GET url + ready``
    answers 200; at the end SIGTERM it alone (it stops what it started), wait for it to exit 0
    and its port to close, then SIGKILL whatever is left of its process group.

    A generator for a fixture to ``yield from``."""
    port, log = free_port(), sweep.home / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuner", *args, "--port", str(port)],
            cwd=ROOT,
            env=sweep.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"tuner {args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            return httpx.get(url + ready, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=120, what=f"tuner {args[0]} to answer {url}{ready}")
        yield Server(url, log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
        wait_for(lambda: not answers(port), timeout=10, what=f"port {port} to close after SIGTERM")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of what this fixture started
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def loopback_only(page: Any, base: str) -> list[str]:
    """Abort every request of ``page`` not to ``base`` (or a ``data:`` URI); returns the aborted
    URLs, a list filled as they happen."""
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith((base + "/", "data:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked
