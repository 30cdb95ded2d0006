"""`FusedAdam`: torch.optim.Adam semantics, one fused update per flat buffer."""

from __future__ import annotations

from torch import Tensor
from torch.optim.optimizer import ParamsT

from ._algorithms import ADAM
from ._backends import BackendName
from ._fused import FusedOptimizer
from ._hparams import validate_adam_args


class FusedAdam(FusedOptimizer):
    r"""Adam / AdamW over flat buffers: one fused update per (param group, device, dtype).

    Same math, param-group keys and `state_dict` layout as `torch.optim.Adam` (torch
    2.13): a state dict saved by either loads into the other. Update at step t for
    each param p with gradient g (Kingma & Ba 2014, Alg. 1; torch/optim/adam.py)::

        g     <- -g                               if maximize
        g     <- g + lambda * p                   if lambda != 0 and not decoupled (L2)
        p     <- p * (1 - lr * lambda)            if lambda != 0 and decoupled (AdamW)
        m     <- beta1 * m + (1 - beta1) * g
        v     <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)                    if amsgrad (raw, not bias-corrected)
        p     <- p - lr / (1 - beta1^t) * m / (sqrt(v or v_max) / sqrt(1 - beta2^t) + eps)

    Memory layout: at construction each group's params are packed per (device, dtype)
    into one flat buffer and `p.data` becomes a contiguous view into it (a non-contiguous
    param becomes contiguous; tensors that aliased the old storage are detached from it).
    Grads, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` and the per-param `step`
    (float32, 0-d, on the param's device, as with `Adam(fused=True)`) are views into flat
    buffers too, so `optimizer.state[p]` looks exactly like torch's, except that
    float16/bfloat16 params keep float32 moments (half-precision moments silently
    degrade training; the update is computed in float32 and rounded to the param). Construction briefly
    holds the params twice (old storage + flat copy). `torch.save` of a single param
    saves its whole flat buffer (the storage is shared); `model.state_dict()` is fine.

    Bytes moved per element per step (s = itemsize; 4 for float32), default backend:
    7 s for the update (read p, g, m, v; write p, m, v), 9 s with amsgrad, plus 1 s for
    `zero_grad()`, plus 2 s for each element of a `.grad` that had to be copied in.

    Gradients:
        - `zero_grad()` zeroes the flat grad buffer and keeps (re-)assigning the views
          as `.grad` of every param with `requires_grad=True`, also for
          `set_to_none=True`, so `backward()` accumulates in place. Consequence: unlike
          torch, a param that gets no gradient from `backward()` is stepped with a zero
          gradient. To skip a param on a step, set `p.grad = None` explicitly; it is then
          skipped exactly as torch.optim.Adam skips it (no step count, no state change).
        - A `.grad` that is not the flat view (user-assigned, possibly non-contiguous,
          or allocated by autograd after `.grad` was None, e.g. after
          `model.zero_grad()`) is copied into the flat buffer before the update.
        - Fast path: all params of a buffer have grads and equal step counts -> one
          kernel call over the buffer; otherwise one call over runs of params.

    Args:
        params: iterable of params or named params, or of param-group dicts.
        lr: learning rate, float or 1-element tensor (default 1e-3).
        betas: EMA coefficients (beta1, beta2), both in [0, 1) (default (0.9, 0.999)).
        eps: added to the denominator, in gradient units (default 1e-8).
        weight_decay: lambda >= 0 (default 0).
        amsgrad: use AMSGrad (Reddi et al. 2018) (default False).
        maximize: maximize the objective (default False).
        decoupled_weight_decay: AdamW weight decay (Loshchilov & Hutter 2019)
            (default False).
        backend: update implementation: ``"auto"`` (`workers.optim.auto_backend`:
            torch's fused kernel on CPU and CUDA: for one trial it costs less host time per
            step than the Triton kernel), ``"triton"`` (our Triton kernel; CUDA, with the extra
            ``.[triton]``),
            ``"torch_fused"`` (torch's fused kernel; CPU, CUDA) or ``"reference"``
            (plain torch ops, any device); see `workers.optim.available_backends`.

    Raises:
        ValueError: invalid lr / eps / betas / weight_decay (torch's messages), an
            unknown or unavailable backend, a param listed twice, or an empty params list.
        TypeError: a param that is not a real floating-point tensor.
    """

    algorithm = ADAM

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        backend: BackendName = "auto",
    ) -> None:
        validate_adam_args(lr, betas, eps, weight_decay)
        # the keys and order of torch.optim.Adam's param groups; foreach, capturable,
        # differentiable and fused (None: a torch Adam loading this state picks its
        # default) are recorded for torch compatibility and ignored
        defaults = self.algorithm.torch_group(
            {
                "lr": lr,
                "betas": tuple(b.squeeze() if isinstance(b, Tensor) else b for b in betas),
                "eps": eps,
                "weight_decay": weight_decay,
                "amsgrad": amsgrad,
                "maximize": maximize,
                "decoupled_weight_decay": decoupled_weight_decay,
            }
        )
        super().__init__(params, defaults, backend)
