"""Adam update through PyTorch's own fused kernels (`torch._fused_adam_`, `_fused_adamw_`).

Called exactly as `_fused_adam` in torch/optim/adam.py (torch 2.13) calls them, but on
the flat segments of `FlatParams`, so in the common case it is one kernel over a whole
(device, dtype, param group) buffer instead of one per parameter.

Bytes moved per element, s = itemsize: reads p, g, m, v and writes p, m, v: 7 s
(9 s with amsgrad: v_max is read and written too). 28 B / element in float32.

Caveat (measured on torch 2.13 CPU): the CPU kernel silently computes wrong updates
when a grad is not contiguous. Callers must pass contiguous segments; `FlatParams`
guarantees that by copying any foreign `.grad` into its contiguous flat grad buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._hparams import AdamHyperparams


def adam_torch_fused(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    max_exp_avg_sqs: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """Apply one Adam step in place with torch's fused multi-tensor kernel.

    Same contract and formulas as `adam_reference`; additionally every tensor must be
    contiguous and on one device, and `steps` must be float32 on that device.
    """
    if not params:
        return
    device = params[0].device
    lr = hp.lr
    if isinstance(lr, Tensor) and lr.device.type != "cpu" and lr.device != device:
        lr = lr.to(device=device, non_blocking=True)  # as torch's lr_dict does
    update = torch._fused_adamw_ if hp.decoupled_weight_decay else torch._fused_adam_
    update(
        list(params),
        list(grads),
        list(exp_avgs),
        list(exp_avg_sqs),
        list(max_exp_avg_sqs) if hp.amsgrad else [],
        list(steps),
        amsgrad=hp.amsgrad,
        lr=lr,
        beta1=hp.beta1,
        beta2=hp.beta2,
        weight_decay=hp.weight_decay,
        eps=hp.eps,
        maximize=hp.maximize,
        grad_scale=None,
        found_inf=None,
    )
