"""Plain-torch Adam, NAdam and AdaMax updates: the references every other backend is
tested against.

Operation for operation the non-capturable branches of `_single_tensor_adam`,
`_single_tensor_nadam` and `_single_tensor_adamax` in torch/optim/{adam,nadam,adamax}.py
(torch 2.13), so on the same inputs they agree with ``torch.optim.Adam`` / ``NAdam`` /
``Adamax`` with ``foreach=False`` up to the vectorized-vs-scalar rounding of ATen's
elementwise kernels. It runs on any device and dtype torch supports; it is slow (one
pass over memory per op, see the byte counts below) and exists to pin the semantics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._algorithms import nadam_step_sizes
from ._hparams import AdamHyperparams


def adam_reference(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    max_exp_avg_sqs: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """Apply one Adam step in place to each (param, grad, state) segment.

    Formulas (Kingma & Ba 2014, Alg. 1; torch/optim/adam.py), with t = steps[i]:
        g   = -grad if maximize else grad
        g   = g + lambda * p                  (L2, when not decoupled)
        p   = p * (1 - lr * lambda)           (AdamW, when decoupled)
        m   = lerp(m, g, 1 - beta1)
        v   = v * beta2 + (1 - beta2) * g * g
        v_max = max(v_max, v)                 (amsgrad; raw, not bias-corrected)
        p   = p - lr / (1 - beta1**t) * m / (sqrt(v or v_max) / sqrt(1 - beta2**t) + eps)

    Args:
        params, grads, exp_avgs, exp_avg_sqs: i-th entries have the same shape, dtype
            and device (any real floating dtype); grads are read only.
        max_exp_avg_sqs: same as above when `hp.amsgrad`, otherwise ignored (may be empty).
        steps: 0-d float tensors, already incremented to this step's t >= 1.
        hp: hyperparameters of the param group.

    Bytes moved per element, s = itemsize (the ops below; temporaries included):
        18 s; +2 s with maximize, +3 s with L2 weight decay (+2 s decoupled),
        +3 s with amsgrad. Compare 7 s (9 s amsgrad) for a single fused pass.
    """
    lr = hp.lr
    beta1, beta2 = hp.beta1, hp.beta2
    for i, param in enumerate(params):
        grad = grads[i] if not hp.maximize else -grads[i]  # r g, w tmp: 2 s
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        step = steps[i].item()

        if hp.weight_decay != 0:
            if hp.decoupled_weight_decay:
                param.mul_(1 - lr * hp.weight_decay)  # r p, w p: 2 s
            else:
                grad = grad.add(param, alpha=hp.weight_decay)  # r g, r p, w tmp: 3 s

        exp_avg.lerp_(grad, 1 - beta1)  # r m, r g, w m: 3 s
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # 2 s + 3 s

        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5

        if hp.amsgrad:
            # r v_max, r v, w v_max: 3 s
            torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            second_moment = max_exp_avg_sqs[i]
        else:
            second_moment = exp_avg_sq
        # sqrt: 2 s, div: 2 s, add_: 2 s
        denom = (second_moment.sqrt() / bias_correction2_sqrt).add_(hp.eps)
        param.addcdiv_(exp_avg, denom, value=-step_size)  # r p, r m, r d, w p: 4 s


def nadam_reference(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    mu_products: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """Apply one NAdam step in place to each (param, grad, state) segment.

    Formulas (Dozat 2016; torch/optim/nadam.py), with t = steps[i] and
    mu_t = beta1 * (1 - 0.5 * 0.96^(t * psi)), psi = momentum_decay:
        g   = -grad if maximize else grad
        g   = g + lambda * p                  (L2, when not decoupled)
        p   = p * (1 - lr * lambda)           (decoupled: NAdamW)
        m   = lerp(m, g, 1 - beta1)
        v   = v * beta2 + (1 - beta2) * g * g
        d   = sqrt(v / (1 - beta2^t)) + eps
        p   = p - lr * (1 - mu_t) / (1 - prod_{s<=t} mu_s) * g / d
                - lr * mu_{t+1} / (1 - prod_{s<=t+1} mu_s) * m / d

    Args:
        mu_products: 0-d float32 tensors, prod_{s<=t} mu_s (already multiplied by mu_t,
            as torch does before the update); read with ``.item()``.
        others: as `adam_reference`.

    Bytes moved per element, s = itemsize: 22 s (+2 s maximize, +3 s L2, +2 s decoupled).
    """
    lr = float(hp.lr)
    beta1, beta2 = hp.beta1, hp.beta2
    for i, param in enumerate(params):
        grad = grads[i] if not hp.maximize else -grads[i]
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        step = steps[i].item()
        mu_product = mu_products[i].item()
        bias_correction2 = 1 - beta2**step
        if hp.weight_decay != 0:
            if hp.decoupled_weight_decay:
                param.mul_(1 - lr * hp.weight_decay)
            else:
                grad = grad.add(param, alpha=hp.weight_decay)
        step_size_grad, step_size_exp_avg = nadam_step_sizes(lr, beta1, hp.momentum_decay, step, mu_product)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = exp_avg_sq.div(bias_correction2).sqrt()
        denom.add_(hp.eps)
        param.addcdiv_(grad, denom, value=step_size_grad)
        param.addcdiv_(exp_avg, denom, value=step_size_exp_avg)


def adamax_reference(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_infs: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """Apply one AdaMax step in place to each (param, grad, state) segment.

    Formulas (Kingma & Ba 2014, Alg. 2; torch/optim/adamax.py), with t = steps[i]:
        g   = -grad if maximize else grad
        g   = g + lambda * p                  (L2; AdaMax has no decoupled decay)
        m   = lerp(m, g, 1 - beta1)
        u   = max(beta2 * u, |g| + eps)       (exp_inf)
        p   = p - lr / (1 - beta1^t) * m / u

    Args: as `adam_reference`, with `exp_infs` (u) for the second state.

    Bytes moved per element, s = itemsize: 15 s (+2 s maximize, +3 s L2).
    """
    lr = float(hp.lr)
    for i, param in enumerate(params):
        grad = grads[i] if not hp.maximize else -grads[i]
        exp_avg, exp_inf = exp_avgs[i], exp_infs[i]
        step = steps[i].item()
        if hp.weight_decay != 0:
            grad = grad.add(param, alpha=hp.weight_decay)
        exp_avg.lerp_(grad, 1 - hp.beta1)
        torch.maximum(exp_inf.mul_(hp.beta2), grad.abs().add_(hp.eps), out=exp_inf)
        clr = lr / (1 - hp.beta1**step)
        param.addcdiv_(exp_avg, exp_inf, value=-clr)
