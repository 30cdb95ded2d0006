"""The baseline: torch's default Adam, trial 0 of every sweep.

Unless a spec says ``baseline: false``, a sweep's first trial trains with
``torch.optim.Adam``'s defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8,
weight_decay 0) and a constant lr, whatever the search space says (a space that fixes
``algorithm: nadam`` or ``adamax``: that torch optimizer's defaults, lr 2e-3): it
answers "was tuning worth it?". It runs every epoch (the scheduler never stops it
early), so its value is the untuned model's at ``max_epochs``.

In the study it carries the user attribute ``baseline`` and, as params, only the
defaults that lie inside the searched ranges (TPE then learns from it; Optuna's
samplers skip a trial for a param it lacks). In MLflow its run is tagged
``adamtune.baseline = true``. The tuned result against it is :func:`tuner.review.compare`.
"""

from __future__ import annotations

from typing import Any

from tuner.search_space import Choice, SearchSpace
from workers.config import AdamConfig

__all__ = ["BASELINE_ATTR", "baseline_config", "baseline_params"]

#: The Optuna trial user attribute (and Ray config key) that marks the baseline trial.
BASELINE_ATTR = "baseline"


def baseline_config(space: SearchSpace) -> dict[str, Any]:
    """The baseline's trial config: ``torch.optim.Adam``'s defaults, constant lr, plus ``baseline: True``.

    Keys as :meth:`~tuner.search_space.SearchSpace.to_adam_config` returns them; ``amsgrad``
    and ``decoupled_weight_decay`` as ``space`` sets them (both false unless it asks:
    decoupling changes nothing at weight_decay 0, and a pack's members must agree on both);
    ``algorithm`` adam, unless the space fixes another one (a pack runs one algorithm): then
    that algorithm's torch optimizer at its own defaults (``torch.optim.NAdam`` and ``Adamax``:
    lr 2e-3, :meth:`workers.config.AdamConfig.torch_defaults`).
    """
    defaults = AdamConfig.torch_defaults(
        space.base_algorithm,
        amsgrad=space.amsgrad,
        decoupled_weight_decay=space.decoupled_weight_decay,
    )
    return {**defaults.to_config(), BASELINE_ATTR: True}


def baseline_params(space: SearchSpace) -> dict[str, Any]:
    """The baseline's values as the study records them: only the searched entries whose torch
    default lies inside the searched range (``one_minus_beta2 = 0.001`` for a searched ``beta2``)."""
    config = baseline_config(space)
    params: dict[str, Any] = {}
    for name, entry in space.searched().items():
        key = name.removeprefix("one_minus_")
        value = (
            float(f"{1.0 - config[key]:.12g}") if name != key else config.get(key, "adam")
        )  # one_minus_<beta>: 1 - beta; no algorithm key: adam
        inside = value in entry.choices if isinstance(entry, Choice) else entry.low <= value <= entry.high
        if inside:
            params[name] = value
    return params
