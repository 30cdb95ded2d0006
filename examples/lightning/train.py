"""A PyTorch Lightning module (an MLP on scikit-learn's bundled handwritten digits), tuned by
adamtune through ``workers.integrations.lightning``: the optimizer and its lr schedule come from
the trial in ``configure_optimizers``, and ``TrialCallback`` reports ``val_loss`` and
``val_accuracy`` after every validation epoch and stops the fit when ASHA stops the trial.

    python examples/lightning/train.py                         # trains once with torch's default Adam
    tuner sweep run examples/lightning/spec.yaml               # tunes lr, betas and eps for it
"""

import lightning.pytorch as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from workers import Trial
from workers.integrations.lightning import TrialCallback, optimizer_config

EPOCHS = 8


class DigitsNet(L.LightningModule):
    def __init__(self, trial: Trial, hidden: int = 64) -> None:
        super().__init__()
        self.trial = trial
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 64) pixels in [0, 1] -> (B, 10) logits

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))  # averaged over the epoch's batches
        self.log("val_accuracy", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self):
        # The trial's FusedAdam and its lr schedule, stepped after every optimizer step.
        return optimizer_config(self.trial, self.parameters(), total_steps=self.trainer.estimated_stepping_batches)


def loaders(batch_size: int = 64) -> tuple[DataLoader, DataLoader]:
    x, y = load_digits(return_X_y=True)  # (1797, 64) pixel values 0..16, (1797,) labels
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    as_set = lambda x, y: TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    return (
        DataLoader(as_set(x_train, y_train), batch_size=batch_size, shuffle=True),
        DataLoader(as_set(x_val, y_val), batch_size=256),
    )


def train(trial: Trial = Trial.defaults(max_epochs=EPOCHS, device="cpu")) -> None:
    train_loader, val_loader = loaders()
    trainer = L.Trainer(
        max_epochs=trial.max_epochs,
        accelerator=trial.device.type,
        devices=1,
        callbacks=[TrialCallback(trial)],
        logger=False,  # the sweep's MLflow run records the reports
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(DigitsNet(trial), train_loader, val_loader)


if __name__ == "__main__":
    train()
