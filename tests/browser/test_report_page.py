"""The sweep report page in headless Chromium, offline: its plots render and it fetches nothing.

A study of eight trials (trial 0 the baseline, torch's default Adam; the last three
early-stopped after epoch 1, as ASHA stops most trials) is
written to a SQLite Optuna storage without Ray, read back as a
:class:`~tuner.records.SweepSummary`, analysed with
:func:`tuner.review.analyze`, rendered with :func:`tuner.review.render_report` to a
file and opened as ``file://``; every http(s) request the page makes is aborted and
recorded.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

SWEEP = "report-sweep"
TRIALS = 8
STOPPED = 3  # the last three stop after epoch 1

pytestmark = pytest.mark.slow  # the analysis (fANOVA, six plots) takes about 4 s


def write_study(storage_url: str) -> Any:
    """The sweep's study (as :class:`tuner.study.StudyStore` creates it) with ``TRIALS`` trials of two
    epochs, trial 0 the baseline, the last ``STOPPED`` early-stopped after one; returns the store."""
    import optuna

    from tuner.baseline import BASELINE_ATTR, baseline_params
    from tuner.spec import parse_spec
    from tuner.study import StudyStore, distributions

    spec = parse_spec(
        {"name": SWEEP, "workload": "digits_mlp", "search_space": "adam", "n_trials": TRIALS, "max_epochs": 2}
    )
    store = StudyStore(storage_url)
    store.create(spec)
    study = optuna.load_study(study_name=SWEEP, storage=store.storage)
    dists = distributions(spec.search_space)
    rng = random.Random(0)
    for number in range(TRIALS):
        if number == 0:  # torch's defaults, as a sweep's first trial
            params = baseline_params(spec.search_space)
        else:  # log-uniform draws inside each searched range
            params = {name: math.exp(rng.uniform(math.log(d.low), math.log(d.high))) for name, d in dists.items()}
        value = 0.2 + 0.1 * (math.log10(params["lr"]) + 2.5) ** 2 + 0.05 * rng.random()  # best near lr ≈ 3e-3
        stopped = number >= TRIALS - STOPPED
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                state=optuna.trial.TrialState.PRUNED if stopped else optuna.trial.TrialState.COMPLETE,
                value=None if stopped else value,
                intermediate_values={1: value + 0.3} if stopped else {1: value + 0.3, 2: value},
                user_attrs={BASELINE_ATTR: True} if number == 0 else {},
            )
        )
    return store


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, Any]:
    """The report page of the eight-trial sweep, written to ``tmp_path/report.html``, and the sweep's summary."""
    from tuner.review import analyze, compare, render_report

    store = write_study(f"sqlite:///{tmp_path / 'optuna.db'}")
    summary = store.summary(SWEEP)
    analysis = analyze(store.storage, SWEEP)
    comparison = compare(summary)
    assert comparison is not None
    best = summary.best()[0]
    card = {"optimizer": "Adam", "config": best.config, "metric": {"name": "val_loss", "value": best.value}}
    page = tmp_path / "report.html"
    page.write_text(render_report(summary, analysis, card=card, comparison=str(comparison)), encoding="utf-8")
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
    assert fetched == [], f"the report fetched from the network: {fetched} ({see})"
