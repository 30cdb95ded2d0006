"""Which sampler proposes a sweep's configs: the spec's ``sampler`` key.

``auto`` (the default) is ours and budget-aware: the first :func:`design_size` configs
(about a quarter of ``n_trials``, at least 3) are an initial design of scrambled Sobol
points over the searched ranges (:func:`design_point`; Owen 1998 scrambling as in
``scipy.stats.qmc.Sobol``), then Optuna's multivariate TPE learns from every finished
trial, early-stopped ones included through their intermediate values. A design point is
drawn as long as fewer than ``design_size`` trials are known to the sampler, so a wide
first wave (a pack of 8) is spread evenly rather than drawn from TPE's prior.

The others are Optuna's samplers as they are, seeded with the spec's ``seed``: ``tpe``
(``TPESampler``: its first 10 trials are random), ``gp`` (``GPSampler``: learns from
completed trials only, not early-stopped ones), ``qmc`` (``QMCSampler``, scrambled
Sobol throughout), ``random`` (``RandomSampler``). Adding one is one entry in
:data:`SAMPLERS`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import optuna

__all__ = ["SAMPLERS", "SamplerName", "build_sampler", "design_point", "design_size"]

SamplerName = Literal["auto", "tpe", "gp", "qmc", "random"]


def _auto(seed: int) -> optuna.samplers.BaseSampler:
    from optuna.samplers import TPESampler

    # After the design: no random start-up of its own; multivariate models lr with betas
    # jointly; constant_liar keeps configs apart from those still running.
    return TPESampler(seed=seed, n_startup_trials=0, multivariate=True, constant_liar=True)


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    from optuna.samplers import TPESampler

    return TPESampler(seed=seed)


def _gp(seed: int) -> optuna.samplers.BaseSampler:
    from optuna.samplers import GPSampler

    return GPSampler(seed=seed)


def _qmc(seed: int) -> optuna.samplers.BaseSampler:
    from optuna.samplers import QMCSampler

    return QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)


def _random(seed: int) -> optuna.samplers.BaseSampler:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=seed)


#: The spec's ``sampler`` names and how each is built from the seed.
SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "auto": _auto,
    "tpe": _tpe,
    "gp": _gp,
    "qmc": _qmc,
    "random": _random,
}


def build_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler the spec's ``sampler`` names, seeded with ``seed``.

    Raises:
        KeyError: ``name`` is not in :data:`SAMPLERS` (the spec's validation refuses it first).
    """
    return SAMPLERS[name](seed)


def design_size(name: str, n_trials: int) -> int:
    """How many initial-design (Sobol) configs a sweep of ``n_trials`` draws before its sampler
    models: ``max(3, n_trials // 4)`` for ``auto``, 0 for Optuna's own samplers (they have
    their own start-up)."""
    return max(3, n_trials // 4) if name == "auto" else 0


def design_point(
    distributions: Mapping[str, optuna.distributions.BaseDistribution], index: int, seed: int
) -> dict[str, Any]:
    """The ``index``-th point (0-based) of the scrambled Sobol sequence seeded with ``seed`` over
    ``distributions`` (names sorted), in each distribution's own scale: log-uniform for a log
    ``FloatDistribution``, uniform otherwise, an equal share of ``[0, 1)`` per categorical choice.

    Returns:
        ``{param name: value}``; empty for no distributions.
    """
    from optuna.distributions import CategoricalDistribution
    from scipy.stats import qmc

    names = sorted(distributions)
    if not names:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about non-power-of-2 draws; the prefix is what we want
        u = qmc.Sobol(len(names), scramble=True, seed=seed).random(index + 1)[index]
    point: dict[str, Any] = {}
    for name, x in zip(names, u):
        d = distributions[name]
        if isinstance(d, CategoricalDistribution):
            point[name] = d.choices[min(int(x * len(d.choices)), len(d.choices) - 1)]
        elif d.log:
            point[name] = math.exp(math.log(d.low) + x * (math.log(d.high) - math.log(d.low)))
        else:
            point[name] = d.low + x * (d.high - d.low)
    return point
