"""Tune a PyTorch Lightning ``LightningModule``: the trial's optimizer and lr schedule from
``configure_optimizers``, one ``trial.report`` per validation run, a sweep's stop through
``trainer.should_stop``. Needs ``pip install adamtune[lightning]`` (``lightning>=2.4``)::

    from workers.integrations.lightning import TrialCallback, optimizer_config

    class Net(L.LightningModule):
        def __init__(self, trial): ...
        def validation_step(self, batch, batch_idx):
            self.log("val_loss", ...)                       # what the sweep's metric names
        def configure_optimizers(self):
            return optimizer_config(self.trial, self.parameters(),
                                    total_steps=self.trainer.estimated_stepping_batches)

    def train(trial):
        trainer = L.Trainer(max_epochs=trial.max_epochs, callbacks=[TrialCallback(trial)], ...)
        trainer.fit(Net(trial), train_loader, val_loader)

How a sweep stops the trial: the report of the stopped epoch raises inside the callback
(ASHA: Ray's ``SystemExit``; a NaN metric or a report past ``max_epochs``:
:class:`workers.trial.StopTrial`). The callback sets ``trainer.should_stop``, so Lightning
ends that epoch as it ends any stopped one (``ModelCheckpoint`` still saves it), then
raises the stop from ``on_fit_end``: ``trainer.fit`` raises it, past Lightning's
interrupt handling (which calls ``on_exception`` hooks and finalizes loggers as
``"failed"``), and ``train(trial)`` ends there, as it would at a stopped
``trial.report``; the sweep records the trial early-stopped (or diverged). Outside a sweep
(``Trial.defaults()``) reports print and nothing stops.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

try:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.trainer.states import TrainerFn
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"workers.integrations.lightning needs PyTorch Lightning: pip install 'adamtune[lightning]' ({e})"
    ) from e

from workers.integrations._report import Reporting, pick_metrics

if TYPE_CHECKING:
    from workers.trial import Trial

__all__ = ["TrialCallback", "optimizer_config"]


class TrialCallback(Callback):
    """Reports ``trainer.callback_metrics`` to the trial after every validation run of
    ``trainer.fit`` and stops the fit when the sweep stops the trial.

    The report is made in ``on_validation_end``, Lightning's last hook of a validation
    run: by then ``callback_metrics`` holds what ``validation_step`` logged (reduced over
    the epoch) and what the module's own ``on_validation_epoch_end`` logged, which Lightning
    runs after callbacks' ``on_validation_epoch_end``. The sanity check and
    ``trainer.validate``/``test`` runs are not reported. One validation run is one
    epoch of the sweep (``val_check_interval=0.5`` reports twice per training epoch).

    In a sweep, after the trial's ``max_epochs``-th report the callback sets
    ``trainer.should_stop`` (no epoch is trained past the budget). A stop the sweep
    raised is re-raised from ``on_fit_end`` (see the module's doc), or at the start of
    the next training epoch when ``min_epochs`` kept Lightning training.

    Args:
        trial: The trial ``train(trial)`` received.
        metrics: ``callback_metrics`` names to report; None (the default): every scalar
            in it, e.g. ``val_loss`` and ``val_acc`` logged with ``self.log``. The sweep's
            ``metric`` must be among them.

    Raises (from ``trainer.fit``):
        KeyError: a name in ``metrics`` is not in ``trainer.callback_metrics``.
        ValueError: in a sweep, the sweep's metric is not reported.
        RuntimeError: in a sweep, the optimizer was not built with ``trial.optimizer``
            (see :func:`optimizer_config`).
        workers.trial.StopTrial, SystemExit: the sweep stopped the trial.
    """

    def __init__(self, trial: Trial, metrics: Sequence[str] | None = None) -> None:
        super().__init__()
        self.trial = trial
        self.metrics = None if metrics is None else list(metrics)
        self._reporting = Reporting(trial)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reporting.pending = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        if self._reporting.pending is not None:  # stopped, yet Lightning validated again
            self._reporting.raise_pending()
        values = pick_metrics(trainer.callback_metrics, self.metrics, source="trainer.callback_metrics")
        if self._reporting.report(values):
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reporting.raise_pending()  # min_epochs overrode should_stop: end the trial now

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reporting.raise_pending()


def optimizer_config(trial: Trial, params: Iterable[Any], *, total_steps: float) -> dict[str, Any]:
    """What ``LightningModule.configure_optimizers`` returns for the trial: its optimizer
    (``trial.optimizer(params)``, a ``workers.FusedAdam``) and its lr schedule
    (``trial.lr_scheduler``, stepped by Lightning after every optimizer step).

    Args:
        trial: The trial ``train(trial)`` received.
        params: Parameters or parameter groups, e.g. ``self.parameters()``.
        total_steps: Optimizer steps of the whole fit; pass
            ``self.trainer.estimated_stepping_batches`` (max_epochs x batches per epoch
            / gradient accumulation).

    Returns:
        ``{"optimizer": FusedAdam, "lr_scheduler": {"scheduler": LambdaLR, "interval":
        "step", "frequency": 1}}``.

    Raises:
        ValueError: ``total_steps`` is not finite (a Trainer without ``max_epochs`` or
            ``max_steps``) or < 1.
    """
    if isinstance(total_steps, float):
        if not math.isfinite(total_steps):
            raise ValueError(
                f"total_steps={total_steps}: give the Trainer max_epochs=trial.max_epochs (or max_steps) "
                "so the trial's lr schedule has a length"
            )
        total_steps = int(total_steps)
    optimizer = trial.optimizer(params)
    scheduler = trial.lr_scheduler(optimizer, total_steps=total_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
