"""``diabetes_mlp``: regress disease progression on scikit-learn's bundled diabetes data.

442 patients (no download), 10 standardized features, target standardized with
training statistics; a fixed 80/20 split gives 353 training and 89 validation samples.
"""

from __future__ import annotations

import functools

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from workers.workloads._args import MAX_BATCH, WorkloadArgs
from workers.workloads._base import Split, TensorWorkload, check_training_options
from workers.workloads._tabular import cached_split, check_positive_int, seeded_mlp, standardized_split

__all__ = ["DiabetesMLP"]

N_FEATURES = 10


@functools.cache
def _load() -> tuple[Split, Split]:
    return cached_split("diabetes", _build)


def _build() -> tuple[Split, Split]:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    return standardized_split(data.data, data.target, classification=False)


class DiabetesMLPArgs(WorkloadArgs):
    """``diabetes_mlp``'s ``workload_args``, bounded."""

    hidden: int = Field(64, ge=1, le=65_536, description="Width of the hidden layer.")
    batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="Training mini-batch size in samples.")


class DiabetesMLP(TensorWorkload):
    """MLP ``10 -> hidden -> 1`` (ReLU) trained with mean squared error on ``load_diabetes``.

    Reports ``val_loss`` (MSE of the standardized target, so 1.0 equals predicting the
    training mean) and ``val_r2`` (coefficient of determination on validation, <= 1).

    Args:
        hidden: Width of the hidden layer.
        batch_size: Training mini-batch size in samples.
        bf16: Train under bfloat16 autocast (see ``Workload.bf16``).
        grad_clip_norm: Clip each step's gradient norm to this value (None: no clipping).

    Raises:
        ValueError: ``hidden`` or ``batch_size`` is not an int >= 1, ``bf16`` not a
            bool, ``grad_clip_norm`` not a number > 0.
    """

    name = "diabetes_mlp"
    metrics = ("val_loss", "val_r2")
    default_metric = "val_loss"
    mode = "min"
    can_pack = True
    Args = DiabetesMLPArgs

    def __init__(
        self, *, hidden: int = 64, batch_size: int = 32, bf16: bool = False, grad_clip_norm: float | None = None
    ) -> None:
        self.hidden = check_positive_int("hidden", hidden)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.bf16, self.grad_clip_norm = check_training_options(bf16, grad_clip_norm)

    def build_model(self, seed: int) -> nn.Module:
        return seeded_mlp((N_FEATURES, self.hidden, 1), seed)

    def load_data(self) -> tuple[Split, Split]:
        """``train.x`` (353, 10) float32, ``train.y`` (353, 1) float32; val: 89 rows."""
        return _load()

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        # output, target: (B, 1)
        return F.mse_loss(output, target)

    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        mse = self.loss(output, target)
        total = ((target - target.mean()) ** 2).mean()  # variance of val targets
        return {"val_loss": float(mse), "val_r2": float(1.0 - mse / total)}
