"""The sweep report: one self-contained HTML page (``tuner report NAME``).

The page opens offline: its CSS is inline and its plots are ``data:image/png;base64``
URIs; it links to nothing. It shows the sweep's title, the baseline comparison, the
plots and importance of :func:`tuner.review.analyze`, the top-k trials with their Adam
configs, every trial's state and reason, re-evaluations (seed values, mean ± std) and the
config card as YAML. All text from users and stores is escaped (Jinja2 autoescape).
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping

from tuner.records import SweepSummary
from tuner.review._analysis import Analysis
from tuner.review._plots import PARAM_LABELS, PLOT_TITLES

if TYPE_CHECKING:
    import jinja2

__all__ = ["render_report"]

TEMPLATE = "report.html.j2"


def render_report(
    summary: SweepSummary,
    analysis: Analysis,
    *,
    card: Mapping[str, Any] | None,
    comparison: str | None,
    top_k: int = 10,
) -> str:
    """The sweep's report page.

    Args:
        summary: the sweep's spec, trials and re-evaluations (seed values, mean ± std by
            :meth:`~tuner.records.SweepSummary.seed_stats`).
        analysis: its plots, importance and notes (:func:`tuner.review.analyze`).
        card: the best config's card (shown as YAML; plain dicts, lists, strings, numbers,
            bools and ``None``), or ``None`` to leave it out.
        comparison: the tuned result against the baseline, e.g. ``"val_loss 0.123 vs
            0.195 with torch's defaults, −37 %"``; ``None`` leaves the line out.
        top_k: rows of the top-trials table.

    Returns:
        The HTML page (UTF-8 text).

    Raises:
        ValueError: ``top_k`` < 1.
        yaml.representer.RepresenterError: ``card`` holds a value YAML's safe dumper cannot write.
    """
    import yaml

    if top_k < 1:
        raise ValueError(f"top_k >= 1 must hold, but got top_k={top_k}")
    spec = summary.spec
    context = {
        "name": summary.name,
        "workload": spec.get("workload", "?"),
        "metric": spec.get("metric", "value"),
        "mode": spec.get("mode", "min"),
        "counts": _counts(summary),
        "comparison": comparison,
        "plots": [
            {"name": name, "title": PLOT_TITLES.get(name, name), "src": _data_uri(png)}
            for name, png in analysis.plots.items()
        ],
        "notes": analysis.notes,
        "evaluators": [ev.replace("_", "-") for ev in analysis.importance],
        "importance_rows": _importance_rows(analysis.importance),
        "top": summary.pick(top_k),
        "trials": sorted(summary.trials, key=lambda t: t.number),
        "reevaluations": [_reevaluation(summary, number) for number in summary.reevaluations],
        "card_yaml": yaml.safe_dump(dict(card), sort_keys=False, allow_unicode=True) if card is not None else None,
    }
    return _environment().get_template(TEMPLATE).render(context)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tuner.review", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _number
    return env


def _number(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; ``—`` for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}g}"
    return str(value)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _counts(summary: SweepSummary) -> str:
    states = ("completed", "early-stopped", "failed", "running")
    parts = [f"{summary.count(s)} {s}" for s in states if summary.count(s)]
    return f"{len(summary.trials)} trials" + (f": {', '.join(parts)}" if parts else "")


def _importance_rows(importance: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """One row per param (most important first by the first evaluator), a value per evaluator."""
    params: dict[str, None] = {}
    for values in importance.values():
        params.update(dict.fromkeys(values))
    return [
        {
            "label": f"{PARAM_LABELS[p]} ({p})" if p in PARAM_LABELS else p,
            "by_evaluator": [values.get(p) for values in importance.values()],
        }
        for p in params
    ]


def _reevaluation(summary: SweepSummary, number: int) -> dict[str, Any]:
    """A re-evaluation row: the value per seed (``failed`` where a run failed) and their mean ± (sample) std."""
    shown = ", ".join("failed" if v is None else _number(v, 6) for v in summary.reevaluations[number].values())
    stats = summary.seed_stats(number)
    if stats is None:
        text = "—"
    elif len(stats.values) == 1:
        text = f"{_number(stats.mean, 6)} (1 seed)"
    else:
        text = f"{_number(stats.mean, 6)} ± {_number(stats.std, 3)} ({len(stats.values)} seeds)"
    return {"trial": number, "seeds": shown, "summary": text}
