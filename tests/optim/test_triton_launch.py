"""The Triton kernel's launch shapes give the same update: a row split over fewer programs
than blocks (each looping over several, as on CUDA beyond 65,535 blocks or with a persistent
grid) is bitwise the default launch, single and packed, frozen trials included.

Runs where "triton" is available on CPU, i.e. under ``TRITON_INTERPRET=1``
(test_triton_interpret.py starts that child); skipped elsewhere.
"""

from __future__ import annotations

import pytest
import torch

from workers.optim import FusedAdam, FusedAdamax, FusedNAdam, PackedAdam, available_backends

pytestmark = pytest.mark.skipif(
    "triton" not in available_backends("cpu"), reason="needs the Triton interpreter (TRITON_INTERPRET=1)"
)

SHAPES = [(9, 13), (60,), (5, 7)]  # flat rows of 212 elements: 16-element blocks, 14 of them over 3 programs
LOOPING = dict(block_size=16, num_warps=1, max_programs=3)


def _grads(params, step: int) -> None:
    gen = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)


def _train(make_optimizer, shapes, lead=(), config=None) -> list[torch.Tensor]:
    from workers.optim import LaunchConfig, launch_config

    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn((*lead, *s), generator=gen)) for s in shapes]
    opt = make_optimizer(params)
    with launch_config(LaunchConfig(**(config or dict(block_size=16, num_warps=1)))):
        for step in range(4):
            _grads(params, step)
            if lead and step == 2:
                opt.set_active([True, False, True])  # trial 1 frozen from step 2 on
            opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("algorithm", ["adam", "nadam", "adamax"])
@pytest.mark.parametrize("device", ["cpu-triton"])
def test_a_row_looped_over_few_programs_matches_one_program_per_block(device, algorithm):
    def single(params):
        cls = {"adam": FusedAdam, "nadam": FusedNAdam, "adamax": FusedAdamax}[algorithm]
        return cls(params, lr=1e-2, weight_decay=0.1, backend="triton")

    def packed(params):
        return PackedAdam(params, lr=[1e-2, 3e-3, 1e-3], algorithm=algorithm, weight_decay=0.1, backend="triton")

    for make, lead in ((single, ()), (packed, (3,))):
        default = _train(make, SHAPES, lead)
        looped = _train(make, SHAPES, lead, LOOPING)
        for a, b in zip(default, looped):
            assert torch.equal(a, b)
