"""The :class:`Workload` contract: model + data + loss + metrics for one trial.

This module must stay importable without torch (``available_workloads`` and a CLI
validating names import it); torch types appear in annotations only.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["Split", "Workload"]


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

    A workload is everything a trial needs except the optimizer. Subclasses set the
    class attributes below and implement :meth:`build_model`, :meth:`load_data` and
    :meth:`loss`; the default :meth:`evaluate` reports ``val_loss`` only.

    Third-party packages register a subclass under the ``adamtune.workloads``
    entry-point group (``my_task = "my_pkg.tasks:MyTask"``); the class is called with
    no arguments by :func:`~workers.workloads.get_workload`.

    Packing contract (``can_pack = True``): :meth:`build_model` returns a plain
    ``nn.Module`` with parameters only (no buffers such as batch-norm running
    statistics, no in-place state changed by ``forward``), and :meth:`loss` is a pure
    function of its tensors, so K copies can be trained together with
    ``torch.func.stack_module_state`` and ``torch.vmap``.

    Attributes:
        name: Registry name, e.g. ``"digits_mlp"``.
        metrics: Names of the metrics :meth:`evaluate` returns each epoch, always
            including ``"val_loss"``, e.g. ``("val_loss", "val_accuracy")``.
        default_metric: The metric a sweep optimizes unless told otherwise.
        mode: ``"min"`` or ``"max"``: the direction in which ``default_metric``
            improves.
        batch_size: Training mini-batch size in samples.
        can_pack: Whether the packing contract above holds.
    """

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]] = ("val_loss",)
    default_metric: ClassVar[str] = "val_loss"
    mode: ClassVar[Literal["min", "max"]] = "min"
    can_pack: ClassVar[bool] = False
    batch_size: int

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
    def load_data(self) -> tuple[Split, Split]:
        """Return ``(train, val)`` CPU tensors.

        The split is fixed (independent of any trial seed). Implementations may cache
        and return the same tensors on every call: treat them as read-only.
        """

    @abc.abstractmethod
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Mean loss over a batch.

        Args:
            output: Model output for a batch, shape ``(B, ...)``.
            target: Matching ``Split.y`` rows, shape ``(B, ...)``.

        Returns:
            A differentiable scalar tensor.
        """

    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        """Validation metrics for the model output on the whole validation split.

        Args:
            output: Model output for ``val.x``, shape ``(N_val, ...)``.
            target: ``val.y``, shape ``(N_val, ...)``.

        Returns:
            A dict with exactly the keys of :attr:`metrics`, values plain floats
            (non-finite values are possible when training diverged).
        """
        return {"val_loss": float(self.loss(output, target))}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, batch_size={self.batch_size})"
