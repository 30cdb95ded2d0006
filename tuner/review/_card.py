"""The Adam config card: a tuned config with everything needed to trust and reuse it.

``tuner export NAME --format card`` writes it as YAML (JSON with ``-o card.json``)::

    adamtune_card: 1
    optimizer: {name: Adam, kwargs: {lr: 0.0031, betas: [0.87, 0.9991], eps: 1.0e-08,
                                     weight_decay: 0.0, amsgrad: false}}
    scheduler: {name: cosine, warmup_fraction: 0.05, total_steps: 184}
    workload: {name: digits_mlp, args: {}}
    training: {parameters: 4810, batch_size: 64, dtype: float32, epochs: 8, steps: 184,
               data: {...fingerprint...}}
    result: {metric: val_loss, mode: min, value: 0.081, objective: last, epoch: 8, seeds: {mean: 0.084, std: 0.003, values: [...]}}
    baseline: {metric: val_loss, value: 0.195, tuned: 0.081, change_percent: -58.5}
    diagnostics: {adam_eps_dominated_frac: 0.0, ...}
    transfer: {...}   # with --batch-size only
    source: {sweep: digits-mlp, trial: 7, mlflow_run_id: ...}

It loads back into plain PyTorch: ``getattr(torch.optim, card["optimizer"]["name"])(params,
**card["optimizer"]["kwargs"])`` (``Adam``, or ``AdamW`` where weight decay is decoupled;
``NAdam`` or ``Adamax`` for a trial whose ``algorithm`` is ``nadam`` or ``adamax``), and
``workers.schedule.lr_scheduler(optimizer, schedule=..., warmup_fraction=..., total_steps=...)``
with the ``scheduler`` entry (``total_steps``: the optimizer steps the trial's schedule spanned;
use your own run's). ``seeds`` is ``null`` until the sweep is re-evaluated; ``training`` facts are
``null`` for a function workload (the tuner never sees its model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tuner.records import SweepSummary, TrialRecord
from tuner.review._compare import compare
from workers.config import AdamConfig

__all__ = ["CARD_VERSION", "adam_card", "sqrt_scaling"]

#: The card's format version (key ``adamtune_card``).
CARD_VERSION = 1

#: Where the batch-size transfer rule comes from, quoted in every transferred card.
SQRT_RULE_SOURCE = (
    "Malladi, Lyu, Panigrahi, Arora: On the SDEs and Scaling Rules for Adaptive Gradient Algorithms, "
    "NeurIPS 2022 (arXiv:2205.10287), the square-root scaling rule for Adam"
)


def adam_card(
    summary: SweepSummary,
    trial: TrialRecord,
    *,
    mlflow_run_id: str | None,
    diagnostics: Mapping[str, float],
    batch_size: int | None = None,
) -> dict[str, Any]:
    """The card of ``trial`` of ``summary`` (keys in the module docstring).

    Args:
        diagnostics: the trial's last-epoch optimizer diagnostics (``adam_*`` metrics).
        batch_size: add ``transfer``, the config moved to this batch size by
            :func:`sqrt_scaling` (a heuristic; the card says so).

    Raises:
        KeyError: the trial's config misses a required key (:meth:`workers.config.AdamConfig.from_config`).
        ValueError: a bad value in the trial's config; ``batch_size`` is given but the workload's
            batch size is unknown, or the rule cannot apply (see :func:`sqrt_scaling`).
    """
    spec, facts = summary.spec, summary.workload_facts
    adam = AdamConfig.from_config(trial.config)
    name, kwargs = adam.torch_optimizer()
    kwargs["betas"] = list(kwargs["betas"])  # JSON and YAML have lists
    steps_per_epoch = facts.get("steps_per_epoch")
    steps = trial.epochs * steps_per_epoch if steps_per_epoch else None
    spanned = spec["max_epochs"] * steps_per_epoch if steps_per_epoch else None
    stats = summary.seed_stats(trial.number)
    comparison = compare(summary, trial)
    card: dict[str, Any] = {
        "adamtune_card": CARD_VERSION,
        "optimizer": {"name": name, "kwargs": kwargs},
        "scheduler": {"name": adam.schedule, "warmup_fraction": adam.warmup_fraction, "total_steps": spanned},
        "workload": {"name": spec["workload"], "args": dict(spec.get("workload_args", {}))},
        "training": {
            "parameters": facts.get("parameters"),
            "batch_size": facts.get("batch_size"),
            "dtype": facts.get("dtype"),
            "epochs": trial.epochs,
            "steps": steps,
            "data": dict(facts.get("data", {})),
        },
        "result": {
            "metric": spec["metric"],
            "mode": spec["mode"],
            "value": trial.value,
            "objective": spec.get("objective", "last"),
            "epoch": trial.value_epoch,
            "seeds": None
            if stats is None
            else {
                "mean": stats.mean,
                "std": stats.std,
                "values": list(stats.values),
                "failed": stats.failed,
            },
        },
        "baseline": None if comparison is None else comparison.as_dict(),
        "diagnostics": dict(diagnostics),
        "source": {
            "sweep": summary.name,
            "trial": trial.number,
            "baseline_trial": trial.baseline,
            "mlflow_run_id": mlflow_run_id,
        },
    }
    if batch_size is not None:
        if not facts.get("batch_size"):
            raise ValueError(
                f"--batch-size needs the batch size the sweep trained with, and workload {spec['workload']!r} "
                "does not declare one (a function workload, or a sweep stored before adamtune recorded it)"
            )
        card["transfer"] = sqrt_scaling(kwargs, batch_size=facts["batch_size"], to_batch_size=batch_size)
    return card


def sqrt_scaling(kwargs: Mapping[str, Any], *, batch_size: int, to_batch_size: int) -> dict[str, Any]:
    """Move Adam's hyperparameters from ``batch_size`` to ``to_batch_size`` by the square-root rule.

    With ``kappa = to_batch_size / batch_size`` (Malladi et al., NeurIPS 2022, Definition
    of the Adam square-root scaling rule): ``lr * sqrt(kappa)``, ``1 - beta_i`` times
    ``kappa``, ``eps / sqrt(kappa)``; ``weight_decay`` and ``amsgrad`` carried over
    unchanged (the rule does not cover them). It keeps Adam's SDE approximation, hence
    the training curve per epoch, unchanged to first order: a heuristic starting point,
    not a tuned result.

    Args:
        kwargs: ``torch.optim.Adam`` keyword arguments (``lr``, ``betas``, ``eps``, ...).
        batch_size, to_batch_size: samples per optimizer step, before and after.

    Returns:
        ``{"batch_size", "kappa", "kwargs", "heuristic": True, "rule", "source"}``.

    Raises:
        ValueError: a batch size below 1, or ``kappa * (1 - beta)`` reaches 1 (the batch
            grows past where the rule keeps a beta inside (0, 1)).
    """
    if batch_size < 1 or to_batch_size < 1:
        raise ValueError(f"batch sizes >= 1 must hold, but got batch_size={batch_size}, to_batch_size={to_batch_size}")
    kappa = to_batch_size / batch_size
    betas = []
    for i, beta in enumerate(kwargs["betas"], start=1):
        scaled = kappa * (1.0 - beta)
        if scaled >= 1.0:
            raise ValueError(
                f"the square-root rule gives 1 - beta{i} = {kappa:g} x {1 - beta:g} = {scaled:g} >= 1 for batch size "
                f"{to_batch_size} (from {batch_size}); pick a batch size below {batch_size / (1 - beta):.0f}, or tune there"
            )
        betas.append(_round(1.0 - scaled))
    return {
        "batch_size": to_batch_size,
        "kappa": kappa,
        "kwargs": {
            **kwargs,
            "lr": _round(kwargs["lr"] * math.sqrt(kappa)),
            "betas": betas,
            "eps": _round(kwargs["eps"] / math.sqrt(kappa)),
        },
        "heuristic": True,
        "rule": "lr * sqrt(kappa); 1 - beta * kappa; eps / sqrt(kappa); weight_decay unchanged",
        "source": SQRT_RULE_SOURCE,
    }


def _round(value: float) -> float:
    """``value`` to 12 significant digits: 0.6, not 0.6000000000000001 (float noise, not precision)."""
    return float(f"{value:.12g}")
