"""K stacked copies of an MLP run as batched matmuls, without ``vmap``.

A pack's members share one architecture, so the forward of K models over one batch
is one batched matmul per layer (HFTA's fused operators, Wang et al., MLSys 2021).
``torch.func.vmap`` over ``functional_call`` reaches the same kernels through a
per-call wrapping of every tensor and module attribute; on the small models a pack
is for, that overhead is most of a step (measured on digits_mlp, K = 16, one CPU
thread: 42 ms per epoch with ``vmap``, 33 ms with this path). Models of other shapes
keep the ``vmap`` path (:mod:`workers.packed`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

__all__ = ["StackedForward", "stacked_forward"]

StackedForward = Callable[[Mapping[str, Tensor], Tensor], Tensor]
"""``(params, x) -> output``: ``params`` maps each parameter name to its (R, *shape)
stack, ``x`` is (B, F) (one batch for all members) or (R, B, F) (one each); the output
is (R, B, out)."""

# Modules that hold no parameters and act on each element alone: on (R, B, F) they
# compute exactly what they compute on each member's (B, F).
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Identity)


def stacked_forward(model: nn.Module) -> StackedForward | None:
    """The batched-matmul forward of ``model``'s stacked copies, or ``None`` if ``model``
    is not an ``nn.Sequential`` of ``nn.Linear`` layers and parameter-free elementwise
    activations (``ReLU``, ``Tanh``, ``GELU``, …, not in-place) with at least one
    ``nn.Linear``, or holds buffers.

    Each member's output equals ``model``'s forward with that member's parameters,
    up to float32 rounding (``torch.baddbmm`` may sum in another order than ``F.linear``).
    """
    if type(model) is not nn.Sequential or any(True for _ in model.buffers()):
        return None
    layers: list[tuple[str, str | None] | nn.Module] = []
    for name, module in model.named_children():
        if type(module) is nn.Linear:
            layers.append((f"{name}.weight", f"{name}.bias" if module.bias is not None else None))
        elif type(module) in _ELEMENTWISE and not getattr(module, "inplace", False):  # not on a shared batch's view
            layers.append(module)
        else:
            return None
    if not any(isinstance(layer, tuple) for layer in layers):
        return None

    def forward(params: Mapping[str, Tensor], x: Tensor) -> Tensor:
        h = x
        for layer in layers:
            if isinstance(layer, nn.Module):
                h = layer(h)
                continue
            weight = params[layer[0]].transpose(1, 2)  # (R, in, out)
            if h.dim() == 2:  # the shared batch: (B, in) -> (R, B, in), a view
                h = h.expand(weight.shape[0], *h.shape)
            if layer[1] is None:
                h = torch.bmm(h, weight)
            else:
                h = torch.baddbmm(params[layer[1]].unsqueeze(1), h, weight)  # bias (R, 1, out)
        return h

    return forward
