"""The :class:`Workload` contract: model + data + loss + metrics for one trial.

A workload hands the loop mini-batches from iterators (a ``DataLoader``, a
generator), so its data need not fit in memory as one tensor; validation is batched
too. :class:`TensorWorkload` implements the data half for data sets held as two
tensors per split (the bundled MLPs).

This module must stay importable without torch (``available_workloads`` and a CLI
validating names import it); torch is imported inside methods.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["Batch", "Split", "TensorWorkload", "Workload", "check_training_options"]

#: One mini-batch ``(x, y)``: model input ``(B, ...)`` and target ``(B, ...)`` on the CPU.
Batch = tuple["Tensor", "Tensor"]


class Split(NamedTuple):
    """One data split as two aligned tensors on the CPU.

    Attributes:
        x: Inputs, shape ``(N, ...)``, float32.
        y: Targets, shape ``(N, ...)``; dtype depends on the workload
            (int64 class indices for classification, float32 for regression).
    """

    x: Tensor
    y: Tensor


class Workload(abc.ABC):
    """A model, its data, its loss and its validation metrics.

    A workload is everything a trial needs except the optimizer; adamtune owns the
    loop (:func:`workers.train`, and the packed trainer), so it can pack K trials.
    Subclasses set the class attributes below and implement :meth:`build_model`,
    :meth:`steps_per_epoch`, :meth:`train_batches`, :meth:`val_batches` and
    :meth:`loss`; the default :meth:`evaluate` reports ``val_loss`` only.

    Third-party packages register a subclass under the ``adamtune.workloads``
    entry-point group (``my_task = "my_pkg.tasks:MyTask"``); the class is built with
    the sweep's ``workload_args`` as keyword arguments.

    Packing contract (``can_pack = True``): :meth:`build_model` returns a plain
    ``nn.Module`` with parameters only (no buffers such as batch-norm running
    statistics, no in-place state changed by ``forward``, no dropout), and
    :meth:`loss` is a pure function of its tensors, so K copies can be trained
    together with ``torch.func.stack_module_state`` and ``torch.vmap``.

    Attributes:
        name: Registry name, e.g. ``"digits_mlp"``.
        metrics: Names of the metrics :meth:`evaluate` returns, always including
            ``"val_loss"``, e.g. ``("val_loss", "val_accuracy")``.
        default_metric: The metric a sweep optimizes unless told otherwise.
        mode: ``"min"`` or ``"max"``: the direction in which ``default_metric`` improves.
        can_pack: Whether the packing contract above holds.
        bf16: Train the forward and the loss under ``torch.autocast`` with bfloat16
            (parameters, gradients and Adam's moments stay float32).
        grad_clip_norm: If set, each step clips the gradient's global L2 norm to this
            value (``torch.nn.utils.clip_grad_norm_``; per member when packed).
    """

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]] = ("val_loss",)
    default_metric: ClassVar[str] = "val_loss"
    mode: ClassVar[Literal["min", "max"]] = "min"
    can_pack: ClassVar[bool] = False
    bf16: bool = False
    grad_clip_norm: float | None = None

    @abc.abstractmethod
    def build_model(self, seed: int) -> nn.Module:
        """Build a freshly initialized model on the CPU.

        Args:
            seed: Initialization seed; the same seed gives bit-identical parameters.
                Does not change torch's global random state.

        Returns:
            A float32 ``nn.Module`` in training mode.
        """

    @abc.abstractmethod
    def steps_per_epoch(self) -> int:
        """How many batches :meth:`train_batches` yields per epoch (the same every epoch)."""

    @abc.abstractmethod
    def train_batches(self, epoch: int, seed: int) -> Iterator[Batch]:
        """The mini-batches of training epoch ``epoch`` (1-based), in order, on the CPU.

        Exactly :meth:`steps_per_epoch` batches. The same ``(epoch, seed)`` gives the
        same batches (trials of a sweep differ only in the optimizer), and the batch
        at a given step has the same shape in every epoch (a pack stacks members that
        are at different epochs). Must not change torch's global random state.
        """

    @abc.abstractmethod
    def val_batches(self) -> Iterable[Batch]:
        """The validation batches, fixed (independent of any seed), on the CPU; their
        size bounds validation's memory (in a pack, times the members)."""

    @abc.abstractmethod
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Mean loss over a batch.

        Args:
            output: Model output for a batch, shape ``(B, ...)``.
            target: The batch's targets, shape ``(B, ...)``.

        Returns:
            A differentiable scalar tensor.
        """

    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        """Validation metrics of one validation batch, each a mean over the batch.

        The loop averages each metric over the batches, weighted by their sizes
        (``target.shape[0]``); a metric that is not such a mean (e.g. R²) needs the
        whole split in one validation batch.

        Args:
            output: Model output for the batch, shape ``(B, ...)``.
            target: The batch's targets, shape ``(B, ...)``.

        Returns:
            A dict with exactly the keys of :attr:`metrics`, values plain floats
            (non-finite values are possible when training diverged).
        """
        return {"val_loss": float(self.loss(output, target))}

    def fingerprint(self) -> dict[str, str]:
        """What data this workload trains on, e.g. ``{"sha256": ..., "bytes": ..., "python":
        ...}``; logged once per sweep as MLflow tags ``adamtune.data.<key>``. Empty by default."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class TensorWorkload(Workload):
    """A workload whose splits are two CPU tensors each (:meth:`load_data`).

    Training batches are ``batch_size`` rows in the order of one ``torch.randperm``
    per epoch, drawn from one generator seeded with ``seed`` (epoch e uses the e-th
    draw; the last batch of an epoch may be smaller). Validation is
    ``val_batch_size`` rows at a time, the whole split in one batch by default.

    Attributes:
        batch_size: Training mini-batch size in samples.
        val_batch_size: Validation batch size in samples; ``None``: the whole split.
    """

    batch_size: int
    val_batch_size: int | None = None

    @abc.abstractmethod
    def load_data(self) -> tuple[Split, Split]:
        """Return ``(train, val)`` CPU tensors.

        The split is fixed (independent of any trial seed). Implementations may cache
        and return the same tensors on every call: treat them as read-only.
        """

    def steps_per_epoch(self) -> int:
        return math.ceil(self.load_data()[0].x.shape[0] / self.batch_size)

    def train_batches(self, epoch: int, seed: int) -> Iterator[Batch]:
        train = self.load_data()[0]
        order = self._orders(train.x.shape[0], seed).order(epoch)  # (N,)
        for index in order.split(self.batch_size):
            yield train.x[index], train.y[index]  # (B, ...), (B, ...)

    def _orders(self, n: int, seed: int) -> _EpochOrders:
        # One per (N, seed), kept on the instance: epoch e's order without redrawing epochs 1..e-1.
        cache = self.__dict__.setdefault("_epoch_orders", {})
        return cache.setdefault((n, seed), _EpochOrders(n, seed))

    def val_batches(self) -> Iterable[Batch]:
        val = self.load_data()[1]
        size = self.val_batch_size or val.x.shape[0]
        return list(zip(val.x.split(size), val.y.split(size)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, batch_size={self.batch_size})"


class _EpochOrders:
    """The batch orders of one generator seeded with ``seed``: epoch e's is its e-th
    ``randperm(n)``. The generator's state before each draw is kept (~5 KB each), so any
    epoch (a refilled pack member restarts at 1) costs one draw, not e of them."""

    def __init__(self, n: int, seed: int) -> None:
        import torch

        self._n = n
        self._states = [torch.Generator().manual_seed(seed).get_state()]  # state before epoch e's draw at e - 1

    def order(self, epoch: int) -> Tensor:
        """The (N,) order of ``epoch`` (1-based)."""
        import torch

        generator = torch.Generator()
        while len(self._states) < epoch:
            generator.set_state(self._states[-1])
            torch.randperm(self._n, generator=generator)
            self._states.append(generator.get_state())
        generator.set_state(self._states[epoch - 1])
        return torch.randperm(self._n, generator=generator)


def check_training_options(bf16: object, grad_clip_norm: object) -> tuple[bool, float | None]:
    """Validate the ``bf16`` and ``grad_clip_norm`` workload arguments.

    Raises:
        ValueError: ``bf16`` not a bool, or ``grad_clip_norm`` neither None nor a number > 0.
    """
    if bf16 not in (True, False):
        raise ValueError(f"bf16 must be true or false, but got {bf16!r}")
    if grad_clip_norm is not None:
        if isinstance(grad_clip_norm, bool) or not isinstance(grad_clip_norm, (int, float)) or not grad_clip_norm > 0:
            raise ValueError(f"grad_clip_norm must be a number > 0 or null (no clipping), but got {grad_clip_norm!r}")
        grad_clip_norm = float(grad_clip_norm)
    return bool(bf16), grad_clip_norm
