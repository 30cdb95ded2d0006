"""A Hugging Face ``Trainer`` run (a tiny BERT built from a config, randomly initialised: nothing
is downloaded) classifying synthetic token sequences (does token 1 occur more often than
token 2?), tuned by adamtune through ``workers.integrations.hf``: the Trainer gets the
trial's optimizer and lr schedule through ``optimizers=``, and ``TrialCallback`` reports each
epoch's evaluation (``eval_loss``, ``eval_accuracy``) and stops training when ASHA stops the trial.

    python examples/hf_trainer/train.py                        # trains once with torch's default Adam
    tuner sweep run examples/hf_trainer/spec.yaml              # tunes lr, betas and eps for it
"""

import math
import tempfile

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

from workers import Trial
from workers.integrations.hf import TrialCallback, optimizers

EPOCHS = 6
BATCH_SIZE = 32
SEQUENCE_LENGTH, VOCAB = 16, 10


class Sequences(torch.utils.data.Dataset):
    """Random token sequences, token 0 first (a [CLS] token); the label says whether token 1
    occurs more often than token 2 in the rest (1) or not (0)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(1, VOCAB, (n, SEQUENCE_LENGTH), generator=g)  # (n, 16) token ids
        self.tokens[:, 0] = 0
        self.labels = ((self.tokens == 1).sum(dim=1) > (self.tokens == 2).sum(dim=1)).long()  # (n,) 0 or 1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.tokens[i], "labels": self.labels[i]}


def accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(axis=-1) == prediction.label_ids).mean())}


def train(trial: Trial = Trial.defaults(max_epochs=EPOCHS, device="cpu")) -> None:
    hf_logging.set_verbosity_error()
    train_set, val_set = Sequences(1500, seed=0), Sequences(500, seed=1)  # the same data for every trial
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=SEQUENCE_LENGTH,
        num_labels=2,
    )
    model = BertForSequenceClassification(config).to(trial.device)  # random init from the config
    steps_per_epoch = math.ceil(len(train_set) / BATCH_SIZE)
    with tempfile.TemporaryDirectory() as output_dir:  # nothing to keep: no checkpoints saved
        args = TrainingArguments(
            output_dir=output_dir,
            num_train_epochs=trial.max_epochs,
            per_device_train_batch_size=BATCH_SIZE,
            per_device_eval_batch_size=256,
            eval_strategy="epoch",  # one evaluation = one report = one epoch of the sweep
            save_strategy="no",
            logging_strategy="no",
            report_to=[],  # the sweep's MLflow run records the reports
            use_cpu=trial.device.type == "cpu",
            disable_tqdm=True,
            seed=trial.seed,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_set,
            eval_dataset=val_set,
            compute_metrics=accuracy,
            optimizers=optimizers(trial, model.parameters(), total_steps=trial.max_epochs * steps_per_epoch),
            callbacks=[TrialCallback(trial, metrics=["eval_loss", "eval_accuracy"])],
        )
        trainer.train()


if __name__ == "__main__":
    train()
