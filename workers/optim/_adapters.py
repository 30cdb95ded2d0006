"""Adapters that build more update functions from a single-trial `AdamUpdateFn`
(or a NAdam / AdaMax update of the same shape, see `_algorithms`).

- `fp32_math(update)`: half-precision params with float32 states, for backends whose
  kernels need one dtype (torch's fused kernel, the reference).
- `by_trial_groups(update)`: the K-trial update (`PackedUpdateFn`) as one call of a
  single-trial update per group of active trials sharing hyperparameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from torch import Tensor

from ._hparams import AdamHyperparams, TrialHyperparams


class AdamUpdateFn(Protocol):
    """In-place Adam step over matching lists of segments (see `adam_reference`)."""

    def __call__(
        self,
        params: Sequence[Tensor],
        grads: Sequence[Tensor],
        exp_avgs: Sequence[Tensor],
        exp_avg_sqs: Sequence[Tensor],
        max_exp_avg_sqs: Sequence[Tensor],
        steps: Sequence[Tensor],
        hp: AdamHyperparams,
    ) -> None: ...


class PackedUpdateFn(Protocol):
    """In-place Adam step of K trials over matching lists of (K, L) segments.

    Row k of every segment is trial k's; `steps[j]` is the (K,) float32 step counts of
    segment j (already incremented for the active trials). Inactive trials' rows are
    neither read for the update nor written.
    """

    def __call__(
        self,
        params: Sequence[Tensor],
        grads: Sequence[Tensor],
        exp_avgs: Sequence[Tensor],
        exp_avg_sqs: Sequence[Tensor],
        max_exp_avg_sqs: Sequence[Tensor],
        steps: Sequence[Tensor],
        hp: TrialHyperparams,
    ) -> None: ...


def fp32_math(update: AdamUpdateFn) -> AdamUpdateFn:
    """`update`, but segments whose param dtype differs from the state dtype (fp16 or
    bf16 params, fp32 `exp_avg`) are updated on fp32 copies of param and grad, and the
    param is rounded back (round to nearest even), as a mixed-precision kernel does.

    Works for every algorithm's update (``update(params, grads, *states, steps, hp)``,
    see `_algorithms`; the first state list is `exp_avgs`).

    Extra bytes per such element (s = param itemsize): read p, g (2 s), write and read
    the fp32 copies (16 B), write p (s): 3 s + 16 B on top of the 28 B fp32 update.
    """

    def update_fp32(params, grads, exp_avgs, *rest):
        if not params or params[0].dtype == exp_avgs[0].dtype:
            update(params, grads, exp_avgs, *rest)
            return
        params32 = [p.float() for p in params]
        grads32 = [g.float() for g in grads]
        update(params32, grads32, exp_avgs, *rest)
        for p, p32 in zip(params, params32):
            p.copy_(p32)

    return update_fp32


def by_trial_groups(update: AdamUpdateFn) -> PackedUpdateFn:
    """K-trial update from a single-trial one: per group of active trials with equal
    hyperparameters (`TrialHyperparams.groups`), one `update` call over the rows of
    every segment of those trials (a list of 1-D row views, 0-d step views; the same for
    every state list, e.g. NAdam's (K,) `mu_products`; an empty list stays empty).

    With K distinct configurations this is K calls per step, each over whole rows;
    with one shared configuration, one call.
    """

    def update_packed(*args):
        *segments, hp = args
        for trial_hp, rows in hp.groups():
            update(*(_rows(s, rows) for s in segments), trial_hp)

    return update_packed


def _rows(segments: Sequence[Tensor], rows: Sequence[int]) -> list[Tensor]:
    """Row k of every segment, for k in `rows` (trial-major order)."""
    return [segment[k] for k in rows for segment in segments]
