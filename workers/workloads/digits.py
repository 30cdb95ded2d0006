"""``digits_mlp``: classify scikit-learn's bundled 8x8 handwritten digits with an MLP.

1,797 real images (no download), 64 standardized pixel features, 10 classes; a fixed
stratified 80/20 split gives 1,437 training and 360 validation samples.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from workers.workloads._args import MAX_BATCH, WorkloadArgs
from workers.workloads._base import Split, TensorWorkload, check_training_options
from workers.workloads._tabular import cached_split, check_positive_int, seeded_mlp, standardized_split

__all__ = ["DigitsMLP"]

N_FEATURES = 64
N_CLASSES = 10


@functools.cache
def _load() -> tuple[Split, Split]:
    return cached_split("digits", _build)


def _build() -> tuple[Split, Split]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return standardized_split(data.data, data.target, classification=True)


class DigitsMLPArgs(WorkloadArgs):
    """``digits_mlp``'s ``workload_args``, bounded."""

    hidden: int = Field(64, ge=1, le=65_536, description="Width of the hidden layer.")
    batch_size: int = Field(64, ge=1, le=MAX_BATCH, description="Training mini-batch size in samples.")


class DigitsMLP(TensorWorkload):
    """MLP ``64 -> hidden -> 10`` (ReLU) trained with cross-entropy on ``load_digits``.

    Reports ``val_loss`` (mean cross-entropy, nats) and ``val_accuracy`` (fraction of
    validation images classified correctly, in [0, 1]).

    Args:
        hidden: Width of the hidden layer.
        batch_size: Training mini-batch size in samples.
        bf16: Train under bfloat16 autocast (see ``Workload.bf16``).
        grad_clip_norm: Clip each step's gradient norm to this value (None: no clipping).

    Raises:
        ValueError: ``hidden`` or ``batch_size`` is not an int >= 1, ``bf16`` not a
            bool, ``grad_clip_norm`` not a number > 0.
    """

    name = "digits_mlp"
    metrics = ("val_loss", "val_accuracy")
    default_metric = "val_loss"
    mode = "min"
    can_pack = True
    Args = DigitsMLPArgs

    def __init__(
        self, *, hidden: int = 64, batch_size: int = 64, bf16: bool = False, grad_clip_norm: float | None = None
    ) -> None:
        self.hidden = check_positive_int("hidden", hidden)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.bf16, self.grad_clip_norm = check_training_options(bf16, grad_clip_norm)

    def build_model(self, seed: int) -> nn.Module:
        return seeded_mlp((N_FEATURES, self.hidden, N_CLASSES), seed)

    def load_data(self) -> tuple[Split, Split]:
        """``train.x`` (1437, 64) float32, ``train.y`` (1437,) int64; val: 360 rows."""
        return _load()

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        # output: (B, 10) logits, target: (B,) class indices. F.cross_entropy's value,
        # written out: under vmap (packed trials) cross_entropy runs a decomposition whose
        # shape checks import sympy, 0.35 s of every pack worker's start-up.
        return -F.log_softmax(output, dim=-1).gather(-1, target.unsqueeze(-1)).mean()

    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        accuracy = (output.argmax(dim=-1) == target).to(torch.float32).mean()
        return {"val_loss": float(self.loss(output, target)), "val_accuracy": float(accuracy)}
