"""The sweep report page in headless Chromium, offline: its plots render and it fetches nothing.

The shared finished sweep (``conftest.sweep``: trial 0 the baseline, torch's default Adam; the
last three early-stopped after epoch 1, as ASHA stops most trials) is read back from its Optuna
storage as a :class:`~tuner.records.SweepSummary`, analysed with :func:`tuner.review.analyze`,
rendered with :func:`tuner.review.render_report` (the top three trials: the baseline ranks
below them) to a file and opened as ``file://``; every http(s) request the page makes is
aborted and recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browsing import BASELINE_RANK, STOPPED, SWEEP, TRIALS, Sweep

TOP_K = 3  # rows of the top-trials table: the baseline ranks below them

pytestmark = pytest.mark.slow  # the analysis (fANOVA, six plots) takes about 4 s


@pytest.fixture
def report(sweep: Sweep, tmp_path: Path) -> tuple[Path, Any]:
    """The report page of the shared sweep, written to ``tmp_path/report.html``, and the sweep's summary."""
    from tuner.review import analyze, compare, render_report
    from tuner.settings import Settings
    from tuner.study import StudyStore

    store = StudyStore(Settings(home=sweep.home).study_storage)
    summary = store.summary(SWEEP)
    analysis = analyze(store.storage, SWEEP)
    comparison = compare(summary)
    assert comparison is not None
    best = summary.best()[0]
    card = {"optimizer": "Adam", "config": best.config, "metric": {"name": "val_loss", "value": best.value}}
    html = render_report(summary, analysis, card=card, comparison=str(comparison), top_k=TOP_K)
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    return page, summary


def test_the_report_page_renders_its_plots_offline(page: Any, report: tuple[Path, Any], screenshots: Path) -> None:
    from playwright.sync_api import expect

    html, summary = report

    fetched: list[str] = []

    def offline(route: Any) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            fetched.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto(html.as_uri())  # waits for the load event: images included
    shot = screenshots / "report.png"
    page.screenshot(path=shot, full_page=True)
    see = f"screenshot {shot}"

    plots = page.eval_on_selector_all(
        "#plots img.plot", "imgs => imgs.map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"
    )
    assert len(plots) >= 4, f"{len(plots)} plots on the page: {plots} ({see})"
    blank = [p for p in plots if not (p["complete"] and p["width"] > 0)]
    assert blank == [], f"plots that did not render: {blank} ({see})"
    for plot in page.locator("#plots img.plot").all():
        expect(plot, see).to_be_visible()
    expect(page.locator("#trials tbody tr"), see).to_have_count(TRIALS)
    best = summary.best()[0]
    expect(page.locator("#top-k tbody tr").first, see).to_contain_text(f"{best.value:.6g}")
    expect(page.locator("#baseline"), see).to_contain_text("torch's defaults")
    # the page leads with the answer: the recommended trial and its config
    expect(page.locator("#headline"), see).to_contain_text(f"Recommended: trial {best.number}")
    expect(page.locator("#headline"), see).to_contain_text(f"lr {best.config['lr']:.4g}")
    # every trial, early-stopped ones too, with its config and rung
    expect(page.locator("#trials tbody tr.early-stopped"), see).to_have_count(STOPPED)
    expect(page.locator("#trials tbody tr.early-stopped").first, see).to_contain_text("epoch 1")
    expect(page.locator("#plot-slice figcaption"), see).to_contain_text(
        f"val_loss at epoch 1, {TRIALS} trials"
    )  # all of them
    # two columns at 1400 px: the first two plots side by side
    first, second = (page.locator("#plots figure").nth(i).bounding_box() for i in (0, 1))
    assert abs(first["y"] - second["y"]) < 2 and second["x"] > first["x"] + first["width"] / 2, f"one column ({see})"
    expect(page.locator("pre#config-card"), see).to_contain_text("optimizer: Adam")
    # the parallel coordinates' axes in Adam's order, the value last
    expect(page.locator("#plot-parallel_coordinate figcaption"), see).to_contain_text(
        "axes lr → 1 − beta1 → 1 − beta2 → eps → val_loss at epoch 1"
    )
    # the top trials, and the baseline's rank among all of them
    completed = TRIALS - STOPPED
    expect(page.locator("#top-k").locator("xpath=preceding-sibling::h2[1]"), see).to_have_text(
        f"Top {TOP_K} of {completed} trials"
    )
    expect(page.locator("#top-k tbody tr"), see).to_have_count(TOP_K)
    baseline = summary.trials[0]
    expect(page.locator("#baseline-rank"), see).to_have_text(
        f"The baseline, torch's defaults (trial 0), ranks {BASELINE_RANK} of {completed}: val_loss {baseline.value:.6g}."
    )
    assert fetched == [], f"the report fetched from the network: {fetched} ({see})"
