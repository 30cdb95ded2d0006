"""The sweep's plots as PNG bytes: Optuna's matplotlib visualizations on the Agg backend.

Each figure is drawn in its own ``rc_context`` (Optuna sets the ggplot style globally)
under one lock (pyplot's current figure is process-wide, and ``tuner serve`` may end two
sweeps at once), relabelled (``one_minus_beta2`` → ``1 − beta2``) and closed.
"""

from __future__ import annotations

import io
import threading
import warnings
from typing import TYPE_CHECKING, Any, Callable

from tuner.review._importance import MIN_TRIALS

if TYPE_CHECKING:
    import optuna
    from matplotlib.figure import Figure

#: Plot names in display order, with their titles.
PLOT_TITLES: dict[str, str] = {
    "optimization_history": "Optimization history",
    "intermediate_values": "Intermediate values (per epoch)",
    "parallel_coordinate": "Parallel coordinates",
    "slice": "Slice plots",
    "contour_lr_beta2": "Contour: lr × (1 − beta2)",
    "importance": "Hyperparameter importance",
}
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
    notes: list[str],
) -> dict[str, bytes]:
    """PNG plots by name, in the order of :data:`PLOT_TITLES`; a plot that cannot be drawn gets a note instead.

    Args:
        study: the sweep's study (history and intermediate values show all its trials).
        usable: its usable trials (parameter plots).
        params: the searched params, in display order.
        importance: the importances to chart (none: no chart).
        metric: the sweep's metric, the plots' value axis label.
        notes: receives why a plot was skipped.
    """
    import matplotlib
    from optuna.exceptions import ExperimentalWarning
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as vis

    trials = study.get_trials(deepcopy=False)
    n = len(usable.trials)
    few = f"needs at least {MIN_TRIALS} completed trials with every searched param; got {n}"
    contour = ["lr", "one_minus_beta2"]
    draw: dict[str, tuple[Callable[[], Any], str | None]] = {
        "optimization_history": (
            lambda: vis.plot_optimization_history(study, target_name=metric),
            None if any(t.state == TrialState.COMPLETE for t in trials) else "no completed trial",
        ),
        "intermediate_values": (
            lambda: _per_epoch(vis.plot_intermediate_values(study), metric),
            None if any(t.intermediate_values for t in trials) else "no trial reported an epoch",
        ),
        "parallel_coordinate": (
            lambda: _widen(vis.plot_parallel_coordinate(usable, params=params, target_name=metric), len(params) + 1),
            None if n >= MIN_TRIALS else few,
        ),
        "slice": (lambda: vis.plot_slice(usable, params=params, target_name=metric), None if n >= MIN_TRIALS else few),
        "contour_lr_beta2": (
            lambda: vis.plot_contour(usable, params=contour, target_name=metric),
            "needs lr and beta2 searched, beta2 as one_minus" if not set(contour) <= set(params)
            else None if n >= MIN_TRIALS else few,
        ),
        "importance": (lambda: _importance_chart(importance), None if importance else "no importance computed"),
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


def _per_epoch(ax: Any, metric: str) -> Any:
    """Name the intermediate-values axes after the sweep (steps are epochs); drop a legend of many trials."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend = ax.get_legend()
    if legend is not None and len(legend.get_texts()) > 12:
        legend.remove()
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


def _importance_chart(importance: dict[str, dict[str, float]]) -> Any:
    """Horizontal bars: each param's importance by each evaluator."""
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
    ax.set_xlabel("importance (sums to 1 per method)")
    ax.set_title("Hyperparameter importance")
    ax.legend()
    return ax


def _png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes, params relabelled (``1 − beta2``); the figure is closed."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator

    try:
        for ax in fig.axes:
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
