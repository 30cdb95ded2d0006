"""The sweep's plots as PNG bytes: Optuna's matplotlib visualizations on the Agg backend.

Each figure is drawn in its own ``rc_context`` (Optuna sets the ggplot style globally)
under one lock (pyplot's current figure is process-wide, and ``tuner serve`` may end two
sweeps at once), relabelled (``one_minus_beta2`` → ``1 − beta2``; log axes ticked ``1e-08``) and closed.
The learning curves are drawn here: every trial thin and grey, the baseline and the
recommended trial highlighted, with a legend. So are the parallel coordinates: Optuna's
``plot_parallel_coordinate`` sorts the params by name and puts the objective first, with no
option for either; here the axes follow Adam's order (:data:`ORDER`: lr, beta1, beta2, eps,
weight_decay, then the schedule), the value last, and the baseline and recommended trial stand out.
"""

from __future__ import annotations

import importlib
import io
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_args

from tuner.baseline import BASELINE_ATTR
from tuner.review._importance import METHOD_NAME, MIN_TRIALS
from tuner.search_space import HyperparameterName

if TYPE_CHECKING:
    import optuna
    from matplotlib.figure import Figure

#: Plot names in display order, with their titles.
PLOT_TITLES: dict[str, str] = {
    "optimization_history": "Optimization history",
    "intermediate_values": "Learning curves (per epoch)",
    "parallel_coordinate": "Parallel coordinates",
    "slice": "Slice plots",
    "contour_lr_beta2": "Contour: lr × (1 − beta2)",
    "importance": f"Hyperparameter importance ({METHOD_NAME})",
}
#: Fewest trials (with lr and 1 − beta2) the contour is drawn from: below it the landscape is made up.
CONTOUR_MIN_TRIALS = 10
#: How plots and the report name the study's params that differ from the hyperparameter's name.
PARAM_LABELS: dict[str, str] = {"one_minus_beta1": "1 − beta1", "one_minus_beta2": "1 − beta2"}
#: Adam's order (``torch.optim.Adam``'s arguments, as the search spaces list them): lr, betas,
#: eps, weight_decay, then the schedule and the algorithm.
ORDER: tuple[str, ...] = get_args(HyperparameterName)
#: The user attribute of an analysed trial that holds its number in the sweep's study.
NUMBER_ATTR = "adamtune.number"
_PYPLOT = threading.Lock()


def display_order(param: str) -> int:
    """Sort key of a param as the study records it (``one_minus_beta2`` sorts as ``beta2``):
    :data:`ORDER`, unknown params last."""
    name = param.removeprefix("one_minus_")
    return ORDER.index(name) if name in ORDER else len(ORDER)


def plots(
    study: optuna.Study,
    usable: optuna.Study,
    params: list[str],
    importance: dict[str, dict[str, float]],
    metric: str,
    label: str,
    notes: list[str],
    *,
    highlight: int | None = None,
) -> dict[str, bytes]:
    """PNG plots by name, in the order of :data:`PLOT_TITLES`; a plot that cannot be drawn gets a note instead.

    Args:
        study: the sweep's study (history and learning curves show all its trials).
        usable: its usable trials at one value each (parameter plots), each with its number in
            ``study`` as the user attribute :data:`NUMBER_ATTR`.
        params: the searched params, in display order (the parallel coordinates' axes, left to right).
        importance: the importances to chart (none: no chart).
        metric: the sweep's metric, the history's and learning curves' value axis label.
        label: what ``usable``'s values are (``val_loss at epoch 1``), the parameter plots' value axis.
        notes: receives why a plot was skipped.
        highlight: the recommended trial's number, highlighted in the learning curves.
    """
    import matplotlib
    from optuna.exceptions import ExperimentalWarning
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as vis

    trials = study.get_trials(deepcopy=False)
    n = len(usable.trials)
    few = f"needs at least {MIN_TRIALS} trials with every searched param and a value; got {n}"
    contour = ["lr", "one_minus_beta2"]
    draw: dict[str, tuple[Callable[[], Any], str | None]] = {
        "optimization_history": (
            lambda: vis.plot_optimization_history(study, target_name=metric),
            None if any(t.state == TrialState.COMPLETE for t in trials) else "no completed trial",
        ),
        "intermediate_values": (
            lambda: _learning_curves(trials, metric, highlight),
            None if any(t.intermediate_values for t in trials) else "no trial reported an epoch",
        ),
        "parallel_coordinate": (
            lambda: _parallel_coordinates(usable, params, label, highlight),
            None if n >= MIN_TRIALS else few,
        ),
        "slice": (lambda: vis.plot_slice(usable, params=params, target_name=label), None if n >= MIN_TRIALS else few),
        "contour_lr_beta2": (
            lambda: vis.plot_contour(usable, params=contour, target_name=label),
            "needs lr and beta2 searched, beta2 as one_minus"
            if not set(contour) <= set(params)
            else None
            if n >= CONTOUR_MIN_TRIALS
            else f"needs at least {CONTOUR_MIN_TRIALS} trials; got {n}",
        ),
        "importance": (
            lambda: _importance_chart(importance, n, label),
            None if importance else "no importance computed",
        ),
    }
    drawn = {}
    with _PYPLOT:
        matplotlib.use("Agg")
        for name, (plot, skip) in draw.items():
            if skip is not None:
                notes.append(f"{name} plot skipped: {skip}")
                continue
            with matplotlib.rc_context(), warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # Optuna's matplotlib module is experimental
                drawn[name] = _png(_figure(plot()))
    return drawn


def _learning_curves(trials: list[optuna.trial.FrozenTrial], metric: str, highlight: int | None) -> Any:
    """Every trial's per-epoch values: others thin and grey, the baseline dashed, the recommended trial bold; a legend."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    others = False
    for t in sorted(trials, key=lambda t: t.number):
        if not t.intermediate_values:
            continue
        epochs = sorted(t.intermediate_values)
        values = [t.intermediate_values[e] for e in epochs]
        if t.number == highlight:
            ax.plot(
                epochs,
                values,
                color="#d62728",
                linewidth=2.6,
                marker="o",
                zorder=4,
                label=f"recommended (trial {t.number})",
            )
        elif t.user_attrs.get(BASELINE_ATTR):
            ax.plot(
                epochs,
                values,
                color="#1d2433",
                linewidth=2.2,
                linestyle="--",
                marker="s",
                zorder=3,
                label=f"baseline: torch defaults (trial {t.number})",
            )
        else:
            ax.plot(
                epochs,
                values,
                color="#8c96a8",
                linewidth=0.9,
                alpha=0.7,
                marker=".",
                zorder=2,
                label=None if others else "other trials",
            )
            others = True
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best", fontsize="small")
    return ax


def _parallel_coordinates(usable: optuna.Study, params: list[str], label: str, highlight: int | None) -> Any:
    """A line per trial across one vertical axis per param, in ``params``' order, then the value
    (``label``); coloured by the value, the best darkest, the baseline dashed and the recommended
    trial (number ``highlight``) bold red on top. Log-scale params are spaced by their logarithm."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.collections import LineCollection
    from optuna.study import StudyDirection

    trials = sorted(usable.trials, key=lambda t: t.user_attrs.get(NUMBER_ATTR, t.number))
    axes = [_param_axis([t.params[p] for t in trials], trials[0].distributions[p]) for p in params]
    values = [float(t.value) for t in trials]
    axes.append(_numeric_axis(values, log=False, digits=4))
    ys = np.array([positions for positions, _ in axes]).T  # (trials, axes) heights in [0, 1]
    xs = np.arange(len(axes))

    fig, ax = plt.subplots(figsize=(1.5 * len(axes) + 2.5, 4.8))
    cmap = "viridis" if usable.direction == StudyDirection.MINIMIZE else "viridis_r"  # the best darkest
    lines = LineCollection([np.column_stack([xs, y]) for y in ys], cmap=cmap, linewidths=1.3, alpha=0.8)
    lines.set_array(np.asarray(values))
    ax.add_collection(lines)
    fig.colorbar(lines, ax=ax, pad=0.02).set_label(label)
    for t, y in zip(trials, ys, strict=True):
        number = t.user_attrs.get(NUMBER_ATTR, t.number)
        if number == highlight:
            ax.plot(xs, y, color="#d62728", linewidth=2.8, zorder=4, label=f"recommended (trial {number})")
        elif t.user_attrs.get(BASELINE_ATTR):
            ax.plot(xs, y, color="#1d2433", linewidth=2.2, linestyle="--", zorder=3, label=f"baseline (trial {number})")
    for x, (_, ticks) in zip(xs, axes, strict=True):
        ax.axvline(x, color="#5a6478", linewidth=1, zorder=1)
        for y, text in ticks:
            ax.text(
                x + 0.04,
                y,
                text,
                fontsize=8,
                va="center",
                ha="left",
                zorder=5,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5},
            )
    ax.set_xticks(xs, [PARAM_LABELS.get(p, p) for p in params] + [label])
    ax.set_xlim(-0.15, len(axes) - 0.5)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"Parallel coordinates ({len(trials)} trials)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize="small", frameon=False)
    return ax


def _param_axis(
    values: list[Any], distribution: optuna.distributions.BaseDistribution
) -> tuple[list[float], list[tuple[float, str]]]:
    """Heights in [0, 1] of a param's values and its tick labels: a categorical param's choices
    evenly spaced, a numeric one's range (by its logarithm on a log scale)."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        choices = list(distribution.choices)
        step = 1 / max(len(choices) - 1, 1)
        return [choices.index(v) * step for v in values], [(i * step, str(c)) for i, c in enumerate(choices)]
    return _numeric_axis([float(v) for v in values], log=bool(getattr(distribution, "log", False)), digits=2)


def _numeric_axis(values: list[float], *, log: bool, digits: int) -> tuple[list[float], list[tuple[float, str]]]:
    """Heights in [0, 1] of ``values`` over their range (all at 0.5 when they are equal) and five
    ticks labelled with ``digits`` significant digits."""
    import math

    scaled = [math.log10(v) for v in values] if log else list(values)
    low, high = min(scaled), max(scaled)
    if high == low:
        return [0.5] * len(values), [(0.5, f"{values[0]:.{digits}g}")]
    ticks = [low + (high - low) * i / 4 for i in range(5)]
    shown = [(10**t if log else t) for t in ticks]
    return [(v - low) / (high - low) for v in scaled], [(i / 4, f"{v:.{digits}g}") for i, v in enumerate(shown)]


def _figure(axes: Any) -> Figure:
    """The figure of what a plot function returned (one ``Axes`` or an array of them)."""
    import numpy as np

    return np.asarray(axes, dtype=object).flat[0].figure


def _importance_chart(importance: dict[str, dict[str, float]], n: int, label: str) -> Any:
    """Horizontal bars: each param's importance (one method, named in the title)."""
    import matplotlib.pyplot as plt
    import numpy as np

    params = sorted({p for values in importance.values() for p in values}, key=display_order)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.5 * len(params) * len(importance)))
    height = 0.8 / len(importance)
    y = np.arange(len(params))
    for i, (name, values) in enumerate(importance.items()):
        ax.barh(y + i * height, [values.get(p, 0.0) for p in params], height=height, label=name.replace("_", "-"))
    ax.set_yticks(y + height * (len(importance) - 1) / 2, [PARAM_LABELS.get(p, p) for p in params])
    ax.invert_yaxis()
    ax.set_xlabel(f"{METHOD_NAME} importance (sums to 1), from {n} trials' {label}")
    ax.set_title(f"Hyperparameter importance ({METHOD_NAME})")
    return ax


def warm_up() -> None:
    """Pay the plots' one-time costs now: matplotlib on Agg, Optuna's matplotlib visualizations,
    and one small figure drawn to PNG (fonts, the renderer). Measured on this 2-core CPU, the
    first analysis of a 16-trial sweep took 2.9 s and a second one 1.2 s; a sweep's run calls this
    on a thread while its trials train (tuner/service/_running.py)."""
    import matplotlib

    with _PYPLOT:
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        importlib.import_module("optuna.visualization.matplotlib")
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.set_yscale("log")
        ax.plot([1.0, 2.0], [1e-3, 1e-1], label="lr")
        ax.legend()
        _png(fig)


def _png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes, params relabelled (``1 − beta2``); the figure is closed."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    try:
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if axis.get_scale() == "log":  # eps, 1 − beta, lr: 1e-08, not 10^-8 mathtext crowding its neighbours
                    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.0e}"))
                    axis.set_minor_formatter(NullFormatter())
            for text in (ax.xaxis.label, ax.yaxis.label, ax.title):
                text.set_text(_relabel(text.get_text()))
            for axis in (ax.xaxis, ax.yaxis):
                if isinstance(axis.get_major_locator(), FixedLocator):  # ticks named by hand (param names)
                    labels = [t.get_text() for t in axis.get_ticklabels()]
                    if any(_relabel(s) != s for s in labels):
                        axis.set_ticklabels([_relabel(s) for s in labels])
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _relabel(text: str) -> str:
    """``text`` with study param names replaced by their labels."""
    for param, shown in PARAM_LABELS.items():
        text = text.replace(param, shown)
    return text
