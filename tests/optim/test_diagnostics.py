"""Optimizer-state diagnostics of FusedAdam and PackedAdam, checked against torch.optim.Adam."""

from __future__ import annotations

import math

import pytest
import torch

from workers.optim import FusedAdam, PackedAdam

SHAPES = [(), (37, 13), (5,)]  # sizes off the 16-element alignment: padding must not count


def stacked(k: int, seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn((k, *s), generator=g)) for s in SHAPES]


def expected_ratio(rows: list[torch.Tensor], **adam) -> tuple[float, float]:
    """(update RMS / param RMS, eps-dominated fraction) after one more torch Adam step."""
    params = [torch.nn.Parameter(r.detach().clone()) for r in rows]
    opt = torch.optim.Adam(params, foreach=False, **adam)
    g = torch.Generator().manual_seed(5)
    for _step in range(4):
        before = [p.detach().clone() for p in params]
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    update = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, params)])
    flat = torch.cat([p.detach().flatten() for p in params])
    v = torch.cat([opt.state[p]["exp_avg_sq"].flatten() for p in params])
    v_hat_sqrt = v.sqrt() / math.sqrt(1 - adam["betas"][1] ** 4)
    frac = float((v_hat_sqrt < adam["eps"]).float().mean())
    return float(update.norm() / flat.norm()), frac


def test_packed_diagnostics_per_trial_match_torch():
    params = stacked(2)
    rows = [[p[k].detach().clone() for p in params] for k in range(2)]
    configs = [{"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8}, {"lr": 0.1, "betas": (0.5, 0.9), "eps": 3.0}]
    opt = PackedAdam(params, lr=[0.01, 0.1], betas=([0.9, 0.5], [0.999, 0.9]), eps=[1e-8, 3.0])
    assert opt.diagnostics()["nonfinite"] == [0.0, 0.0]
    assert all(math.isnan(x) for x in opt.diagnostics()["update_rms_ratio"])
    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        for p in params:  # both trials get expected_ratio's draws
            grad = torch.randn(p.shape[1:], generator=g)
            p.grad = torch.stack([grad, grad])
        opt.step()
    diag = opt.diagnostics()
    assert set(diag) == {"eps_dominated_frac", "update_rms_ratio", "nonfinite"}
    for k in range(2):
        ratio, frac = expected_ratio(rows[k], **configs[k])
        assert diag["update_rms_ratio"][k] == pytest.approx(ratio, rel=1e-4)
        assert diag["eps_dominated_frac"][k] == pytest.approx(frac, abs=1e-9)
    assert 0.0 <= diag["eps_dominated_frac"][0] < 0.01 < 0.5 < diag["eps_dominated_frac"][1]


def test_huge_eps_dominates_every_coordinate_padding_excluded():
    params = stacked(2)
    opt = PackedAdam(params, eps=[1e3, 0.0])
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    assert opt.diagnostics()["eps_dominated_frac"] == [1.0, 0.0]


def test_nonfinite_counts_per_trial_and_frozen_trials_report_nan():
    params = stacked(3)
    opt = PackedAdam(params)
    opt.set_active([True, True, False])
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()
    with torch.no_grad():
        params[1][1, 2, 3] = math.inf
    diag = opt.diagnostics()
    assert diag["nonfinite"] == [0.0, 1.0, 0.0]
    assert math.isnan(diag["update_rms_ratio"][2]) and math.isnan(diag["eps_dominated_frac"][2])


def test_fused_adam_diagnostics_match_torch():
    rows = [p[0].detach() for p in stacked(1)]
    params = [torch.nn.Parameter(r.clone()) for r in rows]
    config = {"lr": 0.01, "betas": (0.9, 0.99), "eps": 1e-3}
    opt = FusedAdam(params, **config)
    assert math.isnan(opt.diagnostics()["update_rms_ratio"])
    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    ratio, frac = expected_ratio(rows, **config)
    diag = opt.diagnostics()
    assert diag["update_rms_ratio"] == pytest.approx(ratio, rel=1e-4)
    assert diag["eps_dominated_frac"] == pytest.approx(frac, abs=1e-9)
    assert diag["nonfinite"] == 0.0
