"""Optimizer-state diagnostics: what shows that eps or beta2 is wrong for a model.

Computed on demand from the state the last step used (never inside `step`), with the
bias corrections of each row's most advanced step count t:

- eps_dominated_frac: fraction of param coordinates where eps > sqrt(v_hat),
  v_hat = v / (1 - beta2^t) (v_max with amsgrad): there Adam is plain momentum SGD with
  step lr / eps, not a normalized step; near 1 means eps is too large for the gradient
  scale (or beta2 so small that v collapses between spikes).
- update_rms_ratio: RMS(u) / RMS(p) with u = lr / (1 - beta1^t) * m / (sqrt(v_hat) + eps)
  the last Adam update without weight decay: typically 1e-4..1e-2; >0.1 means steps
  as large as the weights.
- nonfinite: count of NaN/inf entries in params, `exp_avg` and `exp_avg_sq`.

NAdam uses Adam's formulas above on its own moments (its actual step mixes g and m, but
m_hat / (sqrt(v_hat) + eps) is the scale it normalizes by). AdaMax normalizes by
u = exp_inf = max(beta2 * u, |g| + eps) instead: eps-dominated where u < 2 eps (the
gradient part |g| is below eps), u_t = lr / (1 - beta1^t) * m / u, and the non-finite
count covers `exp_inf`.

Cost: one read of p, m, v (12 B per float32 element) plus (N,) float32 temporaries per
row; one host sync for the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._flat import FlatParams
from ._hparams import AdamHyperparams, TrialHyperparams

KEYS = ("eps_dominated_frac", "update_rms_ratio", "nonfinite")


def _row_sums(
    flat: FlatParams, row: tuple[int, ...], step: Tensor, hp: AdamHyperparams, algorithm: str = "adam"
) -> Tensor:
    """(4,) float64 on the device: [#eps-dominated coords, sum u^2, sum p^2, #non-finite]
    of one row of `flat`'s buffers (`row` = (k,) for trial k, () for one trial).

    Padding elements have v = 0 (u = 0 for AdaMax), so they count as eps-dominated iff
    eps > 0: removed.
    """
    param = flat.param[row]  # (N,)
    exp_avg = flat.state_buffer("exp_avg")[row]
    t = step.double().clamp(min=1)
    bias_correction1 = 1 - hp.beta1**t
    padding = _padding(flat) if hp.eps > 0 else 0
    if algorithm == "adamax":
        second = flat.state_buffer("exp_inf")[row]
        eps_dominated = (second < 2 * hp.eps).sum() - padding
        update = exp_avg / second.clamp(min=torch.finfo(second.dtype).tiny)
    else:
        second = flat.state_buffer("exp_avg_sq")[row]
        if hp.amsgrad:
            second = flat.state_buffer("max_exp_avg_sq")[row]
        bias_correction2_sqrt = (1 - hp.beta2**t).sqrt()
        v_hat_sqrt = second.sqrt() / bias_correction2_sqrt.float()  # (N,)
        eps_dominated = (v_hat_sqrt < hp.eps).sum() - padding
        update = exp_avg / (v_hat_sqrt + hp.eps)
    update = update * (hp.lr / bias_correction1).float()  # (N,)
    moment2 = flat.state_buffer("exp_inf" if algorithm == "adamax" else "exp_avg_sq")[row]
    nonfinite = sum((~torch.isfinite(x)).sum() for x in (param, exp_avg, moment2))
    return torch.stack(
        [eps_dominated.double(), update.double().square().sum(), param.double().square().sum(), nonfinite.double()]
    )


def _coords(flat: FlatParams) -> int:
    return sum(shape.numel() for shape in flat.layout.shapes)


def _padding(flat: FlatParams) -> int:
    return flat.layout.numel - _coords(flat)


def _ratios(sums: Tensor, coords: int) -> Tensor:
    """(..., 4) sums -> (..., 3) [eps_dominated_frac, update_rms_ratio, nonfinite]."""
    frac = sums[..., 0] / coords
    ratio = (sums[..., 1] / sums[..., 2]).sqrt()
    return torch.stack([frac, ratio, sums[..., 3]], dim=-1)


def packed_diagnostics(flat: FlatParams, hp: TrialHyperparams, algorithm: str = "adam") -> dict[str, list[float]]:
    """Per-trial diagnostics of multi-trial buffers: each key maps to K floats.

    A trial that has never stepped (or was reset) gets NaN for the two ratios.
    """
    trials = len(hp.active)
    if "exp_avg" not in flat.state_names:
        return {KEYS[0]: [math.nan] * trials, KEYS[1]: [math.nan] * trials, KEYS[2]: [0.0] * trials}
    t = flat.steps.amax(dim=1)  # (K,) most advanced step count per trial
    sums = torch.stack([_row_sums(flat, (k,), t[k], hp.trial(k), algorithm) for k in range(trials)])
    out = _ratios(sums, _coords(flat))  # (K, 3)
    out[:, :2].masked_fill_((t == 0)[:, None], math.nan)
    return dict(zip(KEYS, out.t().tolist()))  # one sync


def flat_diagnostics(flats: Sequence[tuple[FlatParams, AdamHyperparams]], algorithm: str = "adam") -> dict[str, float]:
    """Diagnostics over all params of `FusedAdam` (all groups and buffers together).

    Buffers that have not stepped yet are left out; with none, the ratios are NaN.
    """
    stepped = [(flat, hp) for flat, hp in flats if "exp_avg" in flat.state_names]
    if not stepped:
        return {KEYS[0]: math.nan, KEYS[1]: math.nan, KEYS[2]: 0.0}
    sums = sum(  # (4,) on the CPU: buffers may live on different devices
        _row_sums(flat, (), flat.steps.amax(), hp, algorithm).cpu() for flat, hp in stepped
    )
    out = _ratios(sums, sum(_coords(flat) for flat, _ in stepped))
    return dict(zip(KEYS, out.tolist()))
