"""Run a sweep from Python or a Jupyter notebook: :func:`sweep` and its :class:`SweepResult`.

::

    import tuner

    def train(trial): ...                      # defined right here, in the notebook

    result = tuner.sweep(train, name="nb-mlp", search_space="auto", n_trials=8, max_epochs=4)
    result.trials                              # pandas DataFrame, one row per trial
    torch.optim.Adam(model.parameters(), **{k: result.best_config[k] for k in ("lr", "betas", "eps", "weight_decay")})

The keyword arguments are the sweep spec's keys (:class:`tuner.spec.SweepSpec`, checked by
:func:`tuner.spec.parse_spec`); the workload is the function itself (:func:`tuner.workload.object_ref`
says how it reaches the Ray workers). The sweep runs as ``tuner sweep run`` runs it, on the same
stores (``TUNER_HOME``, default ``./tuner-data``, or the ``TUNER_*`` variables of
:class:`tuner.settings.Settings`) and local Ray unless ``TUNER_RAY_ADDRESS`` is set, so
``tuner sweep show``, ``tuner export`` and ``tuner ui`` read what a notebook ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuner.errors import SweepExistsError, UserInputError
from tuner.records import SweepSummary
from tuner.settings import Settings
from tuner.spec import SweepSpec, parse_spec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SweepResult", "sweep"]


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` returns.

    Attributes:
        name: the sweep's name.
        best_config: the recommended config as ``tuner export NAME`` gives it (``lr``, ``betas``,
            ``eps``, ``weight_decay``, ``amsgrad``, ``decoupled_weight_decay``, ``schedule``,
            ``source``); ``None`` when no trial completed (``trials`` says why).
        card: the recommended config's card as ``tuner export NAME --format card`` gives it;
            ``None`` when no trial completed.
        trials: one row per trial: ``number``, ``state``, ``value`` (the metric at its last
            epoch), its config's columns (``lr``, ``beta1``, ``beta2``, ``eps``, ...), ``epochs``,
            ``reason`` and ``baseline``.
        summary: the sweep as stored.
    """

    name: str
    best_config: dict[str, Any] | None
    card: dict[str, Any] | None
    trials: pd.DataFrame = field(repr=False)
    summary: SweepSummary = field(repr=False)


def sweep(workload: Callable[[Any], Any] | type | str, *, resume: bool = False, **spec: Any) -> SweepResult:
    """Run a sweep of ``workload`` to completion (blocking), printing a line per finished trial.

    Args:
        workload: a function ``train(trial)`` (see docs/workloads.md, "Tune your own model"), e.g. one
            defined in a notebook; a :class:`workers.Workload` subclass importable from a module;
            or what a spec's ``workload:`` names (``digits_mlp``, ``module:attr``, ``file.py:attr``).
        resume: continue the stored sweep of the same ``name`` (hand the function over again:
            functions are not stored).
        **spec: the sweep spec's keys (``name`` and ``search_space`` are required; relative paths
            resolve against the current folder).

    Returns:
        The sweep's best config, config card and trials.

    Raises:
        UserInputError: a keyword argument that is not a spec key (the message lists them).
        SpecError: the spec or the workload fails its checks (:func:`tuner.spec.parse_spec`,
            :func:`tuner.workload.check_workload`); nothing is stored.
        SweepExistsError: a sweep of that name is stored and ``resume`` is false.
        StoreError: ``TUNER_HOME`` or a store cannot be written.
        SweepInterruptedError: the run stopped early (e.g. an interrupted kernel); ``resume=True``
            continues it.
        TrackingError: writing the trials' MLflow runs failed.
    """
    from tuner.progress import ProgressView
    from tuner.service import SweepService
    from tuner.workload import object_ref

    keys = [k for k in SweepSpec.model_fields if k != "workload"]
    unknown = sorted(set(spec) - set(keys))
    if unknown:
        raise UserInputError(
            f"tuner.sweep() got unknown keyword argument(s) {', '.join(unknown)}; it takes the workload, resume, "
            f"and the sweep spec's keys: {', '.join(keys)}"
        )
    parsed = parse_spec({**spec, "workload": workload if isinstance(workload, str) else object_ref(workload)})
    service = SweepService(Settings())
    try:
        summary = service.run(
            parsed,
            resume=resume,
            progress=lambda s, done: ProgressView(
                s.name, s.n_trials, s.metric, s.mode, done=done, objective=s.objective
            ),
            release=True,  # Ray stops once the trials are done; the MLflow writer below
        )
        done = bool(summary.best())
        return SweepResult(
            name=summary.name,
            best_config=service.best(summary.name)[0] if done else None,
            card=service.card(summary.name) if done else None,
            trials=_trials_table(summary),
            summary=summary,
        )
    except SweepExistsError:
        raise SweepExistsError(
            f"sweep {parsed.name!r} already exists; pass resume=True to continue it, or give another name"
        ) from None
    finally:
        service.close()


def _trials_table(summary: SweepSummary) -> pd.DataFrame:
    """One row per trial of ``summary`` (see :attr:`SweepResult.trials`)."""
    import pandas as pd

    config_keys = list(dict.fromkeys(k for t in summary.trials for k in t.config))
    rows = [
        {
            "number": t.number,
            "state": t.state,
            "value": t.value,
            **{k: t.config.get(k) for k in config_keys},
            "epochs": t.epochs,
            "reason": t.reason,
            "baseline": t.baseline,
        }
        for t in summary.trials
    ]
    return pd.DataFrame(rows, columns=["number", "state", "value", *config_keys, "epochs", "reason", "baseline"])
