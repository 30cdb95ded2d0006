"""``workers.integrations.hf``: a ``transformers.Trainer``'s evaluations become the trial's
reports, and a sweep's stop ends training through ``control.should_training_stop`` and then
ends ``train(trial)`` as a stopped ``trial.report`` would. Runs through ``run_function``, the
way a sweep calls ``train(trial)`` on a worker, with a reporter standing in for Ray Tune's."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from workers import FusedAdam, Trial
from workers.integrations.hf import TrialCallback, optimizers
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
N, BATCH = 16, 8  # 2 optimizer steps per epoch

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


class Regression(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.layer(x)  # (B, 1)
        return {"loss": ((out - labels) ** 2).mean(), "logits": out}


class Pairs(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.x = torch.randn(N, 4, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.x[i].sum(dim=0, keepdim=True)}


def make_train(seen: dict, *, epochs: int | None = None, metrics=None, nan_at_evaluation: int | None = None):
    """A ``train(trial)`` running a Trainer; ``seen`` gets it, and ``after_train`` when train() returned."""
    evaluations = []

    def compute_metrics(prediction) -> dict[str, float]:
        evaluations.append(1)
        return {"score": math.nan if len(evaluations) == nan_at_evaluation else 1.0 / len(evaluations)}

    def train(trial: Trial) -> None:
        hf_logging.set_verbosity_error()
        model = Regression()
        args = TrainingArguments(
            output_dir=str(seen["tmp"]),
            num_train_epochs=epochs or trial.max_epochs,
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=N,
            eval_strategy="epoch",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            seed=trial.seed,
        )
        steps = (epochs or trial.max_epochs) * (N // BATCH)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Pairs(),
            eval_dataset=Pairs(),
            compute_metrics=compute_metrics,
            optimizers=optimizers(trial, model.parameters(), total_steps=steps),
            callbacks=[TrialCallback(trial, metrics=metrics)],
        )
        seen["trainer"] = trainer
        trainer.train()
        seen["after_train"] = True
        trainer.evaluate()  # not a sweep epoch: not reported

    return train


def run(train, reporter, *, max_epochs: int = 3, metric: str = "eval_loss") -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_function(
            train,
            CONFIG,
            workload_args=None,
            max_epochs=max_epochs,
            seed=0,
            metric=metric,
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


def test_every_evaluation_reports_the_trainers_metrics_with_the_trials_optimizer_and_schedule(tmp_path) -> None:
    seen: dict = {"tmp": tmp_path}
    rows: list = []
    run(make_train(seen), rows.append, max_epochs=3)
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # the Trainer's float "epoch" is not a metric
    assert [r["eval_score"] for r in rows] == [1.0, 0.5, 1 / 3]
    assert all(isinstance(r["eval_loss"], float) and "eval_runtime" in r and "adam_update_rms_ratio" in r for r in rows)
    optimizer = seen["trainer"].optimizer.optimizer  # accelerate wraps the one it was given
    assert isinstance(optimizer, FusedAdam)
    group = optimizer.param_groups[0]
    assert (group["initial_lr"], group["betas"], group["eps"]) == (0.01, (0.8, 0.99), 1e-7)
    assert group["lr"] == 0.0  # the linear decay was stepped once per optimizer step, to its end
    assert seen["after_train"]


def test_an_asha_stop_sets_should_training_stop_then_ends_train_like_a_plain_function(tmp_path) -> None:
    seen: dict = {"tmp": tmp_path}
    rows: list = []
    with pytest.raises(SystemExit):  # what Ray's tune.report raises when ASHA stops the trial
        run(make_train(seen), stop_at(rows, 2, SystemExit(0)), max_epochs=5)
    trainer = seen["trainer"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert trainer.control.should_training_stop and trainer.state.global_step == 2 * (N // BATCH)
    assert "after_train" not in seen


def test_a_nan_metric_ends_training_and_the_trial_as_diverged(tmp_path) -> None:
    seen: dict = {"tmp": tmp_path}
    rows: list = []
    run(make_train(seen, nan_at_evaluation=2), rows.append, max_epochs=4)  # StopTrial: the trial ends cleanly
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["diverged"] and rows[-1]["reason"] == "eval_score became nan at epoch 2"
    assert seen["trainer"].state.global_step == 2 * (N // BATCH) and "after_train" not in seen


def test_a_run_longer_than_the_trials_budget_stops_at_max_epochs(tmp_path) -> None:
    seen: dict = {"tmp": tmp_path}
    rows: list = []
    run(make_train(seen, epochs=10), rows.append, max_epochs=2)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert seen["trainer"].state.global_step == 2 * (N // BATCH) and seen["after_train"]


def test_outside_a_sweep_reports_print_and_nothing_stops(tmp_path, capsys) -> None:
    seen: dict = {"tmp": tmp_path}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_train(seen, epochs=3, metrics=["eval_loss"])(Trial.defaults(max_epochs=2, device="cpu"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2", "epoch 3"]
    assert all(" eval_loss=" in line and "eval_runtime" not in line for line in lines)


def test_a_missing_metric_fails_training_with_the_names_there_are(tmp_path) -> None:
    rows: list = []
    with pytest.raises(
        KeyError, match=r"'eval_accuracy' not in the Trainer's evaluation metrics, which has \[.*'eval_loss'"
    ):
        run(make_train({"tmp": tmp_path}, metrics=["eval_loss", "eval_accuracy"]), rows.append)
    with pytest.raises(ValueError, match="sweep optimizes 'val_loss'"):
        run(make_train({"tmp": tmp_path}), rows.append, metric="val_loss")
    assert rows == []
