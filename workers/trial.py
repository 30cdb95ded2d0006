"""The trial API: what a user's own training function ``train(trial)`` receives.

A sweep calls ``train(trial)`` once per configuration, on a Ray worker::

    def train(trial):
        model = Net().to(trial.device)
        opt = trial.optimizer(model.parameters())      # FusedAdam with this trial's Adam config
        sched = trial.lr_scheduler(opt, total_steps=trial.max_epochs * len(loader))
        for epoch in range(trial.max_epochs):
            ...                                        # the user's loop, DataLoader, model, loss
            trial.report(val_loss=v, val_accuracy=a)   # one call = one epoch

Outside a sweep, ``train(Trial.defaults(max_epochs=10))`` runs the same function with
``torch.optim.Adam``'s defaults and prints each report.

A script run as it is (``workload: train.py``, script mode) reaches its trial by name::

    from workers import trial                          # this module: its attributes are the running trial's
    optimizer = trial.optimizer(model.parameters())
    trial.report(val_loss=v)

Outside a sweep (``python train.py``) the same name is one :meth:`Trial.defaults` trial per
process, whose reports are printed.

This module imports torch only when a trial builds an optimizer or a device.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.config import CONFIG_KEYS, AdamConfig

if TYPE_CHECKING:
    import torch

    from workers.optim import FusedAdam

__all__ = ["Reporter", "StopTrial", "Trial", "current", "running"]

#: Receives one epoch's row: ``{"epoch": int (1-based), **metrics}``.
Reporter = Callable[[dict[str, Any]], None]

# Keys of a driver's trial config that are bookkeeping, not hyperparameters.
_BOOKKEEPING = {"trial_number", "baseline"}


class StopTrial(BaseException):
    """Ends a trial's function from inside :meth:`Trial.report`: the trial diverged, or
    it reported more than ``max_epochs`` epochs.

    A ``BaseException``, like the ``SystemExit`` Ray raises at the same place when its
    scheduler stops a trial, so a user's ``except Exception`` does not swallow it.
    """


class Trial:
    """One configuration of a sweep, handed to the user's ``train(trial)``.

    Args:
        config: The trial's hyperparameters as the driver sends them: ``lr``,
            ``beta1``, ``beta2``, ``eps`` (+ optional ``weight_decay``, ``amsgrad``,
            ``decoupled_weight_decay``, ``warmup_fraction``, ``schedule``, and any
            other searched value).
        number: The trial's number in its sweep's study (0-based).
        seed: The sweep's seed; torch, numpy and ``random`` are seeded with it
            before ``train(trial)`` runs in a sweep.
        max_epochs: Epochs the trial may report; a report beyond it ends the trial.
        device: Where to train, e.g. ``"cpu"`` or ``"cuda"``.
        workload_args: The spec's ``workload_args`` mapping (validated against the
            function's ``Args`` model when it declares one).
        metric: The sweep's metric; every report must carry it (None: no check).
        reporter: Receives each epoch's row (a sweep: Ray Tune's ``report``); None
            prints the rows (running outside a sweep).
        dir: The trial's own folder (a sweep: a fresh one per trial, the current folder
            while it runs); None: the current folder.

    Raises:
        KeyError, ValueError: a missing or bad hyperparameter (see
            :meth:`workers.config.AdamConfig.from_config`).
    """

    def __init__(
        self,
        *,
        config: Mapping[str, Any],
        number: int = 0,
        seed: int = 0,
        max_epochs: int = 1,
        device: str = "cpu",
        workload_args: Mapping[str, Any] | None = None,
        metric: str | None = None,
        reporter: Reporter | None = None,
        dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.dir = Path(dir) if dir is not None else Path.cwd()
        """The trial's own folder: in a sweep a fresh one per trial, where it runs (its current
        folder), holding the files of the workload's folder; what it writes there is its own."""
        self.adam = AdamConfig.from_config(config)
        """The trial's Adam config and lr schedule, validated."""
        extra = {k: v for k, v in config.items() if k not in CONFIG_KEYS and k not in _BOOKKEEPING}
        self.config: dict[str, Any] = {**self.adam.torch_kwargs(), **self.adam.schedule_kwargs(), **extra}
        """``lr``, ``betas`` (tuple), ``eps``, ``weight_decay``, ``amsgrad``,
        ``decoupled_weight_decay``, ``schedule``, ``warmup_fraction``, plus any other searched value."""
        self.number = number
        self.seed = seed
        self.max_epochs = max_epochs
        self.workload_args: dict[str, Any] = dict(workload_args or {})
        self._device = device
        self._metric = metric
        self._reporter = reporter
        self._optimizer: FusedAdam | None = None
        self._epoch = 0
        self.stopped = False
        """Whether the sweep ended the trial from :meth:`report` (Ray Tune stops a trial by raising
        ``SystemExit`` there; code that catches it must let it go on)."""

    @classmethod
    def defaults(
        cls,
        *,
        max_epochs: int = 1,
        seed: int = 0,
        device: str | None = None,
        workload_args: Mapping[str, Any] | None = None,
    ) -> Trial:
        """A trial with ``torch.optim.Adam``'s defaults (lr 1e-3, betas (0.9, 0.999),
        eps 1e-8, no weight decay, constant lr) that prints its reports: run a
        ``train(trial)`` function outside a sweep (``python train.py``).

        Args:
            device: ``None`` picks ``"cuda"`` when available, else ``"cpu"``.
        """
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(
            config=AdamConfig().to_config(),
            seed=seed,
            max_epochs=max_epochs,
            device=device,
            workload_args=workload_args,
        )

    @property
    def device(self) -> torch.device:
        """The ``torch.device`` to train on (what Ray reserved for the trial)."""
        import torch

        return torch.device(self._device)

    @property
    def in_sweep(self) -> bool:
        """Whether reports go to a sweep (False: printed, as under :meth:`defaults`)."""
        return self._reporter is not None

    def optimizer(self, params: Iterable[Any]) -> FusedAdam:
        """``workers.FusedAdam`` over ``params`` with this trial's ``lr``, ``betas``, ``eps``,
        ``weight_decay``, ``amsgrad`` and ``decoupled_weight_decay``; ``workers.FusedNAdam`` /
        ``FusedAdamax`` where the trial's ``algorithm`` is ``nadam`` / ``adamax``.

        Args:
            params: Tensors or parameter groups (dicts), as ``torch.optim.Adam`` takes
                them; a value a group sets itself (e.g. ``{"params": ..., "lr": 0}``)
                wins over the trial's.

        Returns:
            The optimizer; :meth:`report` logs its diagnostics each epoch.
        """
        import workers.optim

        name, kwargs = self.adam.fused_optimizer()
        self._optimizer = getattr(workers.optim, name)(params, **kwargs)
        return self._optimizer

    def lr_scheduler(
        self, optimizer: torch.optim.Optimizer, *, total_steps: int
    ) -> torch.optim.lr_scheduler.LRScheduler:
        """torch's ``LambdaLR`` for this trial's ``schedule`` and ``warmup_fraction``
        (constant when the search space sets none); call ``scheduler.step()`` after each
        ``optimizer.step()``.

        Args:
            optimizer: The optimizer from :meth:`optimizer` (any torch optimizer works).
            total_steps: Optimizer steps of the whole run, e.g. ``max_epochs * len(loader)``.

        Raises:
            ValueError: ``total_steps`` < 1.
        """
        from workers.schedule import lr_scheduler

        return lr_scheduler(optimizer, **self.adam.schedule_kwargs(), total_steps=total_steps)

    def report(self, **metrics: float) -> None:
        """End one epoch with its metrics, e.g. ``trial.report(val_loss=0.31, val_accuracy=0.9)``.

        In a sweep the row also carries the diagnostics of the optimizer from
        :meth:`optimizer` (``adam_eps_dominated_frac``, ``adam_update_rms_ratio``,
        ``adam_nonfinite``) and goes to the scheduler (ASHA), which may end the trial
        here; a non-finite metric ends it as diverged.

        Args:
            metrics: Real numbers (Python or numpy numbers, or one-element tensors).

        Raises:
            TypeError: a metric is not a real number.
            ValueError: in a sweep, the sweep's metric is missing from the report.
            RuntimeError: in a sweep, no optimizer was built with :meth:`optimizer`
                (the sweep's hyperparameters would not reach the model).
            StopTrial: in a sweep, the trial diverged or reported past ``max_epochs``.
        """
        from workers.training import divergence

        values = {key: _real(key, value) for key, value in metrics.items()}
        self._epoch += 1
        row: dict[str, Any] = {"epoch": self._epoch, **values}
        if not self.in_sweep:
            print(" ".join([f"epoch {self._epoch}:", *(f"{k}={v:.6g}" for k, v in values.items())]), flush=True)
            return
        if self._epoch > self.max_epochs:
            raise StopTrial(f"reported more than max_epochs={self.max_epochs} epochs")
        if self._metric is not None and self._metric not in values:
            raise ValueError(
                f"trial.report() got {sorted(values) or 'no metrics'} but the sweep optimizes "
                f"{self._metric!r}: report it every epoch, or set the spec's metric to one you report"
            )
        if self._optimizer is None:
            raise RuntimeError(
                "trial.report() was called before trial.optimizer(params) built the optimizer: "
                "build it with trial.optimizer so the sweep's lr, betas and eps reach the model"
            )
        row.update({f"adam_{key}": value for key, value in self._optimizer.diagnostics().items()})
        import torch

        reason = divergence(torch.empty(0), values, self._epoch)
        if reason is not None:
            row.update(diverged=True, reason=reason)
        try:
            self._reporter(row)
        except SystemExit:
            self.stopped = True
            raise
        if reason is not None:
            raise StopTrial(reason)

    @property
    def epochs_reported(self) -> int:
        """How many times :meth:`report` was called."""
        return self._epoch

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, config={self.config!r}, max_epochs={self.max_epochs})"


def _real(key: str, value: Any) -> float:
    if hasattr(value, "item") and callable(value.item):  # torch / numpy scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"trial.report({key}=...) must be a real number, but got {type(value).__name__}: {value!r}")
    return float(value)


# -- the running trial: `from workers import trial` -------------------------------------------

_running: Trial | None = None
_standalone: Trial | None = None


def current() -> Trial:
    """The trial running in this process (set by :func:`running` while a sweep's trial runs);
    outside a sweep, one :meth:`Trial.defaults` trial per process, whose reports are printed."""
    global _standalone
    if _running is not None:
        return _running
    if _standalone is None:
        _standalone = Trial.defaults()
    return _standalone


@contextmanager
def running(trial: Trial) -> Iterator[Trial]:
    """Make ``trial`` :func:`current` while the block runs (one trial at a time per process)."""
    global _running
    before, _running = _running, trial
    try:
        yield trial
    finally:
        _running = before


def __getattr__(name: str) -> Any:
    # `from workers import trial` gives this module; every name it does not define is the
    # running trial's (trial.optimizer, trial.report, trial.config, trial.dir, ...).
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(current(), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | {n for n in dir(Trial) if not n.startswith("_")})
