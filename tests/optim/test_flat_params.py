"""The flat-buffer layer the fused optimizers stand on (workers.optim.FlatLayout, FlatParams)."""

from __future__ import annotations

import pytest
import torch

from workers.optim import FlatLayout, FlatParams

SHAPES = [(), (37, 13), (1823,), (0, 3), (1,)]


def test_layout_offsets_are_aligned_and_cover_every_tensor():
    layout = FlatLayout.for_shapes(SHAPES, align=16)
    assert layout.offsets == (0, 16, 16 + 496, 16 + 496 + 1824, 16 + 496 + 1824, 2352)
    assert layout.numel == 2352 and len(layout) == 5
    assert all(o % 16 == 0 for o in layout.offsets)
    for start, stop, shape in zip(layout.offsets, layout.offsets[1:], layout.shapes):
        assert stop - start >= shape.numel()


def test_layout_rejects_bad_alignment():
    with pytest.raises(ValueError, match="align >= 1"):
        FlatLayout.for_shapes(SHAPES, align=0)


def test_views_share_the_buffer_with_and_without_leading_dims():
    layout = FlatLayout.for_shapes(SHAPES, align=4)
    flat = torch.zeros(layout.numel)
    views = layout.views(flat)
    assert [v.shape for v in views] == [torch.Size(s) for s in SHAPES]
    views[1].fill_(2.0)
    assert flat.sum() == 2.0 * 37 * 13

    packed = torch.zeros(3, layout.numel)  # (K, N): K trials sharing one layout
    per_trial = layout.views(packed)
    assert [v.shape for v in per_trial] == [torch.Size((3, *s)) for s in SHAPES]
    per_trial[2][1].fill_(1.0)  # trial 1's 1823-vector
    torch.testing.assert_close(layout.views(packed[1])[2], torch.ones(1823))
    assert packed[0].sum() == 0 and packed[2].sum() == 0


def test_flat_params_rebinds_data_and_copies_existing_grads():
    g = torch.Generator().manual_seed(0)
    values = [torch.randn(s, generator=g) for s in SHAPES[:3]]
    values.append(torch.randn(5, 4, generator=g).t())  # non-contiguous
    params = [torch.nn.Parameter(v.clone()) for v in values]
    params[1].grad = torch.full((37, 13), 3.0)
    flat = FlatParams(params)
    for p, v, view in zip(params, values, flat.param_views):
        torch.testing.assert_close(p.detach(), v, rtol=0, atol=0)
        assert p.data_ptr() == view.data_ptr() and p.is_contiguous() and p.requires_grad
    assert params[1].grad is flat.grad_views[1] and float(flat.grad.sum()) == 3.0 * 37 * 13
    assert params[0].grad is None


def test_flat_params_rejects_mixed_dtypes():
    with pytest.raises(ValueError, match="share device and dtype"):
        FlatParams([torch.zeros(2), torch.zeros(2, dtype=torch.float64)])


def test_collect_grads_copies_foreign_grads_and_reports_missing():
    params = [torch.nn.Parameter(torch.zeros(s)) for s in [(4, 3), (5,), ()]]
    flat = FlatParams(params)
    flat.zero_grad()
    foreign = torch.arange(12.0).view(3, 4).t()  # non-contiguous
    params[0].grad = foreign
    params[1].grad = None
    assert flat.collect_grads() == [True, False, True]
    assert params[0].grad is flat.grad_views[0]
    torch.testing.assert_close(flat.grad_views[0], foreign, rtol=0, atol=0)


def test_zero_grad_keeps_views_for_trainable_params_only():
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    params[1].requires_grad_(False)
    params[1].grad = torch.ones(2)
    flat = FlatParams(params)
    flat.grad.fill_(7.0)
    flat.zero_grad(set_to_none=True)
    assert params[0].grad is flat.grad_views[0] and not params[0].grad.any()
    assert params[1].grad is None


@pytest.mark.parametrize(
    ("active", "counts", "expected"),
    [
        ([True] * 4, [3.0] * 4, [(0, 4)]),
        ([True, False, True, True], [3.0] * 4, [(0, 1), (2, 4)]),
        ([False] * 4, [3.0] * 4, []),
        ([True] * 4, [3.0, 3.0, 2.0, 3.0], [(0, 2), (2, 3), (3, 4)]),
        ([False, True, True, False], [1.0, 2.0, 2.0, 1.0], [(1, 3)]),
    ],
)
def test_spans_are_runs_of_active_params_with_equal_steps(active, counts, expected):
    flat = FlatParams([torch.nn.Parameter(torch.zeros(2)) for _ in range(4)])
    for i, c in enumerate(counts):
        flat.set_step(i, c)
    assert flat.spans(active) == expected
    flat.advance(expected)
    ran = {i for a, b in expected for i in range(a, b)}
    want = [c + (i in ran) for i, c in enumerate(counts)]
    assert flat.step_counts == want and flat.steps.tolist() == want


def test_padding_stays_zero_under_fused_adam():
    """FusedAdam's params, grads and state are views of aligned flat buffers; the padding between
    the views stays zero through its steps."""
    from workers.optim import FusedAdam

    params = [torch.nn.Parameter(torch.randn(s)) for s in [(3,), (5, 5), ()]]
    opt = FusedAdam(params, lr=0.1, betas=(0.9, 0.99), weight_decay=0.1, amsgrad=True, maximize=True)
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    for _ in range(2):
        opt.zero_grad(set_to_none=False)
        for p in params:
            p.grad.normal_()  # in place: into the flat grad buffer
        opt.step()
    tensors = {"param": params, "grad": [p.grad for p in params]}
    tensors |= {key: [opt.state[p][key] for p in params] for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
    for name, views in tensors.items():
        buffer = torch.empty(0).set_(views[0].untyped_storage())  # the whole flat buffer, padding included
        assert all(v.untyped_storage().data_ptr() == buffer.data_ptr() for v in views), name
        used = torch.zeros(buffer.numel(), dtype=torch.bool)
        for v in views:
            used[v.storage_offset() : v.storage_offset() + v.numel()] = True
        assert not used.all() and not buffer[~used].any(), name
