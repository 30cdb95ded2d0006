"""Tune a Hugging Face ``transformers.Trainer``: the trial's optimizer and lr schedule through
``Trainer(optimizers=...)``, one ``trial.report`` per evaluation, a sweep's stop through
``control.should_training_stop``. Needs ``pip install adamtune[hf]`` (``transformers``,
``accelerate``)::

    from workers.integrations.hf import TrialCallback, optimizers

    def train(trial):
        model = AutoModelForSequenceClassification.from_config(config).to(trial.device)
        args = TrainingArguments(output_dir=..., num_train_epochs=trial.max_epochs,
                                 eval_strategy="epoch", report_to=[], ...)
        trainer = Trainer(model=model, args=args, train_dataset=..., eval_dataset=...,
                          optimizers=optimizers(trial, model.parameters(), total_steps=...),
                          callbacks=[TrialCallback(trial)])
        trainer.train()

Metric names are the Trainer's: ``eval_loss``, and ``eval_<name>`` for what
``compute_metrics`` returns, so a spec says ``metric: eval_loss``.

How a sweep stops the trial: the report of the stopped evaluation raises inside the
callback (ASHA: Ray's ``SystemExit``; a NaN metric or a report past ``max_epochs``:
:class:`workers.trial.StopTrial`). The callback sets ``control.should_training_stop``, so
the Trainer ends as it does for ``EarlyStoppingCallback`` (it still saves that step's
checkpoint when its ``save_strategy`` says so, and loads the best model with
``load_best_model_at_end``), then raises the stop from ``on_train_end``:
``trainer.train()`` raises it and ``train(trial)`` ends there, as it would at a stopped
``trial.report``; the sweep records the trial early-stopped (or diverged). Outside a sweep
(``Trial.defaults()``) reports print and nothing stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

try:
    from transformers import (
        TrainerCallback,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(f"workers.integrations.hf needs transformers: pip install 'adamtune[hf]' ({e})") from e

from workers.integrations._report import Reporting, pick_metrics

if TYPE_CHECKING:
    import torch

    from workers.trial import Trial

__all__ = ["TrialCallback", "optimizers"]


class TrialCallback(TrainerCallback):
    """Reports each evaluation of ``trainer.train()`` to the trial (``on_evaluate``) and
    stops training when the sweep stops the trial.

    One evaluation is one epoch of the sweep: with ``eval_strategy="epoch"`` one per
    training epoch, with ``"steps"`` one per ``eval_steps``. Evaluations outside
    ``trainer.train()`` (a later ``trainer.evaluate()``) are not reported. In a sweep,
    after the trial's ``max_epochs``-th report the callback sets
    ``control.should_training_stop`` (no epoch is trained past the budget). A stop the
    sweep raised is re-raised from ``on_train_end`` (see the module's doc).

    Args:
        trial: The trial ``train(trial)`` received.
        metrics: Names in the Trainer's evaluation metrics to report (e.g.
            ``["eval_loss", "eval_accuracy"]``); None (the default): every number in
            them but ``epoch`` (``eval_loss``, ``eval_runtime``,
            ``eval_samples_per_second``, ``eval_steps_per_second``, ``compute_metrics``'s
            ``eval_*``). The sweep's ``metric`` must be among them.

    Raises (from ``trainer.train()``):
        KeyError: a name in ``metrics`` is not among the evaluation's metrics.
        ValueError: in a sweep, the sweep's metric is not reported.
        RuntimeError: in a sweep, the optimizer was not built with ``trial.optimizer``
            (see :func:`optimizers`).
        workers.trial.StopTrial, SystemExit: the sweep stopped the trial.
    """

    def __init__(self, trial: Trial, metrics: Sequence[str] | None = None) -> None:
        self.trial = trial
        self.metrics = None if metrics is None else list(metrics)
        self._reporting = Reporting(trial)
        self._training = False

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._training = True
        self._reporting.pending = None

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self._training:
            return
        if self._reporting.pending is not None:  # already stopped: report nothing more
            control.should_training_stop = True
            return
        values = pick_metrics(metrics or {}, self.metrics, source="the Trainer's evaluation metrics")
        if self._reporting.report(values):
            control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._training = False
        self._reporting.raise_pending()


def optimizers(
    trial: Trial, params: Iterable[Any], *, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """``Trainer(optimizers=...)`` for the trial: ``(trial.optimizer(params),
    trial.lr_scheduler(optimizer, total_steps=total_steps))``. The Trainer steps the
    scheduler after every optimizer step.

    Build the model on ``trial.device`` before calling this (the optimizer holds the
    parameters it is given; the Trainer must not move the model afterwards).

    Args:
        trial: The trial ``train(trial)`` received.
        params: Parameters or parameter groups, e.g. ``model.parameters()``.
        total_steps: Optimizer steps of the whole run: ``num_train_epochs`` x
            ``ceil(len(train_dataset) / (per_device_train_batch_size *
            gradient_accumulation_steps))`` on one device.

    Returns:
        ``(workers.FusedAdam, torch.optim.lr_scheduler.LambdaLR)``.

    Raises:
        ValueError: ``total_steps`` < 1.
    """
    optimizer = trial.optimizer(params)
    return optimizer, trial.lr_scheduler(optimizer, total_steps=total_steps)
