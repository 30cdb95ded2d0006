"""Adam, NAdam and AdaMax as Triton kernels: one launch per flat buffer, one trial or K
trials at once.

Three parts (the Triton tutorials' style):
- kernel: `_adam_kernel`, masked, 2-D grid (trial x program): program (k, b) reads
  trial k's hyperparameters from a (7, K) float64 device table and its step count (and
  for NAdam its ``mu_product``) from device tensors and updates blocks b, b + P, ... of
  row k (`LaunchConfig`: one program per block up to CUDA's 65,535; 1024 elements x 8 warps,
  measured fastest on an H200 by bench/triton_tune.py): the
  family's shared gradient sign, weight decay and first moment once, then each algorithm's
  second moment and step under a constexpr ALGORITHM branch (helpers `_bias_correction`,
  `_second_moment`, `_nadam_mu`). A single trial is the case K = 1.
- launchers: `adam_triton` / `adam_packed_triton`, `nadam_triton` /
  `nadam_packed_triton`, `adamax_triton` / `adamax_packed_triton` check device, dtypes,
  shapes and contiguity and build the grid (update signatures of `_algorithms`).
- plain-torch references: `_reference.py` and, for K trials,
  `by_trial_groups(fp32_math(...))`; tests compare the kernels with both.

Numerics follow `_single_tensor_adam` in torch/optim/adam.py (torch 2.13; NAdam and
AdaMax: `_single_tensor_nadam` / `_single_tensor_adamax`, NAdam's mu_t computed as
exp(t psi log 0.96) in float64, within an ulp of Python's pow): the step
count is read on the device (no host sync), bias corrections 1 - beta^t are computed
in float64 per program, scalars are rounded to the state dtype where ATen would round a
Python scalar, and the fused multiply-adds are those of ATen's vectorized CPU kernels
(add with alpha, lerp's two branches, addcmul: explicit `tl.fma`); sqrt and division
are IEEE round-to-nearest. On these inputs the result is bitwise that of
`adam_reference` on CPU. fp16/bf16 params are computed in float32 with float32 states;
float64 params in float64.

Bytes moved per element (s = param itemsize, r = state itemsize): read p, g, m, v;
write p, m, v: 3 s + 4 r (28 B in float32, 20 B for bf16 params); amsgrad + 2 r.

Importing this module needs triton (the optional extra ``.[triton]``). On CPU tensors
the kernels run only under ``TRITON_INTERPRET=1`` (set before this module is imported),
which the tests use to check the arithmetic without a GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._hparams import AdamHyperparams, TrialHyperparams

# The kernels' constexpr values, named for `if ALGORITHM == _NADAM:` in a kernel (a kernel reads
# only constexpr globals); the launch passes them as plain ints.
_ADAM, _NADAM, _ADAMAX = tl.constexpr(0), tl.constexpr(1), tl.constexpr(2)  # ALGORITHM
_TABLE_ROWS = 7  # lr, beta1, beta2, eps, weight_decay, active, momentum_decay


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """How `_adam_kernel` is launched: `block_size` elements per block (a power of two),
    `num_warps` warps per program, and programs per row: one per block, but at most
    `max_programs` (default CUDA's limit on a grid's second dimension; a benchmark sets fewer
    for a persistent grid); a row with more blocks than programs has each program loop over
    several. Default: measured fastest on an H200 (bench/triton_tune.py)."""

    block_size: int = 1024
    num_warps: int = 8
    max_programs: int = 65535


LAUNCH = LaunchConfig()
"""The launch every update uses (`launch_config` swaps it for a benchmark)."""
_NO_DECAY, _L2, _DECOUPLED = tl.constexpr(0), tl.constexpr(1), tl.constexpr(2)  # WEIGHT_DECAY
_PARAM_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


@triton.jit
def _sqrt(x):
    """IEEE round-to-nearest sqrt (`tl.sqrt` is approximate in float32 only)."""
    if x.dtype == tl.float64:
        return tl.sqrt(x)
    else:
        return tl.sqrt_rn(x)


@triton.jit
def _div(x, y):
    """IEEE round-to-nearest division (`/` is approximate in float32 only)."""
    if x.dtype == tl.float64:
        return x / y
    else:
        return tl.div_rn(x, y)


@triton.jit
def _round_to(x, ptr):
    """`x` rounded to the element type of `ptr`, to nearest even (as torch's `.to`).

    bfloat16 is rounded with integer ops: Triton's interpreter truncates fp32 ->
    bf16 casts, which biases small Adam updates toward zero; on a GPU this compiles to
    the same result as the cast.
    """
    if ptr.dtype.element_ty == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        rounded = bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)
        return tl.where(x != x, x.to(tl.bfloat16), rounded)  # NaN stays NaN
    else:
        return x.to(ptr.dtype.element_ty)


@triton.jit
def _bias_correction(beta, step):
    """1 - beta^t in float64, as 1 - exp(t * log(beta)); beta may be 0."""
    return 1.0 - tl.exp(step * tl.log(tl.maximum(beta, 1e-300)))


@triton.jit
def _nadam_mu(step, beta1, momentum_decay):
    """NAdam's mu_t = beta1 * (1 - 0.5 * 0.96^(t * psi)) in float64: `_algorithms.nadam_mu`
    on the device, 0.96^x as exp(x * log(0.96)) (within an ulp of Python's pow)."""
    log_096 = -0.040821994520255166  # log(0.96)
    return beta1 * (1.0 - 0.5 * tl.exp(step * momentum_decay * log_096))


@triton.jit
def _second_moment(v, g, beta2):
    """exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2), in v's dtype."""
    dtype = v.dtype
    return tl.fma((1.0 - beta2).to(dtype) * g, g, v * beta2.to(dtype))


@triton.jit
def _adam_kernel(
    param_ptr,
    grad_ptr,
    exp_avg_ptr,
    exp_avg_sq_ptr,
    max_exp_avg_sq_ptr,
    step_ptr,
    mu_ptr,
    table_ptr,
    n_elements,
    row_stride,
    step_stride,
    mu_stride,
    n_trials,
    WEIGHT_DECAY: tl.constexpr,
    AMSGRAD: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    ALGORITHM: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
):
    """Program (trial, b) of a (K, P) grid: one Adam / NAdam / AdaMax update (ALGORITHM) on
    blocks b, b + P, b + 2P, ... of row `trial` (BLOCK_SIZE elements each; P is the
    launch's programs per row, at most the row's block count): the ops of `adam_reference`, `nadam_reference`,
    `adamax_reference`, the gradient's sign, weight decay and first moment shared, then each
    algorithm's second moment and step.

    Rows start every `row_stride` elements; trial k's step count is at
    step_ptr + k * step_stride (NAdam: its mu_product, already times mu_t, at
    mu_ptr + k * mu_stride), its hyperparameters in column k of the table. exp_avg_sq_ptr is
    AdaMax's exp_inf. Blocks are computed in the state dtype (float32, or float64 for float64
    params), scalars in float64, rounded to the state dtype where ATen rounds a Python scalar.
    """
    trial = tl.program_id(axis=0)
    first_block = tl.program_id(axis=1)
    # table (7, K) float64: lr, beta1, beta2, eps, weight_decay, active, momentum_decay
    lr = tl.load(table_ptr + trial)
    beta1 = tl.load(table_ptr + n_trials + trial)
    beta2 = tl.load(table_ptr + 2 * n_trials + trial)
    eps = tl.load(table_ptr + 3 * n_trials + trial)
    weight_decay = tl.load(table_ptr + 4 * n_trials + trial)
    active = tl.load(table_ptr + 5 * n_trials + trial)
    # a frozen trial's step may be 0: clamp so no lane computes 0/0 (none is stored)
    step = tl.maximum(tl.load(step_ptr + trial * step_stride).to(tl.float64), 1.0)
    dtype = exp_avg_ptr.dtype.element_ty  # compute in the state dtype
    # this trial's scalars, once per program (float64, rounded to the state dtype as ATen does)
    weight = (1.0 - beta1).to(dtype)  # exp_avg.lerp_(g, 1 - beta1)
    if ALGORITHM == _ADAMAX:
        step_size = (lr / _bias_correction(beta1, step)).to(dtype)
    elif ALGORITHM == _NADAM:
        momentum_decay = tl.load(table_ptr + 6 * n_trials + trial)
        mu_product = tl.load(mu_ptr + trial * mu_stride).to(tl.float64)
        bias_correction2 = _bias_correction(beta2, step).to(dtype)
        mu = _nadam_mu(step, beta1, momentum_decay)
        mu_next = _nadam_mu(step + 1.0, beta1, momentum_decay)
        # 1 - mu_product > 0 once stepped; the max only spares a frozen trial's lanes a 0 / 0
        step_size_grad = (-lr * (1.0 - mu) / tl.maximum(1.0 - mu_product, 1e-300)).to(dtype)
        step_size_exp_avg = ((-lr * mu_next) / (1.0 - mu_product * mu_next)).to(dtype)
    else:
        bias_correction2_sqrt = tl.sqrt(_bias_correction(beta2, step)).to(dtype)
        step_size = (lr / _bias_correction(beta1, step)).to(dtype)
    row = trial.to(tl.int64) * row_stride  # first element of this trial's row
    # blocks first_block, first_block + programs, ... of the row; none for a frozen trial
    n_blocks = tl.where(active != 0.0, tl.cdiv(n_elements, BLOCK_SIZE), 0)
    for block in range(first_block, n_blocks, tl.num_programs(axis=1)):
        offsets = block * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        p = tl.load(param_ptr + row + offsets, mask=mask).to(dtype)
        g = tl.load(grad_ptr + row + offsets, mask=mask).to(dtype)
        m = tl.load(exp_avg_ptr + row + offsets, mask=mask)
        v = tl.load(exp_avg_sq_ptr + row + offsets, mask=mask)  # AdaMax: exp_inf
        if MAXIMIZE:
            g = -g
        if WEIGHT_DECAY == _DECOUPLED:  # AdamW / NAdamW: p * (1 - lr * lambda)
            p = p * (1.0 - lr * weight_decay).to(dtype)
        if WEIGHT_DECAY == _L2:  # grad.add(param, alpha=lambda)
            g = tl.fma(weight_decay.to(dtype), p, g)
        # exp_avg.lerp_(g, weight): ATen's two branches for weights below/above 0.5
        if weight < 0.5:
            m = tl.fma(weight, g - m, m)
        else:
            m = tl.fma(weight - 1.0, g - m, g)  # weight - 1 is exact here
        if ALGORITHM == _ADAMAX:
            # exp_inf = torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps)): NaN propagates
            v = tl.maximum(v * beta2.to(dtype), tl.abs(g) + eps.to(dtype), propagate_nan=tl.PropagateNan.ALL)
            p = p - _div(step_size * m, v)  # param.addcdiv_(m, exp_inf, value=-clr)
        elif ALGORITHM == _NADAM:
            v = _second_moment(v, g, beta2)
            denom = _sqrt(_div(v, bias_correction2)) + eps.to(dtype)
            p = p + _div(step_size_grad * g, denom)  # param.addcdiv_(g, denom, value=...)
            p = p + _div(step_size_exp_avg * m, denom)  # param.addcdiv_(m, denom, value=...)
        else:
            v = _second_moment(v, g, beta2)
            second_moment = v
            if AMSGRAD:
                v_max = tl.maximum(tl.load(max_exp_avg_sq_ptr + row + offsets, mask=mask), v)
                second_moment = v_max
            denom = _div(_sqrt(second_moment), bias_correction2_sqrt) + eps.to(dtype)
            p = p - _div(step_size * m, denom)  # param.addcdiv_(m, denom, value=-step_size)
        tl.store(param_ptr + row + offsets, _round_to(p, param_ptr), mask=mask)
        tl.store(exp_avg_ptr + row + offsets, m, mask=mask)
        tl.store(exp_avg_sq_ptr + row + offsets, v, mask=mask)
        if AMSGRAD:
            tl.store(max_exp_avg_sq_ptr + row + offsets, v_max, mask=mask)  # Adam only


def _decay_mode(decays: bool, decoupled: bool) -> int:
    """The kernels' WEIGHT_DECAY value."""
    if not decays:
        return int(_NO_DECAY)
    return int(_DECOUPLED if decoupled else _L2)


def _check(params, grads, states, steps, scalars=()) -> None:
    """Raises ValueError unless the segments fit the kernels (see the launchers).

    `states`: the tensor-state lists (shaped like the params); `scalars`: lists of
    per-segment float32 scalars shaped like `steps` (NAdam's mu_products).
    """
    if any(len(t) != len(params) for t in (grads, *states, steps, *scalars)):
        raise ValueError("params, grads, states and steps must be lists of equal length")
    for j, p in enumerate(params):
        group = (p, grads[j], *(s[j] for s in states))
        if any(t.device != p.device or t.shape != p.shape for t in group):
            raise ValueError(
                f"segment {j}: param, grad and states must share device and shape, but "
                f"got {[(str(t.device), tuple(t.shape)) for t in group]}"
            )
        if any(t.stride() != p.stride() or t.stride(-1) != 1 for t in group):
            raise ValueError(
                f"segment {j}: every tensor must be contiguous along its last dim with "
                f"the param's strides, but got strides {[t.stride() for t in group]}"
            )
        state_dtype = torch.float64 if p.dtype == torch.float64 else torch.float32
        if p.dtype not in _PARAM_DTYPES or grads[j].dtype != p.dtype or any(s[j].dtype != state_dtype for s in states):
            raise ValueError(
                f"segment {j}: params must be one of {_PARAM_DTYPES} with grads of the "
                "same dtype and float32 states (float64 for float64 params), but got "
                f"param {p.dtype}, grad {grads[j].dtype}, states {[s[j].dtype for s in states]}"
            )
        if steps[j].dtype != torch.float32 or steps[j].device != p.device:
            raise ValueError(f"segment {j}: steps must be float32 on {p.device}")
        for s in scalars:
            if s[j].dtype != torch.float32 or s[j].device != p.device or s[j].shape != steps[j].shape:
                raise ValueError(f"segment {j}: mu_products must be float32 on {p.device}, shaped like steps")


def _launch(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    table,
    flags: AdamHyperparams | TrialHyperparams,
    decays: bool,
    algorithm: tl.constexpr = _ADAM,
    mu_products=(),
) -> None:
    """Launch `_adam_kernel` once per (K, L) segment, grid (K, P) with P programs per row
    (`LAUNCH`: one per block, at most `LaunchConfig.max_programs`)."""
    n_trials, config = table.shape[1], LAUNCH
    amsgrad = bool(flags.amsgrad and algorithm == _ADAM)
    decoupled = bool(flags.decoupled_weight_decay and algorithm != _ADAMAX)  # AdaMax: L2 only
    for j, param in enumerate(params):
        n = param.shape[1]
        if n == 0:
            continue
        grid = (n_trials, min(triton.cdiv(n, config.block_size), config.max_programs))
        mu = mu_products[j] if mu_products else steps[j]
        _adam_kernel[grid](
            param,
            grads[j],
            exp_avgs[j],
            exp_avg_sqs[j],
            max_exp_avg_sqs[j] if amsgrad else exp_avg_sqs[j],
            steps[j],
            mu,
            table,
            n,
            param.stride(0),
            steps[j].stride(0) if steps[j].dim() else 0,
            mu.stride(0) if mu.dim() else 0,
            n_trials,
            WEIGHT_DECAY=_decay_mode(decays, decoupled),
            AMSGRAD=amsgrad,
            MAXIMIZE=flags.maximize,
            ALGORITHM=int(algorithm),
            BLOCK_SIZE=config.block_size,
            num_warps=config.num_warps,
        )


@contextlib.contextmanager
def launch_config(config: LaunchConfig) -> Iterator[None]:
    """Within the block, every update launches with `config` (for benchmarks: bench/triton_tune.py)."""
    global LAUNCH
    saved, LAUNCH = LAUNCH, config
    try:
        yield
    finally:
        LAUNCH = saved


@functools.lru_cache(maxsize=64)
def _single_table(
    lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, momentum_decay: float, device: torch.device
) -> Tensor:
    """(7, 1) float64 table of one trial on `device`, built once per distinct value."""
    values = [[lr], [beta1], [beta2], [eps], [weight_decay], [1.0], [momentum_decay]]
    return torch.tensor(values, dtype=torch.float64).to(device)


def _table_for(hp: AdamHyperparams, device: torch.device) -> Tensor:
    return _single_table(float(hp.lr), hp.beta1, hp.beta2, hp.eps, hp.weight_decay, hp.momentum_decay, device)


def adam_triton(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    max_exp_avg_sqs: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """One Adam step in place, one launch per segment (the kernel with K = 1).

    Same contract and formulas as `adam_reference`. Segments: contiguous 1-D, params
    and grads float32/float16/bfloat16 with float32 states, or all float64; `steps`
    0-d float32 on the device. The hyperparameters go to the kernel as a (7, 1)
    float64 device tensor, cached per distinct value (a new lr, e.g. from a scheduler,
    costs one small host-to-device copy). A tensor `lr` is read with `float()`.

    Raises:
        ValueError: on mismatched lengths, devices, shapes, strides or dtypes.
    """
    states = (exp_avgs, exp_avg_sqs, max_exp_avg_sqs) if hp.amsgrad else (exp_avgs, exp_avg_sqs)
    _check(params, grads, states, steps)
    if not params:
        return
    table = _table_for(hp, params[0].device)
    rows = [[t[None] for t in ts] for ts in (params, grads, exp_avgs, exp_avg_sqs)]
    v_max = [t[None] for t in max_exp_avg_sqs] if hp.amsgrad else []
    _launch(*rows, v_max, steps, table, hp, hp.weight_decay != 0)


def adam_packed_triton(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    max_exp_avg_sqs: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: TrialHyperparams,
) -> None:
    """One Adam step of K trials in place, one launch per (K, L) segment.

    Grid (K, P) (see `_launch`); program (k, b) reads trial k's hyperparameters and
    active flag from `hp.table` and its step count from `steps[j][k]`, so nothing is
    synced to the host. Segments: (K, L) views with unit stride along L (rows may be
    strided, e.g. slices of a (K, N) buffer), dtypes as `adam_triton`.

    Raises:
        ValueError: on mismatched lengths, devices, shapes, strides or dtypes, or a
            table that is not (7, K) float64 on the params' device.
    """
    states = (exp_avgs, exp_avg_sqs, max_exp_avg_sqs) if hp.amsgrad else (exp_avgs, exp_avg_sqs)
    _check(params, grads, states, steps)
    if not params:
        return
    _check_packed(params, steps, hp)
    decays = any(wd != 0 for wd in hp.weight_decay)
    _launch(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, hp.table, hp, decays)


def _check_packed(params, steps, hp: TrialHyperparams) -> None:
    """Raises ValueError unless the table and the (K, L) segments fit `hp`'s K trials."""
    n_trials, table = len(hp.active), hp.table
    if (
        table.shape != (_TABLE_ROWS, n_trials)
        or table.dtype != torch.float64
        or not table.is_contiguous()
        or table.device != params[0].device
    ):
        raise ValueError(
            f"hp.table must be a contiguous ({_TABLE_ROWS}, {n_trials}) float64 tensor on "
            f"{params[0].device}, but got {tuple(table.shape)} {table.dtype} on "
            f"{table.device}"
        )
    for j, param in enumerate(params):
        if param.dim() != 2 or param.shape[0] != n_trials or steps[j].shape != (n_trials,):
            raise ValueError(
                f"segment {j}: params must be (K={n_trials}, L) and steps (K,), but got "
                f"{tuple(param.shape)} and {tuple(steps[j].shape)}"
            )


def nadam_triton(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    mu_products: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """One NAdam step in place, one launch per segment; contract as `nadam_reference`,
    segments and table as `adam_triton`; `mu_products` 0-d float32 on the device, read
    there (no sync).

    Raises:
        ValueError: on mismatched lengths, devices, shapes, strides or dtypes.
    """
    _check(params, grads, (exp_avgs, exp_avg_sqs), steps, (mu_products,))
    if not params:
        return
    table = _table_for(hp, params[0].device)
    rows = [[t[None] for t in ts] for ts in (params, grads, exp_avgs, exp_avg_sqs)]
    _launch(*rows, [], steps, table, hp, hp.weight_decay != 0, _NADAM, mu_products)


def nadam_packed_triton(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor],
    mu_products: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: TrialHyperparams,
) -> None:
    """One NAdam step of K trials in place, one launch per (K, L) segment; as
    `adam_packed_triton`, with `mu_products[j]` (K,) float32 on the device.

    Raises:
        ValueError: as `adam_packed_triton`.
    """
    _check(params, grads, (exp_avgs, exp_avg_sqs), steps, (mu_products,))
    if not params:
        return
    _check_packed(params, steps, hp)
    decays = any(wd != 0 for wd in hp.weight_decay)
    _launch(params, grads, exp_avgs, exp_avg_sqs, [], steps, hp.table, hp, decays, _NADAM, mu_products)


def adamax_triton(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_infs: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: AdamHyperparams,
) -> None:
    """One AdaMax step in place, one launch per segment; contract as `adamax_reference`,
    segments and table as `adam_triton`.

    Raises:
        ValueError: on mismatched lengths, devices, shapes, strides or dtypes.
    """
    _check(params, grads, (exp_avgs, exp_infs), steps)
    if not params:
        return
    table = _table_for(hp, params[0].device)
    rows = [[t[None] for t in ts] for ts in (params, grads, exp_avgs, exp_infs)]
    _launch(*rows, [], steps, table, hp, hp.weight_decay != 0, _ADAMAX)


def adamax_packed_triton(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    exp_avgs: Sequence[Tensor],
    exp_infs: Sequence[Tensor],
    steps: Sequence[Tensor],
    hp: TrialHyperparams,
) -> None:
    """One AdaMax step of K trials in place, one launch per (K, L) segment; as
    `adam_packed_triton`.

    Raises:
        ValueError: as `adam_packed_triton`.
    """
    _check(params, grads, (exp_avgs, exp_infs), steps)
    if not params:
        return
    _check_packed(params, steps, hp)
    decays = any(wd != 0 for wd in hp.weight_decay)
    _launch(params, grads, exp_avgs, exp_infs, [], steps, hp.table, hp, decays, _ADAMAX)
