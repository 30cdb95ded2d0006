"""Optimizers of adamtune workers over flat buffers.

`FusedAdam` is torch.optim.Adam with one fused update per flat buffer; `PackedAdam`
updates K stacked trials, each with its own hyperparameters, in one call.
"""

from ._backends import auto_backend, available_backends
from ._fused_adam import FusedAdam
from ._packed_adam import PackedAdam

__all__ = ["FusedAdam", "PackedAdam", "auto_backend", "available_backends"]
