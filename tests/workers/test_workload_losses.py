"""The bundled workloads' losses: the usual formulas, also batched over a pack with vmap."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import vmap

from workers.workloads.digits import DigitsMLP


def test_digits_loss_is_cross_entropy_and_vmaps() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(4, 32, 10) * 3, torch.randint(0, 10, (4, 32))  # (K, B, classes), (K, B)
    loss = DigitsMLP().loss
    expected = torch.stack([F.cross_entropy(logits[k], target[k]) for k in range(4)])
    torch.testing.assert_close(torch.stack([loss(logits[k], target[k]) for k in range(4)]), expected)
    torch.testing.assert_close(vmap(loss)(logits, target), expected)
