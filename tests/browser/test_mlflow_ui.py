"""The MLflow UI that ``tuner ui`` serves, in headless Chromium: the runs table, a trial's run,
the sweep's parent run and the compare view of the shared finished sweep (``conftest.sweep``).

``tuner ui`` serves its stores on a free loopback port; each page may fetch from that server
only: anything else is aborted and recorded. Each test saves a screenshot of what it asserted.

MLflow 3.17's UI picks an experiment's view from its workflow type, the ``workflowType``
query parameter or else the browser's ``localStorage`` (``mlflow.workflowType_v1``,
default ``genai``), and no longer from the experiment tag ``mlflow.experimentKind``: a
fresh browser opens the bare experiment link on the GenAI "Overview" (Traces 0). The
link with ``?workflowType=machine_learning`` opens on the runs. A run opened from the runs
table loses the parameter, and its page shows the GenAI sidebar ("Evaluations", Judges), as
does the compare view the runs table's "Compare" button opens; the run's own page with the
parameter shows the training one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browsing import FINAL, STOPPED, SWEEP, TRIALS, Server, Sweep, loopback_only, serve

#: The query that opens an experiment on its runs in MLflow 3.17's UI (see the module docstring).
RUNS_VIEW = "?workflowType=machine_learning"
STOPPED_TRIAL = TRIALS - 1  # an early-stopped trial
BEST_TRIAL = FINAL.index(min(FINAL))

pytestmark = pytest.mark.slow  # starts an MLflow server: about 10 s


@dataclass(frozen=True)
class UI:
    """A running ``tuner ui`` and the sweep it shows."""

    server: Server
    sweep: Sweep
    link: str  # the sweep's link as `tuner ui` printed it

    def run_link(self, run_id: str) -> str:
        """The link that opens a run of the sweep in the training view."""
        return f"{self.server.url}/#/experiments/{self.sweep.experiment_id}/runs/{run_id}{RUNS_VIEW}"


@pytest.fixture(scope="module")
def ui(sweep: Sweep) -> Iterator[UI]:
    """``tuner ui`` on a free loopback port over the shared sweep's stores."""
    for server in serve(["ui"], sweep, ready="/health", name="ui"):
        printed = re.search(rf"sweep {SWEEP}: (\S+)", server.printed())
        assert printed, f"tuner ui printed no link for the sweep:\n{server.printed()[-3000:]}"
        assert printed.group(1) == f"{server.url}/#/experiments/{sweep.experiment_id}{RUNS_VIEW}"
        yield UI(server, sweep, printed.group(1))


def trial_name(number: int) -> str:
    """A trial run's name in MLflow: a trial that did not complete carries its state."""
    return f"trial-{number:04d}" + (" (early-stopped)" if number >= TRIALS - STOPPED else "")


def close_assistant(page: Any) -> None:
    """Close MLflow 3.17's "MLflow Assistant" side panel, if open, so screenshots show the page's width."""
    close = page.get_by_role("button", name="Close", exact=True)
    if close.count() == 1:
        close.click()


def description(page: Any, *, folded: bool = False) -> Any:
    """The run page's description (the ``mlflow.note.content`` tag, rendered from Markdown), with
    the assistant panel closed; ``folded``: MLflow folds it under "Show more" (a long one): unfold it."""
    from playwright.sync_api import expect

    note = page.get_by_test_id("note-editor-preview-content")
    note.wait_for()
    close_assistant(page)  # first: closing it lays the page out anew, folded again
    if folded:
        page.get_by_role("button", name="Expand description").click()
        expect(page.get_by_role("button", name="Collapse description")).to_be_visible()
    return note


def test_the_sweep_experiment_lists_its_trial_runs(page: Any, ui: UI, screenshots: Path) -> None:
    from playwright.sync_api import expect

    blocked = loopback_only(page, ui.server.url)
    page.goto(ui.link)  # the link `tuner ui` printed for the sweep
    shot = screenshots / "mlflow-runs.png"
    see = f"screenshot {shot}"
    try:
        # CSS, not ARIA roles, for the view: the GenAI overview opens a modal popover, which
        # hides the rest of the page from the accessibility tree.
        main = page.locator("main")
        expect(main.locator("h2").first, see).to_have_text("Runs")
        expect(main.get_by_text(f"{TRIALS + 1} matching runs"), see).to_be_visible()  # the parent run and its trials
        close_assistant(page)
        # The trials are child runs, collapsed under the sweep's parent run: expand it.
        sweep_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=SWEEP, exact=True))
        sweep_row.get_by_role("button").first.click()
        # an early-stopped trial is told from a completed one by its name (both are "Finished" runs)
        for number in range(TRIALS):
            expect(page.get_by_role("link", name=trial_name(number), exact=True), see).to_be_visible()
        expect(page.get_by_role("link", name=re.compile(r"\(early-stopped\)$")), see).to_have_count(STOPPED)
        # Not MLflow's GenAI overview of an experiment without traces.
        assert "/overview" not in page.url, f"opened on {page.url} ({see})"
        expect(main.locator("h2", has_text="Overview"), see).to_have_count(0)
        expect(main.get_by_text("No data available for the selected time range"), see).to_have_count(0)
    finally:
        page.screenshot(path=shot, full_page=True)
    assert blocked == [], f"the UI fetched beyond its server: {blocked} ({see})"


def test_a_trial_run_says_its_state_value_and_config(page: Any, ui: UI, screenshots: Path) -> None:
    from playwright.sync_api import expect

    trial = ui.sweep.summary.trials[STOPPED_TRIAL]
    blocked = loopback_only(page, ui.server.url)
    page.set_viewport_size({"width": 1400, "height": 1600})  # the whole overview: MLflow scrolls inside the page
    page.goto(ui.run_link(ui.sweep.trial_run_ids[STOPPED_TRIAL]))
    shot = screenshots / "mlflow-trial-run.png"
    see = f"screenshot {shot}"
    try:
        main = page.locator("main")
        expect(main.get_by_role("heading", name=trial_name(STOPPED_TRIAL)), see).to_be_visible()
        note = description(page)
        expect(note, see).to_contain_text(
            f"early-stopped · trial {STOPPED_TRIAL} · val_loss {trial.value:.4g} at epoch 1 · "
            "stopped by the scheduler after epoch 1"
        )
        beta2 = trial.config["beta2"]
        expect(note, see).to_contain_text(f"lr {trial.config['lr']:.4g}, beta1 {trial.config['beta1']:.4g}")
        expect(note, see).to_contain_text(f"beta2 {beta2:.4g} (1 − beta2 {1 - beta2:.4g})")
        # 1 − beta as params too, to compare on a log axis
        for beta in ("beta1", "beta2"):
            row = main.get_by_role("row").filter(has=page.get_by_text(f"one_minus_{beta}", exact=True))
            expect(row, see).to_contain_text(f"{1 - trial.config[beta]:.6g}"[:6])
        # the training view, as the link asks: not the GenAI one
        expect(page.get_by_role("link", name="Runs", exact=True).first, see).to_be_visible()
        expect(page.get_by_text("Judges", exact=True), see).to_have_count(0)
    finally:
        page.screenshot(path=shot, full_page=True)
    assert blocked == [], f"the UI fetched beyond its server: {blocked} ({see})"


def test_the_sweep_run_leads_with_the_answer_and_the_analysis_plots(page: Any, ui: UI, screenshots: Path) -> None:
    from playwright.sync_api import expect

    best = ui.sweep.summary.best()[0]
    blocked = loopback_only(page, ui.server.url)
    page.set_viewport_size({"width": 1400, "height": 4400})  # the overview and its five plots
    page.goto(ui.run_link(ui.sweep.parent_run_id))
    shot = screenshots / "mlflow-sweep-run.png"
    see = f"screenshot {shot}"
    try:
        note = description(page, folded=True)
        first = note.locator("p").first
        expect(first, see).to_have_text(f"Recommended: trial {best.number}, a tuned config · val_loss {best.value:.4g}")
        expect(note, see).to_contain_text(f"lr {best.config['lr']:.4g}")
        expect(note, see).to_contain_text(f"val_loss {best.value:.4g} vs {FINAL[0]:.4g} with torch's defaults")
        expect(note, see).to_contain_text(f"{TRIALS} trials ({TRIALS - STOPPED} completed, {STOPPED} early-stopped)")
        # then the plots logged under analysis/, the learning curves first, served by MLflow itself
        images = note.locator("img")
        expect(images.first, see).to_have_attribute("src", re.compile(r"path=analysis%2Fintermediate_values\.png"))
        for plot in ("optimization_history", "parallel_coordinate", "slice", "importance"):
            expect(note.locator(f'img[src*="analysis%2F{plot}.png"]'), see).to_have_count(1)
        assert note.locator("p").first.bounding_box()["y"] < images.first.bounding_box()["y"], f"answer first ({see})"
        for image in images.all():
            expect(image, see).to_be_visible()
            # loaded: a broken image has no natural width
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    finally:
        page.screenshot(path=shot, full_page=True)
    assert blocked == [], f"the UI fetched beyond its server: {blocked} ({see})"


def test_the_compare_view_shows_the_chosen_runs(page: Any, ui: UI, screenshots: Path) -> None:
    from playwright.sync_api import expect

    chosen = (0, BEST_TRIAL, STOPPED_TRIAL)  # the baseline, the best, an early-stopped trial
    blocked = loopback_only(page, ui.server.url)
    page.set_viewport_size({"width": 1400, "height": 2400})  # the plot and the run details below it
    page.goto(ui.link)
    shot = screenshots / "mlflow-compare.png"
    see = f"screenshot {shot}"
    try:
        main = page.locator("main")
        sweep_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=SWEEP, exact=True))
        sweep_row.get_by_role("button").first.click()
        for number in chosen:
            link = page.get_by_role("link", name=trial_name(number), exact=True)
            page.get_by_role("row").filter(has=link).get_by_role("checkbox").check()
        main.get_by_role("button", name="Compare").click()
        expect(page.get_by_text(f"Comparing {len(chosen)} Runs from 1 Experiment"), see).to_be_visible()
        close_assistant(page)
        names = page.get_by_role("row").filter(has=page.get_by_text("Run Name:", exact=True))
        for number in chosen:
            expect(names, see).to_contain_text(trial_name(number))
        for param in ("lr", "one_minus_beta1", "one_minus_beta2"):
            row = page.get_by_role("row").filter(has=page.get_by_text(param, exact=True))
            expect(row, see).to_have_count(1)
        states = page.get_by_role("row").filter(has=page.get_by_text("adamtune.state", exact=True))
        expect(states, see).to_contain_text("completed")
        expect(states, see).to_contain_text("early-stopped")
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

    loopback_only(page, ui.server.url)
    page.goto(f"{ui.server.url}/#/experiments/{ui.sweep.experiment_id}")
    shot = screenshots / "mlflow-bare-link.png"
    try:
        view = page.locator("main h2").filter(has_text=re.compile(r"^(Runs|Overview)$"))
        expect(view).to_be_visible()  # whichever view the UI opened on
        assert view.inner_text() == "Runs", f"the experiment opened on {view.inner_text()!r} (screenshot {shot})"
    finally:
        page.screenshot(path=shot)


@pytest.mark.xfail(
    strict=True,
    reason="MLflow 3.17's runs table links a run without workflowType, and the run page then "
    "shows the GenAI sidebar (Judges, breadcrumb Evaluations) (see the module docstring)",
)
def test_a_run_opened_from_the_runs_table_keeps_the_training_view(page: Any, ui: UI, screenshots: Path) -> None:
    from playwright.sync_api import expect

    loopback_only(page, ui.server.url)
    page.goto(ui.link)
    shot = screenshots / "mlflow-run-from-table.png"
    try:
        page.get_by_role("row").filter(has=page.get_by_role("link", name=SWEEP, exact=True)).get_by_role(
            "button"
        ).first.click()
        page.get_by_role("link", name=trial_name(0), exact=True).click()
        description(page)  # the run page is there
        expect(page.get_by_text("Judges", exact=True)).to_have_count(0, timeout=2_000)
    finally:
        page.screenshot(path=shot)
