"""Hyperparameter importance by one method, fANOVA (Optuna's default evaluator, also what
optuna-dashboard shows), named wherever it is shown.

fANOVA fits a random forest (64 trees, seed 0: a 32-trial sweep takes ~0.1 s). Below
:data:`MIN_IMPORTANCE_TRIALS` trials there is no importance (a forest on a handful of points
ranks noise), below :data:`FEW_IMPORTANCE_TRIALS` it comes with a caveat. When it fails (e.g.
on equal values: zero variance) it is left out with a note; nothing is raised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

#: Fewest usable trials the parameter plots need.
MIN_TRIALS = 2
#: Fewest trials the importance is computed from; below it, none (with a note).
MIN_IMPORTANCE_TRIALS = 8
#: Below this many trials the importance carries a caveat.
FEW_IMPORTANCE_TRIALS = 20
#: The importance method, as :class:`~tuner.review.Analysis` keys it.
METHOD = "fanova"
#: How plots and the report name it.
METHOD_NAME = "fANOVA"


def importance(study: optuna.Study, params: list[str], notes: list[str]) -> dict[str, dict[str, float]]:
    """Importance of ``params`` by fANOVA over ``study``'s trials, most important first.

    Args:
        study: the usable trials only (one value each, every param in ``params``).
        params: the searched params, as the study records them.
        notes: receives why it was skipped, its caveat and its warnings.

    Returns:
        ``{"fanova": {param: value}}``, values summing to 1; empty with fewer than 2 params,
        fewer than :data:`MIN_IMPORTANCE_TRIALS` trials, or when fANOVA could not run.
    """
    n = len(study.trials)
    if len(params) < 2:
        notes.append(f"importance needs at least 2 searched params; this sweep searches {len(params)}")
        return {}
    if n < MIN_IMPORTANCE_TRIALS:
        notes.append(f"importance needs at least {MIN_IMPORTANCE_TRIALS} trials with every searched param; got {n}")
        return {}
    values = _evaluate(study, params, METHOD, _fanova, notes)
    if values is None:
        return {}
    if n < FEW_IMPORTANCE_TRIALS:
        notes.append(
            f"{METHOD_NAME} importance from only {n} trials (under {FEW_IMPORTANCE_TRIALS}): a rough ranking, "
            "not a measurement"
        )
    return {METHOD: values}


def _fanova() -> optuna.importance.BaseImportanceEvaluator:
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(seed=0)


def _evaluate(
    study: optuna.Study,
    params: list[str],
    name: str,
    evaluator: Callable[[], optuna.importance.BaseImportanceEvaluator],
    notes: list[str],
) -> dict[str, float] | None:
    from optuna.exceptions import ExperimentalWarning
    from optuna.importance import get_param_importances

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = get_param_importances(study, evaluator=evaluator(), params=params)
        except (ValueError, RuntimeError, ZeroDivisionError, FloatingPointError) as e:
            notes.append(f"{name} importance skipped: {e}")
            return None
    values = {p: float(v) for p, v in values.items()}
    if not values or not all(math.isfinite(v) for v in values.values()):
        notes.append(
            f"{name} importance skipped: undefined on these {len(study.trials)} trials (e.g. all values equal)"
        )
        return None
    for message in dict.fromkeys(str(w.message) for w in caught if not issubclass(w.category, ExperimentalWarning)):
        notes.append(f"{name}: {message}")
    return values
