"""``workers.integrations.lightning``: a LightningModule's validation epochs become the trial's
reports, and a sweep's stop ends the fit through ``trainer.should_stop`` and then ends
``train(trial)`` as a stopped ``trial.report`` would. Runs through ``run_function``, the way a
sweep calls ``train(trial)`` on a worker, with a reporter standing in for Ray Tune's."""

from __future__ import annotations

import math
import warnings

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workers import FusedAdam, Trial
from workers.integrations.lightning import TrialCallback, optimizer_config
from workers.trainable import run_function

CONFIG = {
    "lr": 0.01,
    "beta1": 0.8,
    "beta2": 0.99,
    "eps": 1e-7,
    "schedule": "linear",
    "warmup_fraction": 0.0,
    "trial_number": 1,
}
STEPS_PER_EPOCH = 2

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


class Net(L.LightningModule):
    def __init__(self, trial: Trial, nan_at_epoch: int | None = None) -> None:
        super().__init__()
        self.trial, self.nan_at_epoch = trial, nan_at_epoch
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return ((self.layer(x) - y) ** 2).mean()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = ((self.layer(x) - y) ** 2).mean()
        if self.nan_at_epoch == self.current_epoch + 1:
            loss = loss * math.nan
        self.log("val_loss", loss)

    def on_validation_epoch_end(self) -> None:  # Lightning runs it after callbacks' hook of that name
        self.log("module_epoch", float(self.current_epoch + 1))

    def configure_optimizers(self):
        return optimizer_config(self.trial, self.parameters(), total_steps=self.trainer.estimated_stepping_batches)


def loader() -> DataLoader:
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=16 // STEPS_PER_EPOCH)


def make_train(seen: dict, *, max_epochs: int | None = None, callbacks=(), metrics=None, **trainer_kwargs):
    """A ``train(trial)`` that fits Net; ``seen`` gets the trainer, and ``after_fit`` when fit returned."""

    def train(trial: Trial) -> None:
        trainer = L.Trainer(
            max_epochs=max_epochs or trial.max_epochs,
            callbacks=[TrialCallback(trial, metrics=metrics), *callbacks],
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=bool(callbacks),
            enable_progress_bar=False,
            enable_model_summary=False,
            **trainer_kwargs,
        )
        seen["trainer"], seen["net"] = trainer, Net(trial, seen.get("nan_at_epoch"))
        trainer.fit(seen["net"], loader(), loader())
        seen["after_fit"] = True
        trainer.validate(seen["net"], loader(), verbose=False)  # not a sweep epoch: not reported

    return train


def run(train, reporter, *, max_epochs: int = 3) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_function(
            train,
            CONFIG,
            workload_args=None,
            max_epochs=max_epochs,
            seed=0,
            metric="val_loss",
            threads=1,
            device="cpu",
            report=reporter,
        )


def stop_at(rows: list, epoch: int, stop: BaseException):
    """A reporter like Ray Tune's: records the row, then raises ``stop`` at ``epoch``'s report."""

    def report(row: dict) -> None:
        rows.append(row)
        if row["epoch"] == epoch:
            raise stop

    return report


def test_every_validation_epoch_reports_callback_metrics_with_the_trials_optimizer_and_schedule() -> None:
    seen: dict = {}
    rows: list = []
    run(make_train(seen), rows.append, max_epochs=3)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["module_epoch"] for r in rows] == [1.0, 2.0, 3.0]  # the module's own epoch-end logs, current
    assert all(isinstance(r["val_loss"], float) and "adam_update_rms_ratio" in r for r in rows)
    optimizer = seen["trainer"].optimizers[0]
    assert isinstance(optimizer, FusedAdam)
    group = optimizer.param_groups[0]
    assert (group["initial_lr"], group["betas"], group["eps"]) == (0.01, (0.8, 0.99), 1e-7)
    assert group["lr"] == 0.0  # the linear decay was stepped once per optimizer step, to its end
    assert seen["after_fit"]


def test_an_asha_stop_sets_should_stop_ends_the_epoch_then_ends_train_like_a_plain_function(tmp_path) -> None:
    seen: dict = {}
    rows: list = []
    checkpoints = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, monitor=None, every_n_epochs=1)
    with pytest.raises(SystemExit):  # what Ray's tune.report raises when ASHA stops the trial
        run(make_train(seen, callbacks=[checkpoints]), stop_at(rows, 2, SystemExit(0)), max_epochs=5)
    trainer = seen["trainer"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert trainer.should_stop and trainer.current_epoch == 2 and "after_fit" not in seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt"]

    plain: list = []

    def plain_train(trial: Trial) -> None:
        trial.optimizer(nn.Linear(2, 2).parameters())
        for _ in range(trial.max_epochs):
            trial.report(val_loss=1.0)

    with pytest.raises(SystemExit):  # the same outcome for a train(trial) without Lightning
        run(plain_train, stop_at(plain, 2, SystemExit(0)), max_epochs=5)
    assert len(plain) == len(rows)


def test_min_epochs_cannot_keep_a_stopped_trial_training() -> None:
    seen: dict = {}
    rows: list = []
    with pytest.raises(SystemExit):
        run(make_train(seen, min_epochs=4), stop_at(rows, 1, SystemExit(0)), max_epochs=5)
    assert len(rows) == 1 and seen["trainer"].current_epoch == 1  # the stop was raised as epoch 2 began


def test_a_nan_metric_ends_the_fit_and_the_trial_as_diverged() -> None:
    seen: dict = {"nan_at_epoch": 2}
    rows: list = []
    run(make_train(seen), rows.append, max_epochs=4)  # StopTrial: run_function ends the trial cleanly
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["diverged"] and rows[-1]["reason"] == "val_loss became nan at epoch 2"
    assert seen["trainer"].should_stop and seen["trainer"].current_epoch == 2 and "after_fit" not in seen


def test_a_trainer_longer_than_the_trials_budget_stops_at_max_epochs() -> None:
    seen: dict = {}
    rows: list = []
    run(make_train(seen, max_epochs=10), rows.append, max_epochs=2)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert seen["trainer"].current_epoch == 2 and seen["after_fit"]  # no epoch past the budget, a normal end


def test_outside_a_sweep_reports_print_and_nothing_stops(capsys) -> None:
    seen: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_train(seen, max_epochs=3)(Trial.defaults(max_epochs=2, device="cpu"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2", "epoch 3"]
    assert seen["after_fit"]


@pytest.mark.parametrize(
    ("metrics", "error", "match"),
    [
        (
            ["val_loss", "val_accuracy"],
            KeyError,
            r"'val_accuracy' not in trainer.callback_metrics, which has \['module_epoch', 'val_loss'\]",
        ),
        (["module_epoch"], ValueError, "sweep optimizes 'val_loss'"),
    ],
)
def test_missing_metrics_fail_the_fit_with_the_names_there_are(metrics, error, match) -> None:
    rows: list = []
    with pytest.raises(error, match=match):
        run(make_train({}, metrics=metrics), rows.append)
    assert rows == []


def test_reported_metrics_can_be_chosen() -> None:
    rows: list = []
    run(make_train({}, metrics=["val_loss"]), rows.append, max_epochs=1)
    assert "module_epoch" not in rows[0] and "val_loss" in rows[0]


def test_optimizer_config_needs_a_finite_length() -> None:
    trial = Trial(config=CONFIG)
    config = optimizer_config(trial, nn.Linear(2, 2).parameters(), total_steps=8.0)
    assert config["lr_scheduler"]["interval"] == "step" and isinstance(config["optimizer"], FusedAdam)
    with pytest.raises(ValueError, match="max_epochs=trial.max_epochs"):
        optimizer_config(trial, nn.Linear(2, 2).parameters(), total_steps=math.inf)
