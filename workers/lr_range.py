"""The lr range test: one short run with the lr raised exponentially, and the lr it suggests.

Smith, "Cyclical Learning Rates for Training Neural Networks" (WACV 2017, arXiv 1506.01186,
§3.3) trains briefly while the lr grows and reads off where the loss falls fastest and where
it stops falling; fastai's ``lr_find`` does the same over 100 mini-batches with an
exponential ramp and a smoothed loss. Here, for a :class:`~workers.workloads.Workload`:

- ``n = min(max_steps, steps_per_epoch)`` optimizer steps (at most one epoch) of the sweep's
  algorithm with torch's default betas and eps (and NAdam's momentum_decay): ``FusedAdam``,
  or ``FusedNAdam`` / ``FusedAdamax`` where the search space fixes nadam or adamax (a searched
  algorithm is probed with Adam); step ``i`` (0-based) uses
  ``lr_i = lr_min * (lr_max / lr_min) ** (i / (n - 1))``;
- the training loss is smoothed by an exponential moving average (decay 0.9, bias-corrected
  as Adam's moments are); the run stops early once the smoothed loss exceeds 4× its minimum
  or a loss is not finite (diverged);
- the *steepest* lr is where the smoothed loss falls fastest per unit of ``log lr``, up to
  its minimum (fastai's ``steep`` suggestion); the suggestion is a quarter of it.

Why a quarter, measured here (``python -m workers.lr_range``-style runs over 23 and 50 steps):
in so short a ramp the loss keeps falling from training progress, so the steepest lr sits
above the best constant lr of a full run: digits_mlp steepest 0.073 vs best 1e-2 over 6
epochs; char_lm (the benchmark's small model) steepest 0.015 vs best 6e-3 over 4 epochs.
The lr where the smoothed loss is lowest (0.35 and 0.31) is 12-50× too high.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from workers._loop import autocast
from workers.config import AdamConfig
from workers.workloads import Workload

__all__ = ["LrRange", "lr_range_test", "run_lr_range_test", "suggest_lr"]

SMOOTHING = 0.9  #: EMA decay of the smoothed loss
DIVERGED = 4.0  #: the run stops once the smoothed loss exceeds this multiple of its minimum
STEEP_FRACTION = 0.25  #: the suggestion, as a fraction of the steepest lr


@dataclass(frozen=True)
class LrRange:
    """What one lr range test saw.

    Attributes:
        lrs: the lr of each step taken, ascending.
        losses: each step's training loss (before the step), the same length.
        steps_per_epoch: the workload's steps per epoch (``len(lrs) / steps_per_epoch`` is
            the run's cost in epochs).
        steepest: the lr where the smoothed loss fell fastest.
        suggested: ``steepest * STEEP_FRACTION``: where a sweep's lr range is centred.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    steps_per_epoch: int
    steepest: float
    suggested: float

    @property
    def epochs(self) -> float:
        """The run's length in epochs (at most 1)."""
        return len(self.lrs) / self.steps_per_epoch


def suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """The steepest lr of a range test's ``(lr, loss)`` steps (see the module).

    Args:
        lrs: ascending, positive; at least 3.
        losses: the same length; non-finite values end the series there.

    Raises:
        ValueError: fewer than 3 finite steps, or lengths differ.
    """
    if len(lrs) != len(losses):
        raise ValueError(f"lrs and losses must have the same length, but got {len(lrs)} and {len(losses)}")
    smoothed: list[float] = []
    average = 0.0
    for i, loss in enumerate(losses):
        if not math.isfinite(loss):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        smoothed.append(average / (1 - SMOOTHING ** (i + 1)))
    if len(smoothed) < 3:
        raise ValueError(f"an lr range test needs at least 3 finite steps, but got {len(smoothed)}")
    lowest = min(range(len(smoothed)), key=smoothed.__getitem__)
    end = max(lowest, 2)  # the slope is read up to the minimum (at least over 3 points)
    logs = [math.log(lr) for lr in lrs]
    slopes = [(smoothed[i + 1] - smoothed[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(1, end)]
    steepest = 1 + min(range(len(slopes)), key=slopes.__getitem__)
    return lrs[steepest]


def lr_range_test(
    workload: Workload,
    *,
    lr_min: float,
    lr_max: float,
    seed: int = 0,
    max_steps: int = 100,
    device: str = "cpu",
    algorithm: str = "adam",
) -> LrRange:
    """Run the range test on ``workload`` (see the module for the ramp and the suggestion).

    Args:
        workload: the workload; its model is built with ``seed``, its first epoch's batches used.
        lr_min, lr_max: the ramp's first and last lr, ``0 < lr_min < lr_max``.
        seed: seeds the model and the batch order, as a trial's.
        max_steps: at most this many steps (fewer when an epoch is shorter); at least 3.
        device: torch device, e.g. ``"cpu"`` or ``"cuda"``.
        algorithm: the optimizer stepped, one of :data:`workers.config.ALGORITHMS`
            (``FusedAdam``, ``FusedNAdam``, ``FusedAdamax``; torch's defaults but the lr).

    Returns:
        The steps taken and the suggestion.

    Raises:
        ValueError: bad bounds, ``max_steps < 3``, an unknown algorithm, an epoch of fewer than 3
            steps, or fewer than 3 finite losses.
    """
    if not 0 < lr_min < lr_max:
        raise ValueError(f"0 < lr_min < lr_max must hold, but got {lr_min=}, {lr_max=}")
    if max_steps < 3:
        raise ValueError(f"max_steps >= 3 must hold, but got {max_steps=}")
    from workers import optim

    optimizer_name, optimizer_kwargs = AdamConfig(lr=lr_min, algorithm=algorithm).fused_optimizer()
    steps_per_epoch = workload.steps_per_epoch()
    n = min(max_steps, steps_per_epoch)
    if n < 3:
        raise ValueError(
            f"an lr range test needs an epoch of at least 3 steps, but {workload.name} has {steps_per_epoch}"
        )
    target = torch.device(device)
    model = workload.build_model(seed).to(target)
    optimizer = getattr(optim, optimizer_name)(model.parameters(), **optimizer_kwargs)
    lrs: list[float] = []
    losses: list[float] = []
    lowest = math.inf
    average = 0.0
    model.train()
    for i, (x, y) in zip(range(n), workload.train_batches(1, seed)):
        lr = lr_min * (lr_max / lr_min) ** (i / (n - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(workload, target):
            loss = workload.loss(model(x.to(target)), y.to(target))  # ()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if workload.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), workload.grad_clip_norm)
        optimizer.step()
        value = float(loss.detach())
        lrs.append(lr)
        losses.append(value)
        if not math.isfinite(value):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed = average / (1 - SMOOTHING ** (i + 1))
        lowest = min(lowest, smoothed)
        if smoothed > DIVERGED * lowest:
            break
    steepest = suggest_lr(lrs, losses)
    return LrRange(tuple(lrs), tuple(losses), steps_per_epoch, steepest, steepest * STEEP_FRACTION)


def run_lr_range_test(
    *,
    workload: str,
    workload_args: dict | None,
    lr_min: float,
    lr_max: float,
    seed: int,
    threads: int,
    device: str,
    algorithm: str = "adam",
) -> LrRange:
    """:func:`lr_range_test` on a worker: load the spec's workload (a registered name or
    ``module:attr`` importable here) with its args, on ``threads`` torch threads, stepping
    ``algorithm``'s optimizer.

    Raises:
        TypeError: the workload is a function ``train(trial)``, not a Workload class (the test
            needs each step's loss, which only a Workload's loop exposes).
        ValueError: as :func:`lr_range_test`.
    """
    from workers.workloads import load_workload

    loaded = load_workload(workload, workload_args)
    if not isinstance(loaded, Workload):
        raise TypeError(
            f"lr_range_test needs a Workload class, but {workload} is a function train(trial) (the test reads each "
            "step's training loss, which only a Workload's own loop has); set lr_range_test: false"
        )
    torch.set_num_threads(threads)
    return lr_range_test(loaded, lr_min=lr_min, lr_max=lr_max, seed=seed, device=device, algorithm=algorithm)
