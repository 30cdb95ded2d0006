"""optuna-dashboard as ``tuner dashboard NAME`` serves it, in headless Chromium, on the shared
finished sweep (``conftest.sweep``): the study's metric by name, each trial's Adam config in 4
significant digits, the spec as YAML in the study's note.

``tuner dashboard`` serves the sweep's Optuna storage on a free loopback port; each page may
fetch from that server only: anything else is aborted and recorded. Each test saves a
screenshot of what it asserted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browsing import FINAL, SWEEP, TRIALS, Sweep, loopback_only, serve

BEST_TRIAL = FINAL.index(min(FINAL))

pytestmark = pytest.mark.slow  # starts optuna-dashboard: about 5 s


@dataclass(frozen=True)
class Dashboard:
    """A running ``tuner dashboard`` and the sweep it shows."""

    url: str  # http://127.0.0.1:PORT
    study: str  # the study's page, as `tuner dashboard` printed it
    sweep: Sweep


@pytest.fixture(scope="module")
def dashboard(sweep: Sweep) -> Iterator[Dashboard]:
    """``tuner dashboard`` on a free loopback port over the shared sweep's Optuna storage."""
    for server in serve(["dashboard", SWEEP], sweep, ready="/api/studies", name="dashboard"):
        printed = re.search(rf"optuna-dashboard on (\S+) \(sweep {SWEEP}\)", server.printed())
        assert printed, f"tuner dashboard printed no link to the study:\n{server.printed()[-3000:]}"
        assert printed.group(1).startswith(f"{server.url}/dashboard/studies/")
        yield Dashboard(server.url, printed.group(1), sweep)


def test_the_study_page_names_the_metric(page: Any, dashboard: Dashboard, screenshots: Path) -> None:
    from playwright.sync_api import expect

    blocked = loopback_only(page, dashboard.url)
    page.goto(dashboard.study)
    shot = screenshots / "dashboard-study.png"
    see = f"screenshot {shot}"
    try:
        expect(page.get_by_text(f"{SWEEP} (id=", exact=False).first, see).to_be_visible()
        # the history's value axis: the metric's name, set on the study (not "Objective 0")
        history = page.locator("div").filter(has=page.get_by_text("y Axis", exact=True)).last
        expect(history, see).to_contain_text("val_loss")
        best = dashboard.sweep.summary.best()[0]
        expect(page.get_by_text(f"Best Trial (number={best.number})"), see).to_be_visible()
        expect(page.get_by_text("Objective 0"), see).to_have_count(0)
    finally:
        page.screenshot(path=shot, full_page=True)
    assert blocked == [], f"the dashboard fetched beyond its server: {blocked} ({see})"


def test_a_trial_shows_its_adam_config_in_4_significant_digits(
    page: Any, dashboard: Dashboard, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    config = dashboard.sweep.summary.trials[BEST_TRIAL].config
    blocked = loopback_only(page, dashboard.url)
    page.goto(f"{dashboard.study}/trials?numbers={BEST_TRIAL}")
    shot = screenshots / "dashboard-trial.png"
    see = f"screenshot {shot}"
    try:
        expect(page.get_by_text(re.compile(rf"^Trial {BEST_TRIAL} \(trial_id=\d+\)$")), see).to_be_visible()
        expect(page.get_by_text(f"{TRIALS} Trials"), see).to_be_visible()
        # the user attribute adam_config: the config in one line, 1 − beta next to each beta
        shown = page.get_by_role("paragraph").filter(has_text=re.compile(r"^adam_config"))
        expect(shown, see).to_contain_text(
            f"lr {config['lr']:.4g}, beta1 {config['beta1']:.4g} (1-beta1 {1 - config['beta1']:.3e}), "
            f"beta2 {config['beta2']:.4g} (1-beta2 {1 - config['beta2']:.3e}), eps {config['eps']:.4g}, "
            "weight_decay 0, schedule constant"
        )
        assert f"{config['lr']:.4g}" != repr(config["lr"]), "the test's lr must have more than 4 digits"
    finally:
        page.screenshot(path=shot, full_page=True)
    assert blocked == [], f"the dashboard fetched beyond its server: {blocked} ({see})"


def test_the_study_note_holds_the_spec_as_yaml(page: Any, dashboard: Dashboard, screenshots: Path) -> None:
    import yaml
    from playwright.sync_api import expect

    blocked = loopback_only(page, dashboard.url)
    page.goto(f"{dashboard.study}/note")
    shot = screenshots / "dashboard-note.png"
    see = f"screenshot {shot}"
    try:
        expect(page.get_by_role("heading", name=f"Sweep {SWEEP}"), see).to_be_visible()
        block = page.locator("pre").filter(has_text="search_space:")
        expect(block, see).to_be_visible()
        spec = yaml.safe_load(block.inner_text())
        assert spec == dashboard.sweep.summary.spec, f"the note's YAML is not the sweep's spec ({see})"
    finally:
        page.screenshot(path=shot, full_page=True)
    assert blocked == [], f"the dashboard fetched beyond its server: {blocked} ({see})"
