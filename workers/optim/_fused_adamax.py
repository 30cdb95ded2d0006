"""`FusedAdamax`: torch.optim.Adamax semantics, one fused update per flat buffer."""

from __future__ import annotations

from torch import Tensor
from torch.optim.optimizer import ParamsT

from ._algorithms import ADAMAX
from ._backends import BackendName
from ._fused import FusedOptimizer
from ._hparams import validate_adam_args


class FusedAdamax(FusedOptimizer):
    r"""AdaMax over flat buffers: one fused update per (param group, device, dtype).

    Same math, param-group keys and `state_dict` layout as `torch.optim.Adamax` (torch
    2.13): a state dict saved by either loads into the other. Update at step t for each
    param p with gradient g (Kingma & Ba 2014, Alg. 2; torch/optim/adamax.py)::

        g <- -g                               if maximize
        g <- g + lambda * p                   if lambda != 0 (L2; no decoupled variant)
        m <- beta1 * m + (1 - beta1) * g
        u <- max(beta2 * u, |g| + eps)        (state "exp_inf")
        p <- p - lr / (1 - beta1^t) * m / u

    Per-param state, torch's keys and order: ``step`` (float32, 0-d, on the param's
    device), ``exp_avg``, ``exp_inf`` (views into flat buffers, float32 for
    float16/bfloat16 params). Memory layout, gradients, skipped params, checkpoints and
    pickling as `FusedAdam`; bytes moved per element per step: 7 s for the fused update.

    Args:
        params: iterable of params or named params, or of param-group dicts.
        lr: learning rate, float or 1-element tensor (default 2e-3).
        betas: (beta1, beta2), both in [0, 1) (default (0.9, 0.999)).
        eps: added to |g| inside the max, in gradient units (default 1e-8).
        weight_decay: lambda >= 0 (default 0).
        foreach: accepted for torch's signature and recorded; ignored.
        maximize: maximize the objective (default False).
        backend: ``"auto"`` (as `FusedAdam`), ``"triton"`` (our kernel), ``"torch_fused"``
            (torch has no fused AdaMax: torch's multi-tensor ``_foreach`` ops, as
            ``torch.optim.Adamax(foreach=True)``) or ``"reference"`` (as the for-loop).

    Raises:
        ValueError: invalid lr / eps / betas / weight_decay (torch's messages), an
            unknown or unavailable backend, a param listed twice, or an empty params list.
        TypeError: a param that is not a real floating-point tensor.
    """

    algorithm = ADAMAX

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        backend: BackendName = "auto",
    ) -> None:
        validate_adam_args(lr, betas, eps, weight_decay, beta_types=False)
        defaults = self.algorithm.torch_group(
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "foreach": foreach,
                "maximize": maximize,
            }
        )
        super().__init__(params, defaults, backend)
