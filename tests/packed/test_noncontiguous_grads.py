"""Stacked weights' grads can be non-contiguous (bmm of a transposed weight): each row must still update as torch.optim.Adam.

PyTorch's fused CPU Adam kernel silently computed wrong updates on non-contiguous
grads in the packing prototype; ``PackedAdam`` copies such grads into its flat buffer.
"""

from __future__ import annotations

import torch

from workers.optim import PackedAdam

HPARAMS = [
    {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    {"lr": 3e-3, "betas": (0.5, 0.99), "eps": 1e-6, "weight_decay": 1e-2},
    {"lr": 1e-1, "betas": (0.95, 0.9), "eps": 1e-3, "weight_decay": 0.1},
]


def test_non_contiguous_stacked_grads_update_each_row_as_torch_adam() -> None:
    g = torch.Generator().manual_seed(0)
    k = len(HPARAMS)
    weight = torch.randn(k, 7, 5, generator=g)  # (K, out, in), odd sizes
    bias = torch.randn(k, 7, generator=g)  # (K, out)
    stacked = [weight.clone(), bias.clone()]
    packed = PackedAdam(
        stacked,
        lr=[h["lr"] for h in HPARAMS],
        betas=([h["betas"][0] for h in HPARAMS], [h["betas"][1] for h in HPARAMS]),
        eps=[h["eps"] for h in HPARAMS],
        weight_decay=[h["weight_decay"] for h in HPARAMS],
    )
    rows = [[weight[i].clone(), bias[i].clone()] for i in range(k)]
    singles = [torch.optim.Adam(r, **h) for r, h in zip(rows, HPARAMS)]

    for _ in range(4):
        grad_w = torch.randn(k, 5, 7, generator=g).transpose(1, 2)  # (K, 7, 5), not contiguous
        grad_b = torch.randn(7, k, generator=g).t()  # (K, 7), not contiguous
        assert not grad_w.is_contiguous() and not grad_b.is_contiguous()
        stacked[0].grad, stacked[1].grad = grad_w, grad_b
        packed.step()
        for i, (single, r) in enumerate(zip(singles, rows)):
            r[0].grad, r[1].grad = grad_w[i].contiguous(), grad_b[i].contiguous()
            single.step()

    for i, r in enumerate(rows):
        torch.testing.assert_close(stacked[0][i], r[0], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(stacked[1][i], r[1], rtol=1e-6, atol=1e-7)
