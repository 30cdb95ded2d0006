"""Optimizers of adamtune workers over flat buffers.

`FusedAdam` is torch.optim.Adam with one fused update per flat buffer; `PackedAdam`
updates K stacked trials, each with its own hyperparameters, in one call.
"""

from ._backends import available_backends
from ._fused_adam import FusedAdam
from ._packed_adam import PackedAdam

__all__ = ["FusedAdam", "PackedAdam", "available_backends"]
