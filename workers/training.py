"""Train one trial: a workload, one Adam configuration, a metric dict per epoch.

This is the loop a Ray worker runs. It takes a plain config and yields plain dicts;
it knows nothing of the tuner, Ray or Optuna. The config's lr schedule
(:mod:`workers.schedule`) is applied per optimizer step. Each step's parts run inside
``torch.profiler`` ranges ``adamtune.<phase>``, one per name in :data:`PHASES`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch

import workers.optim
from workers._loop import PHASES, autocast, check_metric_keys, check_steps, mean_metrics, phase
from workers.config import AdamConfig
from workers.schedule import lr_scheduler
from workers.workloads import Workload, get_workload

__all__ = ["PHASES", "divergence", "train"]


def train(
    config: Mapping[str, Any],
    *,
    workload: str | Workload,
    max_epochs: int,
    seed: int = 0,
    device: str = "cpu",
    num_threads: int | None = None,
    diagnostics: bool = False,
) -> Iterator[dict[str, Any]]:
    """Train ``workload`` with ``FusedAdam`` (``FusedNAdam``, ``FusedAdamax`` for the config's
    ``algorithm``) configured by ``config``; yield per-epoch metrics.

    The config is validated and the workload resolved when ``train`` is called, so
    errors surface before the first ``next()``. The same ``config``, ``seed``, device
    and thread count give an identical curve.

    Args:
        config: Optimizer hyperparameters, read by
            :meth:`workers.config.AdamConfig.from_config`. Required: ``lr``, ``beta1``,
            ``beta2``, ``eps`` (real numbers). Optional: ``weight_decay`` (default 0.0),
            ``decoupled_weight_decay`` (bool, default False; True gives AdamW),
            ``amsgrad`` (bool, default False), ``schedule`` (``constant``, ``cosine``
            or ``linear``, default ``constant``) and ``warmup_fraction`` (in [0, 1),
            default 0.0): the lr schedule over the ``max_epochs * steps_per_epoch``
            optimizer steps (:mod:`workers.schedule`); ``algorithm`` (``adam``,
            ``nadam``, ``adamax``; default ``adam``) and ``momentum_decay`` (nadam,
            default torch's 4e-3). Other keys are ignored.
        workload: A registered name (see ``available_workloads``) or an instance.
        max_epochs: Number of passes over the training split, >= 1.
        seed: Seeds model initialization and batch shuffling. Keep it equal across
            the trials of a sweep so they differ only in the optimizer.
        device: Torch device to train on, e.g. ``"cpu"`` or ``"cuda:0"``.
        num_threads: If given, calls ``torch.set_num_threads(num_threads)`` first.
            That setting is process-wide; None leaves it alone (Ray already limits a
            one-CPU worker to one thread).
        diagnostics: If True, each epoch's dict also carries the optimizer-state
            diagnostics of ``FusedAdam.diagnostics()`` as ``adam_eps_dominated_frac``
            (fraction of coordinates where eps dominates the Adam denominator),
            ``adam_update_rms_ratio`` (RMS of the last update / RMS of the weights;
            with an lr schedule, at the lr the scheduler set for the next step)
            and ``adam_nonfinite`` (NaN/inf count in params and moments): one extra
            read of params and moments per epoch, none per step.

    Yields:
        After each epoch ``{"epoch": int (1-based), "train_loss": float,
        **metrics}`` where ``metrics`` are the keys of ``workload.metrics``
        (always including ``"val_loss"``); ``train_loss`` is the sample-weighted mean
        of the epoch's mini-batch losses, measured before each step. If a training
        loss or a validation metric is NaN or infinite, the last dict also carries
        ``"diverged": True`` and ``"reason"`` (e.g. ``"train_loss became nan at
        epoch 3, step 17"``, step counted from 1 within the epoch) and the
        generator stops without raising.

    Raises:
        KeyError: A required config key is missing.
        ValueError: A bad config value (:data:`workers.config.RULES`), ``max_epochs`` < 1
            or ``num_threads`` < 1.
        UnknownWorkloadError: ``workload`` names no registered workload.
    """
    adam = AdamConfig.from_config(config)
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ValueError(f"max_epochs must be an int >= 1, but got {max_epochs!r}")
    if num_threads is not None and (
        isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
    ):
        raise ValueError(f"num_threads must be None or an int >= 1, but got {num_threads!r}")
    resolved = get_workload(workload) if isinstance(workload, str) else workload
    if not isinstance(resolved, Workload):
        raise TypeError(f"workload must be a name or a Workload, but got {type(workload).__name__}")
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    return _epochs(resolved, adam, max_epochs, seed, torch.device(device), diagnostics)


def _epochs(
    workload: Workload,
    adam: AdamConfig,
    max_epochs: int,
    seed: int,
    device: torch.device,
    diagnostics: bool,
) -> Iterator[dict[str, Any]]:
    model = workload.build_model(seed).to(device)
    name, kwargs = adam.fused_optimizer()  # FusedAdam, FusedNAdam or FusedAdamax
    optimizer = getattr(workers.optim, name)(model.parameters(), **kwargs)
    n_steps = workload.steps_per_epoch()
    # A constant lr needs no scheduler (and its curve stays bit for bit what it was without one).
    total_steps = max_epochs * n_steps
    scheduler = lr_scheduler(optimizer, **adam.schedule_kwargs(), total_steps=total_steps) if adam.scheduled else None
    clip = workload.grad_clip_norm

    for epoch in range(1, max_epochs + 1):
        model.train()
        # Losses stay on the device: no host sync per step; checked once per epoch.
        losses = torch.empty(n_steps, dtype=torch.float32, device=device)  # (n_steps,)
        sizes: list[int] = []  # samples per step
        batches = iter(workload.train_batches(epoch, seed))
        for step in range(n_steps + 1):
            with phase("data"):
                batch = next(batches, None)
                if batch is None or step == n_steps:
                    break
                x, y = batch[0].to(device), batch[1].to(device)  # (B, ...), (B, ...)
            with phase("forward_backward"):
                with autocast(workload, device):
                    loss = workload.loss(model(x), y)  # ()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with phase("optimizer"):
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
            losses[step] = loss.detach()
            sizes.append(y.shape[0])
        if batch is not None:
            check_steps(workload, epoch, n_steps + 1, n_steps)  # one batch too many
        check_steps(workload, epoch, len(sizes), n_steps)

        metrics = _validate(workload, model, device)
        weights = torch.tensor(sizes, dtype=torch.float64, device=device)  # (n_steps,)
        train_loss = float((losses.double() * weights).sum() / sum(sizes))
        row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, **metrics}
        if diagnostics:
            row.update({f"adam_{key}": value for key, value in optimizer.diagnostics().items()})
        reason = divergence(losses, metrics, epoch)
        if reason is not None:
            row["diverged"] = True
            row["reason"] = reason
            yield row
            return
        yield row


def _validate(workload: Workload, model: torch.nn.Module, device: torch.device) -> dict[str, float]:
    """The workload's metrics over its validation batches (batch-size-weighted means)."""
    model.eval()
    per_batch, sizes = [], []
    with torch.inference_mode(), phase("validation"):
        for x, y in workload.val_batches():
            x, y = x.to(device), y.to(device)  # (B_val, ...), (B_val, ...)
            with autocast(workload, device):
                output = model(x)  # (B_val, ...)
            per_batch.append(workload.evaluate(output.float(), y))
            sizes.append(y.shape[0])
    metrics = mean_metrics(per_batch, sizes)
    check_metric_keys(workload, metrics)
    return metrics


def divergence(losses: torch.Tensor, metrics: dict[str, float], epoch: int) -> str | None:
    """Why a run counts as diverged, or None if every value is finite.

    Args:
        losses: the epoch's per-step training losses, shape ``(steps,)``.
        metrics: the epoch's validation metrics.
        epoch: the epoch number (1-based), for the message.
    """
    bad = (~torch.isfinite(losses)).nonzero()
    if bad.numel():
        step = int(bad[0, 0])
        return f"train_loss became {float(losses[step])} at epoch {epoch}, step {step + 1}"
    for key, value in metrics.items():
        if not math.isfinite(value):
            return f"{key} became {value} at epoch {epoch}"
    return None
