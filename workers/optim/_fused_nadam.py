"""`FusedNAdam`: torch.optim.NAdam semantics, one fused update per flat buffer."""

from __future__ import annotations

from torch import Tensor
from torch.optim.optimizer import ParamsT

from ._algorithms import NADAM
from ._backends import BackendName
from ._fused import FusedOptimizer
from ._hparams import validate_adam_args


class FusedNAdam(FusedOptimizer):
    r"""NAdam / NAdamW over flat buffers: one fused update per (param group, device, dtype).

    Same math, param-group keys and `state_dict` layout as `torch.optim.NAdam` (torch
    2.13): a state dict saved by either loads into the other. Update at step t for each
    param p with gradient g (Dozat 2016; torch/optim/nadam.py), psi = momentum_decay::

        g      <- -g                               if maximize
        g      <- g + lambda * p                   if lambda != 0 and not decoupled (L2)
        p      <- p * (1 - lr * lambda)            if lambda != 0 and decoupled (NAdamW)
        mu_t    = beta1 * (1 - 0.5 * 0.96^(t * psi))
        mu_prod <- mu_prod * mu_t                  (state "mu_product", float32)
        m      <- beta1 * m + (1 - beta1) * g
        v      <- beta2 * v + (1 - beta2) * g^2
        d       = sqrt(v / (1 - beta2^t)) + eps
        p      <- p - lr (1 - mu_t) / (1 - mu_prod) g / d
                    - lr mu_{t+1} / (1 - mu_prod mu_{t+1}) m / d

    Per-param state, torch's keys and order: ``step`` and ``mu_product`` (float32, 0-d,
    on the param's device, views into (n,) buffers; torch keeps them on the CPU, and its
    loader moves them to the param's device), ``exp_avg``, ``exp_avg_sq`` (views into
    flat buffers, float32 for float16/bfloat16 params). Memory layout, gradients,
    skipped params, checkpoints and pickling as `FusedAdam`. Params whose step counts or
    ``mu_product`` differ (e.g. one skipped on some steps) are updated by separate calls.

    Bytes moved per element per step as `FusedAdam` (7 s for the fused update).

    Args:
        params: iterable of params or named params, or of param-group dicts.
        lr: learning rate, float or 1-element tensor (default 2e-3).
        betas: (beta1, beta2), both in [0, 1) (default (0.9, 0.999)).
        eps: added to the denominator, in gradient units (default 1e-8).
        weight_decay: lambda >= 0 (default 0).
        momentum_decay: psi >= 0 (default 4e-3).
        decoupled_weight_decay: NAdamW weight decay (default False).
        maximize: maximize the objective (default False).
        backend: ``"auto"`` (as `FusedAdam`), ``"triton"`` (our kernel), ``"torch_fused"``
            (torch has no fused NAdam: torch's multi-tensor ``_foreach`` ops, as
            ``torch.optim.NAdam(foreach=True)``) or ``"reference"`` (as the for-loop).

    Raises:
        ValueError: invalid lr / eps / betas / weight_decay / momentum_decay (torch's
            messages), an unknown or unavailable backend, a param listed twice, or an
            empty params list.
        TypeError: a param that is not a real floating-point tensor.
    """

    algorithm = NADAM

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        backend: BackendName = "auto",
    ) -> None:
        validate_adam_args(lr, betas, eps, weight_decay, momentum_decay, beta_types=False)
        defaults = self.algorithm.torch_group(
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": weight_decay,
                "momentum_decay": momentum_decay,
                "decoupled_weight_decay": decoupled_weight_decay,
                "maximize": maximize,
            }
        )
        super().__init__(params, defaults, backend)
