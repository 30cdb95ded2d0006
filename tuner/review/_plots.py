"""The sweep's plots as PNG bytes: Optuna's matplotlib visualizations on the Agg backend.

Each figure is drawn in its own ``rc_context`` (Optuna sets the ggplot style globally)
under one lock (pyplot's current figure is process-wide, and ``tuner serve`` may end two
sweeps at once), relabelled (``one_minus_beta2`` → ``1 − beta2``; log axes ticked ``1e-08``) and closed.
The learning curves are drawn here: every trial thin and grey, the baseline and the
recommended trial highlighted, with a legend.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tuner.baseline import BASELINE_ATTR
from tuner.review._importance import METHOD_NAME, MIN_TRIALS

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
#: Adam's order: lr, betas, eps, weight_decay, then the schedule.
ORDER = ("lr", "one_minus_beta1", "one_minus_beta2", "eps", "weight_decay", "warmup_fraction", "schedule")
_PYPLOT = threading.Lock()


def display_order(param: str) -> int:
    """Sort key of a param: :data:`ORDER`, unknown params last."""
    return ORDER.index(param) if param in ORDER else len(ORDER)


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
        usable: its usable trials at one value each (parameter plots).
        params: the searched params, in display order.
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
            lambda: _widen(vis.plot_parallel_coordinate(usable, params=params, target_name=label), len(params) + 1),
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


def _widen(axes: Any, n_axes: int) -> Any:
    """Give each vertical axis of a parallel-coordinate plot room for its tick labels."""
    fig = _figure(axes)
    fig.set_size_inches(max(fig.get_figwidth(), 1.4 * n_axes + 1.5), fig.get_figheight())
    return axes


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
