"""NAdam and AdaMax through torch's multi-tensor (``torch._foreach_*``) ops.

torch 2.13 has no fused NAdam or AdaMax kernel (``torch.optim.NAdam`` / ``Adamax`` take no
``fused=``), so the "torch_fused" backend of `FusedNAdam` / `FusedAdamax` runs these:
operation for operation the non-capturable branches of `_multi_tensor_nadam` and
`_multi_tensor_adamax` (torch/optim/nadam.py, adamax.py), i.e. what
``torch.optim.NAdam(foreach=True)`` computes, but over the flat segments of
`FlatParams` (one tensor per run of params instead of one per param). On CUDA each op
is one multi-tensor launch over all segments; on CPU torch runs them one tensor at a time.

Unlike `_single_tensor_nadam`, NAdam's denominator here is sqrt(v) / sqrt(1 - beta2^t)
+ eps (torch's foreach order), not sqrt(v / (1 - beta2^t)) + eps: the two differ in the
last float32 bits (measured in tests/optim/test_nadam_adamax_parity.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._algorithms import nadam_step_sizes
from ._hparams import AdamHyperparams


def nadam_torch_foreach(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    mu_products: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """One NAdam step in place with torch's foreach ops; contract as `nadam_reference`
    (grads are read only: maximize / L2 work on copies)."""
    if not params:
        return
    params, grads = list(params), list(grads)
    exp_avgs, exp_avg_sqs = list(exp_avgs), list(exp_avg_sqs)
    lr, beta1, beta2 = float(hp.lr), hp.beta1, hp.beta2
    step_values = [s.item() for s in steps]
    mu_product_values = [m.item() for m in mu_products]
    if hp.maximize:
        grads = torch._foreach_neg(grads)
    if hp.weight_decay != 0:
        if hp.decoupled_weight_decay:
            torch._foreach_mul_(params, 1 - lr * hp.weight_decay)
        elif hp.maximize:
            torch._foreach_add_(grads, params, alpha=hp.weight_decay)
        else:
            grads = torch._foreach_add(grads, params, alpha=hp.weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    denom = torch._foreach_sqrt(exp_avg_sqs)
    bias_correction_sqrt = [(1 - beta2**t) ** 0.5 for t in step_values]
    torch._foreach_div_(denom, bias_correction_sqrt)
    torch._foreach_add_(denom, hp.eps)
    step_sizes = [
        nadam_step_sizes(lr, beta1, hp.momentum_decay, t, mp)
        for t, mp in zip(step_values, mu_product_values, strict=True)
    ]
    step_size_grads = [grad_size for grad_size, _ in step_sizes]
    step_size_exp_avgs = [exp_avg_size for _, exp_avg_size in step_sizes]
    torch._foreach_addcdiv_(params, grads, denom, step_size_grads)
    torch._foreach_addcdiv_(params, exp_avgs, denom, step_size_exp_avgs)


def adamax_torch_foreach(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_infs: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """One AdaMax step in place with torch's foreach ops; contract as `adamax_reference`
    (grads are read only)."""
    if not params:
        return
    params, grads = list(params), list(grads)
    exp_avgs, exp_infs = list(exp_avgs), list(exp_infs)
    lr = float(hp.lr)
    if hp.maximize:
        grads = torch._foreach_neg(grads)
    if hp.weight_decay != 0:
        if hp.maximize:
            torch._foreach_add_(grads, params, alpha=hp.weight_decay)
        else:
            grads = torch._foreach_add(grads, params, alpha=hp.weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - hp.beta1)
    torch._foreach_mul_(exp_infs, hp.beta2)
    if not hp.maximize and hp.weight_decay == 0:
        grads = torch._foreach_abs(grads)  # a copy: the flat grads stay as they are
    else:
        torch._foreach_abs_(grads)
    torch._foreach_add_(grads, hp.eps)
    torch._foreach_maximum_(exp_infs, grads)
    step_size = [(lr / (1 - hp.beta1 ** s.item())) * -1 for s in steps]
    torch._foreach_addcdiv_(params, exp_avgs, exp_infs, step_size)
