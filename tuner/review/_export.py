"""Config cards: a trial's Adam config, ready for ``torch.optim.Adam``, its lr schedule, and where it came from.

A card is a plain dict::

    {"lr": 0.0031, "betas": [0.87, 0.9991], "eps": 1e-08, "weight_decay": 0.0,
     "amsgrad": false, "decoupled_weight_decay": false,
     "schedule": {"name": "cosine", "warmup_fraction": 0.05},
     "source": {"sweep": ..., "trial": 7, "metric": "val_loss", "value": 0.081,
                "mlflow_run_id": ..., "workload": ..., "epochs": 8, "objective": "last", "value_epoch": 8}}

Every key but ``schedule`` and ``source`` is a ``torch.optim.Adam`` (torch >= 2.6)
keyword argument, so ``torch.optim.Adam(params, **{k: v for k, v in card.items() if k
not in ("schedule", "source")})`` works. A trial that trained with NAdam or AdaMax
(its config's ``algorithm``) has one more key, ``optimizer``: the ``torch.optim`` class
(``"NAdam"``, ``"Adamax"``) whose keyword arguments the others are, e.g. ``"momentum_decay"``
for NAdam and no ``amsgrad``; build it with ``getattr(torch.optim, card["optimizer"])(params,
**{k: v for k, v in card.items() if k not in ("optimizer", "schedule", "source")})`` (passing
such a card to ``torch.optim.Adam`` fails on the ``optimizer`` key rather than training Adam). ``schedule`` is the lr schedule the trial
trained with (:mod:`workers.schedule`): ``constant``, ``cosine`` or ``linear`` after a
linear warm-up over the first ``warmup_fraction`` of the optimizer steps; trials of
sweeps stored before schedules existed get ``constant`` and ``0.0``. The Python export
builds it as a ``torch.optim.lr_scheduler.LambdaLR`` with the formula inlined, giving
the same lr per step as :func:`workers.schedule.lr_scheduler`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from tuner.records import SweepSummary, TrialRecord
from workers.config import AdamConfig

__all__ = ["ExportFormat", "config_card", "render"]

ExportFormat = Literal["json", "yaml", "python"]


def config_card(summary: SweepSummary, trial: TrialRecord, mlflow_run_id: str | None) -> dict[str, Any]:
    """The card of ``trial`` of the sweep ``summary`` (see the module docstring for its keys).

    Raises:
        KeyError, ValueError: the trial's config is not a valid Adam config
            (:meth:`workers.config.AdamConfig.from_config`).
    """
    adam = AdamConfig.from_config(trial.config)
    kwargs = adam.torch_kwargs()
    optimizer = {} if adam.algorithm == "adam" else {"optimizer": adam.torch_optimizer()[0]}
    return {
        **optimizer,
        **kwargs,
        "betas": list(kwargs["betas"]),  # JSON and YAML have lists
        "schedule": {"name": adam.schedule, "warmup_fraction": adam.warmup_fraction},
        "source": {
            "sweep": summary.name,
            "trial": trial.number,
            "metric": summary.spec["metric"],
            "value": trial.value,
            "mlflow_run_id": mlflow_run_id,
            "workload": summary.spec["workload"],
            "epochs": trial.epochs,
            "objective": summary.spec.get("objective", "last"),
            "value_epoch": trial.value_epoch,
        },
    }


def render(cards: list[dict[str, Any]], fmt: ExportFormat) -> str:
    """Text of ``cards`` (best first) as JSON, YAML or a Python snippet.

    JSON and YAML give one object for one card and a list for several.

    Raises:
        ValueError: unknown ``fmt``.
    """
    payload: Any = cards[0] if len(cards) == 1 else cards
    if fmt == "json":
        return json.dumps(payload, indent=2) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(payload, sort_keys=False)
    if fmt == "python":
        return "\n".join(_snippet(card, rank) for rank, card in enumerate(cards, start=1))
    raise ValueError(f"unknown export format {fmt!r}; use json, yaml or python")


def _snippet(card: dict[str, Any], rank: int) -> str:
    src = card["source"]
    b1, b2 = card["betas"]
    lines = [
        f"# #{rank} of sweep {src['sweep']!r}: trial {src['trial']}, {src['metric']}={src['value']:.6g} "
        + (
            f"at its best epoch, {src['value_epoch']} of {src['epochs']}"
            if src.get("objective") == "best"
            else f"after {src['epochs']} epochs"
        )
        + f" (MLflow run {src['mlflow_run_id']})",
        f"optimizer = torch.optim.{card.get('optimizer', 'Adam')}(",
        "    model.parameters(),",
        f"    lr={card['lr']!r},",
        f"    betas=({b1!r}, {b2!r}),",
        f"    eps={card['eps']!r},",
        f"    weight_decay={card['weight_decay']!r},",
    ]
    if "momentum_decay" in card:
        lines.append(f"    momentum_decay={card['momentum_decay']!r},")
    if card.get("amsgrad"):
        lines.append("    amsgrad=True,")
    if card.get("decoupled_weight_decay"):
        lines.append(
            "    decoupled_weight_decay=True,  # AdamW semantics"
            if "optimizer" not in card
            else "    decoupled_weight_decay=True,"
        )
    lines.append(")")
    lines.extend(_scheduler_lines(card["schedule"], src["epochs"]))
    return "\n".join(lines) + "\n"


def _scheduler_lines(schedule: dict[str, Any], epochs: int) -> list[str]:
    """Plain-PyTorch lines building ``scheduler``, the trial's lr schedule (none for a constant lr).

    The lambda is :func:`workers.schedule.lr_multiplier` written out, operation for
    operation, so its lrs equal those of ``workers.schedule.lr_scheduler``.
    """
    name, fraction = schedule["name"], schedule["warmup_fraction"]
    if name == "constant" and fraction == 0:
        return []
    lines = ["", "import math"] if name == "cosine" else [""]
    lines.append(
        f"total_steps = ...  # EDIT: optimizer steps you will train for, epochs x batches per epoch "
        f"(the sweep's schedule spanned {epochs} epochs)"
    )
    progress = "min(1.0, step / max(1, total_steps))"
    if fraction > 0:
        lines.append(f"warmup_steps = int({fraction!r} * total_steps)  # the lr rises linearly over these first steps")
        progress = "min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))"
    after = {
        "constant": "1.0",
        "linear": f"1.0 - {progress}",
        "cosine": f"0.5 * (1.0 + math.cos(math.pi * {progress}))",
    }[name]
    if fraction > 0:
        factor = ["    lambda step: (step + 1) / warmup_steps if step < warmup_steps", f"    else {after},"]
    else:
        factor = [f"    lambda step: {after},"]
    scheduler = "scheduler = torch.optim.lr_scheduler.LambdaLR(  # call scheduler.step() after each optimizer.step()"
    return [*lines, scheduler, "    optimizer,", *factor, ")"]
