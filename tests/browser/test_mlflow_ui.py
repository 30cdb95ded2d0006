"""The MLflow UI that ``tuner ui`` serves, in headless Chromium: a sweep's experiment lists its trial runs.

One sweep of three trials is written with :class:`tuner.tracking.Tracker` (no Ray), and
``tuner ui`` serves it on a free loopback port. The page may fetch from that server only:
anything else is aborted and recorded.

MLflow 3.17's UI picks an experiment's view from its workflow type, the ``workflowType``
query parameter or else the browser's ``localStorage`` (``mlflow.workflowType_v1``,
default ``genai``), and no longer from the experiment tag ``mlflow.experimentKind``: a
fresh browser opens the bare experiment link on the GenAI "Overview" (Traces 0). The
link with ``?workflowType=machine_learning`` opens on the runs.
"""

from __future__ import annotations

import os
import re
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
import pytest

ROOT = Path(__file__).resolve().parents[2]
SWEEP = "browser-sweep"
TRIALS = 3
#: The query that opens an experiment on its runs in MLflow 3.17's UI (see the module docstring).
RUNS_VIEW = "?workflowType=machine_learning"

pytestmark = pytest.mark.slow  # starts an MLflow server: about 10 s


@dataclass(frozen=True)
class UI:
    """A running ``tuner ui`` and the sweep it shows."""

    url: str  # http://127.0.0.1:PORT
    experiment_id: str
    link: str  # the sweep's link as `tuner ui` printed it


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.2 s until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    """Whether something accepts TCP connections on the loopback port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def write_sweep(home: Path) -> str:
    """One finished sweep of ``TRIALS`` completed trials, two epochs each; returns its experiment id."""
    from tuner.records import SweepSummary, TrialRecord
    from tuner.settings import Settings
    from tuner.spec import parse_spec
    from tuner.tracking import Tracker

    with pytest.MonkeyPatch.context() as env:
        env.setenv("TUNER_HOME", str(home))
        env.delenv("TUNER_MLFLOW_URI", raising=False)
        settings = Settings()
    spec = parse_spec(
        {"name": SWEEP, "workload": "digits_mlp", "search_space": "adam", "n_trials": TRIALS, "max_epochs": 2}
    ).model_dump(mode="json")
    tracker = Tracker(settings.tracking_uri, settings.artifact_root)
    parent = tracker.start_sweep(SWEEP, spec)
    records = []
    for number in range(TRIALS):
        config = {
            "lr": 10.0 ** -(2 + number),
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
            "weight_decay": 0.0,
            "warmup_fraction": 0.0,
            "schedule": "constant",
            "amsgrad": False,
            "decoupled_weight_decay": False,
        }
        run_id = tracker.start_trial(SWEEP, parent, number, config, replace=False)
        for epoch in (1, 2):
            tracker.log_epoch(run_id, {"train_loss": 1.5 / (epoch + number), "val_loss": 1.0 / (epoch + number)}, epoch)
        tracker.end_trial(run_id, "completed")
        records.append(TrialRecord(number=number, state="completed", config=config, value=1.0 / (2 + number), epochs=2))
    tracker.finish_sweep(parent, SweepSummary(SWEEP, spec, tuple(records)), [])
    experiment_id = tracker.experiment_id(SWEEP)
    assert experiment_id is not None
    return experiment_id


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    """``tuner ui`` on a free loopback port over a store holding one sweep; stopped with SIGTERM at the end."""
    home = tmp_path_factory.mktemp("tuner-home")
    experiment_id = write_sweep(home)
    port, log = free_port(), home / "ui.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")} | {"TUNER_HOME": str(home)}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuner", "ui", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"tuner ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=120, what=f"tuner ui to answer {url}/health")
        printed = re.search(rf"sweep {SWEEP}: (\S+)", log.read_text())
        assert printed, f"tuner ui printed no link for the sweep:\n{log.read_text()[-3000:]}"
        assert printed.group(1) == f"{url}/#/experiments/{experiment_id}{RUNS_VIEW}"
        yield UI(url, experiment_id, printed.group(1))
        proc.send_signal(signal.SIGTERM)  # to `tuner ui` alone: it stops its MLflow server itself
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
        wait_for(lambda: not answers(port), timeout=10, what=f"port {port} to close after SIGTERM")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of what this fixture started
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def loopback_only(page: Any, ui: UI) -> list[str]:
    """Abort every request not to the UI's server; returns the list of aborted URLs (filled as they happen)."""
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(ui.url + "/") or r.request.url.startswith("data:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


def test_the_sweep_experiment_lists_its_trial_runs(page: Any, ui: UI, screenshots: Path) -> None:
    from playwright.sync_api import expect

    blocked = loopback_only(page, ui)
    page.goto(ui.link)  # the link `tuner ui` printed for the sweep
    shot = screenshots / "mlflow-runs.png"
    see = f"screenshot {shot}"
    try:
        # CSS, not ARIA roles, for the view: the GenAI overview opens a modal popover, which
        # hides the rest of the page from the accessibility tree.
        main = page.locator("main")
        expect(main.locator("h2").first, see).to_have_text("Runs")
        expect(main.get_by_text(f"{TRIALS + 1} matching runs"), see).to_be_visible()  # the parent run and its trials
        # The trials are child runs, collapsed under the sweep's parent run: expand it.
        sweep_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=SWEEP, exact=True))
        sweep_row.get_by_role("button").first.click()
        for number in range(TRIALS):
            expect(page.get_by_role("link", name=f"trial-{number:04d}", exact=True), see).to_be_visible()
        # Not MLflow's GenAI overview of an experiment without traces.
        assert "/overview" not in page.url, f"opened on {page.url} ({see})"
        expect(main.locator("h2", has_text="Overview"), see).to_have_count(0)
        expect(main.get_by_text("No data available for the selected time range"), see).to_have_count(0)
    finally:
        page.screenshot(path=shot, full_page=True)
    assert blocked == [], f"the UI fetched beyond its server: {blocked} ({see})"


@pytest.mark.xfail(
    strict=True,
    reason="MLflow 3.17's UI ignores the mlflow.experimentKind tag: a fresh browser "
    "opens the bare experiment link on the GenAI overview (see the module docstring)",
)
def test_the_bare_experiment_link_opens_on_the_runs(page: Any, ui: UI, screenshots: Path) -> None:
    from playwright.sync_api import expect

    loopback_only(page, ui)
    page.goto(f"{ui.url}/#/experiments/{ui.experiment_id}")
    shot = screenshots / "mlflow-bare-link.png"
    try:
        view = page.locator("main h2").filter(has_text=re.compile(r"^(Runs|Overview)$"))
        expect(view).to_be_visible()  # whichever view the UI opened on
        assert view.inner_text() == "Runs", f"the experiment opened on {view.inner_text()!r} (screenshot {shot})"
    finally:
        page.screenshot(path=shot)
