"""The sweep report: one self-contained HTML page (``tuner report NAME``).

The page opens offline: its CSS is inline and its plots are ``data:image/png;base64``
URIs; it links to nothing. It leads with the answer: the headline names the recommended
trial, its config (4 significant digits) and its change against the baseline, with a caveat
and the ``tuner reevaluate NAME`` command when that change may be noise (one seed and fewer
than :data:`NOISE_MIN_COMPLETED` completed trials, or a change under :data:`NOISE_CHANGE`).
Then the plots and importance of :func:`tuner.review.analyze` (two columns on a wide
screen), the top-k trials with their Adam configs, every trial's state, config, reason and
rung cutoff, re-evaluations (seed values, mean ± std) and the config card as YAML. All text
from users and stores is escaped (Jinja2 autoescape).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tuner.records import SweepSummary, TrialRecord
from tuner.review._analysis import Analysis
from tuner.review._compare import compare
from tuner.review._importance import METHOD, METHOD_NAME
from tuner.review._plots import PARAM_LABELS, PLOT_TITLES

if TYPE_CHECKING:
    import jinja2

__all__ = ["render_report"]

TEMPLATE = "report.html.j2"
#: With one seed, fewer completed trials than this make the headline's change "may be noise".
NOISE_MIN_COMPLETED = 5
#: With one seed, a change against the baseline smaller than this (a fraction) may be noise.
NOISE_CHANGE = 0.05
#: Plots whose value axis is the analysis' common-rung value (their caption says which).
_RUNG_PLOTS = ("parallel_coordinate", "slice", "contour_lr_beta2", "importance")


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
        "headline": _headline(summary),
        "plots": [
            {
                "name": name,
                "title": PLOT_TITLES.get(name, name),
                "detail": _detail(name, analysis),
                "src": _data_uri(png),
            }
            for name, png in analysis.plots.items()
        ],
        "notes": analysis.notes,
        "importance_basis": f"from {analysis.n_trials} trials' {analysis.value_label}" if analysis.value_label else "",
        "evaluators": [METHOD_NAME if ev == METHOD else ev.replace("_", "-") for ev in analysis.importance],
        "importance_rows": _importance_rows(analysis.importance),
        "top": _top(summary, top_k),
        "trials": [
            {"t": t, "cells": _config_cells(t.config), "cutoff": _cutoff(t, analysis)}
            for t in sorted(summary.trials, key=lambda t: t.number)
        ],
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


def _config_cells(config: Mapping[str, Any]) -> dict[str, str]:
    """A trial's Adam config for a table row, 4 significant digits (1 − beta next to beta)."""
    cells = {k: _number(config.get(k)) for k in ("lr", "eps", "weight_decay", "warmup_fraction")}
    for beta in ("beta1", "beta2"):
        value = config.get(beta)
        cells[beta] = _number(value) + (f" (1 − {beta} {1 - value:.4g})" if isinstance(value, float) else "")
    cells["schedule"] = str(config.get("schedule", "—"))
    return cells


def _config_text(config: Mapping[str, Any]) -> str:
    """``lr 0.003, beta1 0.9, beta2 0.999 (1 − beta2 0.001), eps 1e-08, ...`` (4 significant digits)."""
    cells = _config_cells(config)
    parts = [f"{k} {cells[k]}" for k in ("lr", "beta1", "beta2", "eps", "weight_decay") if k in config]
    if "schedule" in config:
        parts.append(f"schedule {cells['schedule']}")
        if config.get("schedule") != "constant" and "warmup_fraction" in config:
            parts.append(f"warmup_fraction {cells['warmup_fraction']}")
    return ", ".join(parts)


def _headline(summary: SweepSummary) -> dict[str, Any] | None:
    """The answer: the recommended trial, its config, its change against the baseline and, when
    that may be noise, a caveat with the command that settles it; ``None`` before a trial completed."""
    best = next(iter(summary.pick()), None)
    if best is None:
        return None
    comparison = compare(summary, best)
    who = "torch's defaults (the baseline)" if best.baseline else "a tuned config"
    stats = summary.seed_stats(best.number)
    seeds = len(stats.values) if stats is not None else 1
    completed = summary.count("completed")
    noisy = (
        comparison is not None
        and seeds < 2
        and (completed < NOISE_MIN_COMPLETED or abs(comparison.change) < NOISE_CHANGE)
    )
    caveat = None
    if noisy:
        change = f"{comparison.change * 100:+.1f} %".replace("-", "\N{MINUS SIGN}")
        caveat = (
            f"From one seed and {completed} completed trial{'s' if completed != 1 else ''}, a {change} difference "
            "may be noise; re-train the best configs on new seeds before trusting it:"
        )
    return {
        "trial": best.number,
        "who": who,
        "config": _config_text(best.config) if best.config else "",
        "caveat": caveat,
        "command": f"tuner reevaluate {summary.name}",
        "seeds": seeds,
    }


def _detail(plot: str, analysis: Analysis) -> str:
    """A plot's caption detail: what its value axis is and how many trials it shows; the parallel
    coordinates' axes, left to right."""
    if plot not in _RUNG_PLOTS or not analysis.value_label:
        return ""
    detail = f"{analysis.value_label}, {analysis.n_trials} trials"
    if plot == "parallel_coordinate" and analysis.params:
        axes = [PARAM_LABELS.get(p, p) for p in analysis.params] + [analysis.value_label]
        detail += "; axes " + " → ".join(axes)
    return detail


def _top(summary: SweepSummary, top_k: int) -> dict[str, Any]:
    """The top-trials table: the ``top_k`` recommended trials as ``rows`` (``rank``, ``t``; the
    baseline marked where it is one of them), ``of`` (how many trials rank: the completed ones), and
    ``baseline``: the baseline's own row when it ranks below the table, with its ``rank``, or with
    ``rank`` ``None`` when it has no value to rank (it failed or is running); ``None`` without a
    baseline or when it is in ``rows``."""
    ranked = summary.pick(len(summary.trials))
    rows = [{"rank": i, "t": t} for i, t in enumerate(ranked[:top_k], start=1)]
    base = next((t for t in summary.trials if t.baseline), None)
    if base is None or any(row["t"] is base for row in rows):
        below = None
    else:
        below = {"rank": next((i for i, t in enumerate(ranked, start=1) if t is base), None), "t": base}
    return {"rows": rows, "of": len(ranked), "baseline": below}


def _cutoff(trial: TrialRecord, analysis: Analysis) -> str:
    """An early-stopped trial's rung: its epoch, and the worst value that went on past it where the study shows one."""
    if trial.state != "early-stopped":
        return ""
    went_on = analysis.continued.get(trial.epochs)
    if went_on is None:
        return f"epoch {trial.epochs}"
    return f"epoch {trial.epochs}; the worst that went on: {went_on:.4g}"


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
