"""The report page: self-contained (opens offline), escaped, with the sections the browser test looks for."""

from __future__ import annotations

import base64
import dataclasses
from html.parser import HTMLParser

import optuna
import pytest
import yaml
from study_cases import add_baseline, add_trials, new_study

from tuner.records import SweepSummary, TrialRecord
from tuner.review import Analysis, analyze, render_report

PNG = b"\x89PNG\r\n\x1a\n"
CARD = {
    "lr": 0.0031,
    "betas": [0.87, 0.9991],
    "eps": 1e-08,
    "schedule": {"name": "cosine", "warmup_fraction": 0.05},
    "source": {"sweep": "rep", "trial": 3, "note": "tuned <b>here</b>"},
}
EVIL = "<script>alert('x')</script>"


class Page(HTMLParser):
    """Every element's tag and attributes, and the text inside each element with an id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag not in ("img", "meta", "br", "link", "input"):
            self._open.append((tag, attributes.get("id")))
            if attributes.get("id"):
                self.text.setdefault(attributes["id"], "")

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id:
                self.text[element_id] += data

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def config(lr: float) -> dict:
    return {
        "lr": lr,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "warmup_fraction": 0.0,
        "schedule": "constant",
        "amsgrad": False,
        "decoupled_weight_decay": False,
    }


SUMMARY = SweepSummary(
    name="rep",
    spec={"workload": "digits_mlp", "metric": "val_loss", "mode": "min", "n_trials": 5},
    trials=(
        TrialRecord(0, "completed", {}, value=0.195, epochs=3, baseline=True),  # config-less: must not crash the tables
        TrialRecord(1, "completed", config(1e-3), value=0.123, epochs=3),
        TrialRecord(2, "early-stopped", config(1e-1), value=0.9, epochs=1, reason="stopped by ASHA at epoch 1"),
        TrialRecord(3, "failed", config(1e-5), reason=f"RuntimeError: {EVIL}"),
        TrialRecord(4, "completed", config(3e-3), value=0.101, epochs=3),
    ),
)


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    storage = optuna.storages.InMemoryStorage()
    study = new_study(storage, "rep", "adam")
    add_baseline(study, "adam")
    add_trials(study, "adam", 11, pruned_every=3)
    return analyze(storage, "rep")


def render(analysis: Analysis, **overrides) -> str:
    kwargs = {"card": CARD, "comparison": "val_loss 0.101 vs 0.195 with torch's defaults, −48 %"} | overrides
    return render_report(SUMMARY, analysis, **kwargs)


def test_the_page_fetches_nothing_and_inlines_every_plot_as_a_png(analysis: Analysis) -> None:
    page = Page(render(analysis))

    for tag, attrs in page.elements:
        for key in ("src", "href", "action", "data"):
            value = attrs.get(key, "").strip().lower()
            assert not value.startswith(("http://", "https://", "//")), (tag, key, value)
        assert not (tag == "script" and "src" in attrs)
        assert not (tag == "link" and "stylesheet" in attrs.get("rel", ""))
    images = page.all("img")
    plots = [img for img in images if img.get("class") == "plot"]
    assert len(images) == len(plots) == len(analysis.plots) == 6
    for img in plots:
        assert img["alt"]
        head, _, data = img["src"].partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(data).startswith(PNG)
    assert page.all("div", id="plots")


def test_user_text_is_escaped(analysis: Analysis) -> None:
    html = render(analysis)
    page = Page(html)

    assert EVIL not in html
    assert not page.all("script")
    assert EVIL in page.text["trials"]  # shown as text
    assert "<b>" not in html and "tuned <b>here</b>" in page.text["config-card"]


def test_sections_show_the_comparison_top_trials_every_trial_and_the_card(analysis: Analysis) -> None:
    page = Page(render(analysis, top_k=2))

    assert page.text["baseline"].strip() == "val_loss 0.101 vs 0.195 with torch's defaults, −48 %"
    header = page.text["summary"]
    assert "Sweep rep" in header and "digits_mlp" in header and "val_loss" in header and "5 trials" in header
    top = page.text["top-k"]
    assert top.index("0.101") < top.index("0.123") and "0.195" not in top  # best first, two rows
    trials = page.text["trials"]
    for t in SUMMARY.trials:
        assert t.state in trials
    assert "stopped by ASHA at epoch 1" in trials
    assert "0 (baseline)" in trials
    assert yaml.safe_load(page.text["config-card"]) == CARD
    assert "fANOVA" in page.text["importance"] and "ped-anova" not in page.text["importance"]  # one method, named
    assert "1 − beta2 (one_minus_beta2)" in page.text["importance"]
    assert "0.999 (1 − beta2 0.001)" in trials and "1e-08" in trials and "constant" in trials  # each trial's config
    assert "epoch 1" in trials  # the early-stopped trial's rung


def test_the_headline_names_the_recommended_trial_its_config_and_a_noise_caveat(analysis: Analysis) -> None:
    page = Page(render(analysis))

    headline = " ".join(page.text["headline"].split())
    assert "Recommended: trial 4" in headline
    assert (
        "lr 0.003, beta1 0.9 (1 − beta1 0.1), beta2 0.999 (1 − beta2 0.001), eps 1e-08, weight_decay 0, schedule constant"
        in headline
    )
    caveat = page.text["caveat"]  # one seed and 3 completed trials
    assert "one seed and 3 completed trials" in caveat and "tuner reevaluate rep" in caveat


def test_no_caveat_once_the_recommended_trial_has_seeds(analysis: Analysis) -> None:
    reevaluated = dataclasses.replace(SUMMARY, reevaluations={4: {1: 0.1, 2: 0.11}})
    page = Page(render_report(reevaluated, analysis, card=None, comparison=None))

    assert "Recommended: trial 4" in page.text["headline"] and "caveat" not in page.text


def test_no_completed_trial_no_recommendation(analysis: Analysis) -> None:
    pending = dataclasses.replace(SUMMARY, trials=SUMMARY.trials[2:4])
    page = Page(render_report(pending, analysis, card=None, comparison=None))

    assert "no recommendation" in page.text["headline"]


def test_rung_cutoff_and_plot_captions_come_from_the_analysis(analysis: Analysis) -> None:
    page = Page(render_report(SUMMARY, dataclasses.replace(analysis, continued={1: 0.5}), card=None, comparison=None))

    assert "epoch 1; the worst that went on: 0.5" in page.text["trials"]
    assert f"({analysis.value_label}, {analysis.n_trials} trials)" in page.text["plot-slice"]
    assert "@media (min-width: 1200px)" in render(analysis)  # two columns on a wide screen


def test_optional_sections_are_left_out(analysis: Analysis) -> None:
    page = Page(render(analysis, card=None, comparison=None))

    assert "baseline" not in page.text and "config-card" not in page.text and "reevaluations" not in page.text
    assert "trials" in page.text and "top-k" in page.text


def test_reevaluations_show_each_seed_and_mean_with_std(analysis: Analysis) -> None:
    reevaluated = dataclasses.replace(SUMMARY, reevaluations={4: {1: 0.1, 2: 0.2, 3: None}, 1: {1: 0.12}})
    page = Page(render_report(reevaluated, analysis, card=CARD, comparison=None))

    text = page.text["reevaluations"]
    assert "0.1, 0.2, failed" in text
    assert "0.15 ± 0.0707 (2 seeds)" in text
    assert "0.12 (1 seed)" in text


def test_an_analysis_without_plots_still_renders(analysis: Analysis) -> None:
    empty = Analysis(notes=("importance needs at least 2 completed trials with searched params; got 0",))
    page = Page(render_report(SUMMARY, empty, card=None, comparison=None))

    assert not page.all("img")
    assert "No plot could be drawn" in page.text["plots"]
    assert "got 0" in page.text["notes"]


def test_top_k_below_one_is_refused(analysis: Analysis) -> None:
    with pytest.raises(ValueError, match="top_k >= 1"):
        render(analysis, top_k=0)
