"""Optimizers of adamtune workers over flat buffers.

`FusedAdam`, `FusedNAdam` and `FusedAdamax` are torch.optim.Adam, NAdam and Adamax with one
fused update per flat buffer; `PackedAdam` updates K stacked trials, each with its own
hyperparameters, in one call (``algorithm="adam" | "nadam" | "adamax"``).
"""

from ._backends import auto_backend, available_backends
from ._fused_adam import FusedAdam
from ._fused_adamax import FusedAdamax
from ._fused_nadam import FusedNAdam
from ._packed_adam import PackedAdam

__all__ = ["FusedAdam", "FusedAdamax", "FusedNAdam", "PackedAdam", "auto_backend", "available_backends"]
