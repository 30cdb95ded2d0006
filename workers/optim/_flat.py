"""Flat-buffer layer: the params of one (device, dtype) packed into one 1-D buffer.

`FlatLayout` says where each tensor lives in a flat buffer (a pure value: shapes and
offsets); `FlatParams` owns the buffers for one list of params: the param buffer (the
params' `.data` become views into it), the grad buffer (views assigned as `.grad`, so
`backward()` accumulates straight into it), lazily allocated optimizer-state buffers
(e.g. `exp_avg`), a float32 step counter per param, and named per-param scalar states
(e.g. NAdam's `mu_product`: float32 on the device, with an exact host mirror). An update kernel then runs once
over a whole buffer, or over a few `spans` (runs of params) when some params must be
skipped this step.

Multi-trial (`trials=K`, used by `PackedAdam`): every param has a leading trial dim
K; the buffers are (K, N), row k holding trial k's copy of every tensor, and each
param's view `layout.views(buf)[i]` is (K, *shape) (rows strided by N, so the view is
not contiguous when K > 1). Step counts are then (K, n): one per (trial, param).

Mixed precision: float16/bfloat16 params get float32 state buffers (`state_dtype`);
half-precision Adam moments lose the small second-moment increments and degrade training.

- A Triton kernel takes the flat buffers' pointers and N (plus per-span offsets from
  `layout.offsets` when only some spans are stepped); every segment starts at a
  multiple of `align` elements, so vectorized loads of a segment start aligned.
Padding elements between segments are zero in every buffer and stay zero under Adam.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

_ALIGN = 16  # elements; 64 B in float32, one cache line


@dataclass(frozen=True)
class FlatLayout:
    """Where each tensor of a list lives in a flat buffer.

    Attributes:
        shapes: shape of tensor i (may be 0-d or have zero elements).
        offsets: n + 1 element offsets; tensor i occupies
            [offsets[i], offsets[i] + numel_i), and offsets[n] is the buffer length
            (elements, padding included).
    """

    shapes: tuple[torch.Size, ...]
    offsets: tuple[int, ...]

    @classmethod
    def for_shapes(cls, shapes: Iterable[Sequence[int]], *, align: int = _ALIGN) -> FlatLayout:
        """Pack `shapes` in order, each segment starting at a multiple of `align` elements.

        Raises:
            ValueError: if align < 1.
        """
        if align < 1:
            raise ValueError(f"align >= 1 must hold, but got align={align}")
        sizes = tuple(torch.Size(s) for s in shapes)
        offsets, end = [0], 0
        for shape in sizes:
            end += -(-shape.numel() // align) * align  # round numel up to align
            offsets.append(end)
        return cls(shapes=sizes, offsets=tuple(offsets))

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def numel(self) -> int:
        """Length of a flat buffer with this layout, in elements (padding included)."""
        return self.offsets[-1]

    def views(self, flat: Tensor) -> list[Tensor]:
        """Per-tensor views of `flat`, shape (..., numel) -> [(..., *shapes[i])].

        Leading dims (e.g. K trials) are kept; the last dim must be contiguous.
        """
        lead = flat.shape[:-1]
        return [
            flat[..., start : start + shape.numel()].view((*lead, *shape))
            for start, shape in zip(self.offsets, self.shapes)
        ]

    def span(self, flat: Tensor, start: int, stop: int) -> Tensor:
        """The part of `flat` (..., numel) holding tensors start..stop-1 (and their padding)."""
        return flat[..., self.offsets[start] : self.offsets[stop]]


class FlatParams:
    """Flat param, grad, state and step buffers for one list of same-device, same-dtype params.

    Buffers are (N,), or (K, N) with `trials=K` (see the module docstring); `lead` is
    () or (K,). Step counts are float32 on the params' device, (n,) or (K, n), with a
    host mirror `step_counts` (a float per param, or a K-tuple per param) so that
    choosing spans never syncs.

    On construction each param's values are copied into the flat param buffer and
    `p.data` is rebound to its (contiguous) view: non-contiguous params become
    contiguous, and other tensors that aliased a param's old storage no longer see it.
    An existing `p.grad` is copied into the flat grad buffer and replaced by its view.

    Args:
        params: real floating-point tensors, all on one device with one dtype; with
            `trials=K`, each of shape (K, *shape).
        align: segment alignment in elements.
        trials: K for multi-trial buffers, None for one trial.

    Raises:
        ValueError: if `params` is empty, mixes devices or dtypes, or (with `trials`)
            a param's leading dim is not K.
        TypeError: if a param is not a real floating-point tensor.
    """

    def __init__(self, params: Sequence[Tensor], *, align: int = _ALIGN, trials: int | None = None) -> None:
        if not params:
            raise ValueError("FlatParams needs at least one param, but got none")
        first = params[0]
        for i, p in enumerate(params):
            if not p.is_floating_point():
                raise TypeError(
                    f"params must be real floating-point tensors, but param {i} has "
                    f"dtype {p.dtype}; use torch.optim.Adam for complex or integer params"
                )
            if (p.device, p.dtype) != (first.device, first.dtype):
                raise ValueError(
                    "all params of one FlatParams must share device and dtype, but got "
                    f"{first.device}/{first.dtype} and {p.device}/{p.dtype} (param {i})"
                )
            if trials is not None and (p.dim() == 0 or p.shape[0] != trials):
                raise ValueError(
                    f"every param must have a leading trial dim of size {trials}, but "
                    f"param {i} has shape {tuple(p.shape)}; stack the K trials' "
                    "params with torch.func.stack_module_state"
                )
        self.params: tuple[Tensor, ...] = tuple(params)
        self.lead: tuple[int, ...] = () if trials is None else (trials,)
        lead = len(self.lead)
        self.layout = FlatLayout.for_shapes([p.shape[lead:] for p in params], align=align)
        self.device, self.dtype = first.device, first.dtype
        half = self.dtype in (torch.float16, torch.bfloat16)
        self.state_dtype = torch.float32 if half else self.dtype

        self.param = torch.zeros((*self.lead, self.layout.numel), dtype=self.dtype, device=self.device)
        self.param_views = self.layout.views(self.param)
        for p, view in zip(self.params, self.param_views):
            view.copy_(p.detach())  # copy all before rebinding any: params may alias
        for p, view in zip(self.params, self.param_views):
            p.data = view

        self.grad = torch.zeros_like(self.param)
        self.grad_views = self.layout.views(self.grad)
        for p, view in zip(self.params, self.grad_views):
            if p.grad is not None:
                view.copy_(p.grad)
                p.grad = view

        n = len(self.params)
        self.steps = torch.zeros(  # (n,) or (K, n)
            (*self.lead, n), dtype=torch.float32, device=self.device
        )
        self.step_views = [self.steps[..., i] for i in range(n)]  # 0-d, or (K,)
        zero: float | tuple[float, ...] = 0.0 if trials is None else (0.0,) * trials
        self.step_counts: list = [zero] * n  # host mirror of `steps`: no syncs
        self._state: dict[str, tuple[Tensor, list[Tensor]]] = {}
        # name -> (buffer (*lead, n) float32, per-param views, host mirror, initial value)
        self._scalars: dict[str, tuple[Tensor, list[Tensor], list, float]] = {}

    def __len__(self) -> int:
        return len(self.params)

    # ---- optimizer state ---------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the state buffers allocated so far."""
        return tuple(self._state)

    def state_buffer(self, name: str) -> Tensor:
        """Flat state buffer `name` (*lead, numel) of `state_dtype`, zeros on first request."""
        return self._state_entry(name)[0]

    def state_views(self, name: str) -> list[Tensor]:
        """Per-param views of state buffer `name`, shaped like the params."""
        return self._state_entry(name)[1]

    def _state_entry(self, name: str) -> tuple[Tensor, list[Tensor]]:
        if name not in self._state:
            buf = torch.zeros_like(self.param, dtype=self.state_dtype)
            self._state[name] = (buf, self.layout.views(buf))
        return self._state[name]

    # ---- scalar states (one float32 per param, or per (trial, param)) ------------------
    def add_scalar_state(self, name: str, init: float) -> None:
        """Allocate scalar state `name`, every entry `init` (its never-stepped value);
        a no-op if it exists. Shaped like `steps`, float32 on the params' device."""
        if name in self._scalars:
            return
        buf = torch.full_like(self.steps, init)
        n = len(self.params)
        mirror: list = [init if not self.lead else (init,) * self.lead[0]] * n
        self._scalars[name] = (buf, [buf[..., i] for i in range(n)], mirror, init)

    @property
    def scalar_names(self) -> tuple[str, ...]:
        """Names of the scalar states added so far."""
        return tuple(self._scalars)

    def scalar_views(self, name: str) -> list[Tensor]:
        """Per-param views (0-d, or (K,)) of scalar state `name`."""
        return self._scalars[name][1]

    def scalar_values(self, name: str) -> list:
        """Host mirror of scalar state `name`: a float (or K-tuple) per param, exactly the
        float32 values on the device, read without a sync."""
        return self._scalars[name][2]

    def set_scalar(self, name: str, start: int, stop: int, value: float | Sequence[float]) -> None:
        """Set scalar state `name` of params start..stop-1 to `value` (a float, or K floats
        for multi-trial buffers), rounded to float32 on the device and in the mirror."""
        buf, _, mirror, _ = self._scalars[name]
        if self.lead:
            values = tuple(_f32(v) for v in value)  # type: ignore[union-attr]
            column = torch.tensor(values, dtype=torch.float32)[:, None]
            buf[:, start:stop].copy_(column.expand(-1, stop - start))
        else:
            values = _f32(value)  # type: ignore[arg-type, assignment]
            buf[start:stop].fill_(values)
        for i in range(start, stop):
            mirror[i] = values

    def set_step(self, i: int, value: float | Sequence[float]) -> None:
        """Set param i's step count(s) (e.g. when loading a checkpoint); one host write.

        `value` is a float, or K floats (one per trial) for multi-trial buffers.
        """
        if self.lead:
            counts = tuple(float(v) for v in value)  # type: ignore[union-attr]
            self.steps[:, i] = torch.tensor(counts, dtype=torch.float32)
            self.step_counts[i] = counts
        else:
            self.steps[i] = value
            self.step_counts[i] = float(value)  # type: ignore[arg-type]

    def reset(self, i: int) -> None:
        """Zero param i's state segments and step count (fresh, never-stepped state)."""
        for _, views in self._state.values():
            views[i].zero_()
        for name, (_, _, _, init) in self._scalars.items():
            self.set_scalar(name, i, i + 1, init if not self.lead else (init,) * self.lead[0])
        self.set_step(i, 0.0 if not self.lead else (0.0,) * self.lead[0])

    def reset_row(self, k: int) -> None:
        """Multi-trial only: zero trial k's state rows and step counts (a fresh trial)."""
        for buf, _ in self._state.values():
            buf[k].zero_()
        self.steps[k].zero_()
        self.step_counts = [(*c[:k], 0.0, *c[k + 1 :]) for c in self.step_counts]
        for buf, _, mirror, init in self._scalars.values():
            buf[k].fill_(init)
            mirror[:] = [(*c[:k], init, *c[k + 1 :]) for c in mirror]

    # ---- gradients ---------------------------------------------------------------
    def collect_grads(self) -> list[bool]:
        """Make every non-None `.grad` the flat buffer's view; say which params have one.

        A `.grad` that is not our view (assigned by the user, or allocated by autograd
        after `.grad` was set to None; possibly non-contiguous) is copied into the flat
        grad buffer and replaced by the view. Costs 2 * itemsize bytes per copied element.

        Returns:
            has_grad: has_grad[i] is False iff params[i].grad is None.

        Raises:
            RuntimeError: on a sparse gradient.
        """
        has_grad = [True] * len(self.params)
        for i, (p, view) in enumerate(zip(self.params, self.grad_views)):
            grad = p.grad
            if grad is view:
                continue
            if grad is None:
                has_grad[i] = False
                continue
            if grad.is_sparse:
                raise RuntimeError("Adam does not support sparse gradients, please consider SparseAdam instead")
            view.copy_(grad)
            p.grad = view
        return has_grad

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the flat grad buffer and point every trainable param's `.grad` at its view.

        Params with `requires_grad=True` always get a zeroed view, whatever
        `set_to_none` says, so the next `backward()` accumulates in place. Frozen params
        (`requires_grad=False`) follow torch: `.grad` becomes None if `set_to_none`,
        otherwise an existing grad becomes a zeroed view.
        """
        self.grad.zero_()
        for p, view in zip(self.params, self.grad_views):
            if p.requires_grad or (not set_to_none and p.grad is not None):
                if p.grad is not view:
                    p.grad = view
            elif set_to_none:
                p.grad = None

    # ---- stepping ----------------------------------------------------------------
    def spans(self, active: Sequence[bool]) -> list[tuple[int, int]]:
        """Maximal runs [start, stop) of consecutive active params with equal step counts
        (and equal values of every scalar state, e.g. NAdam's `mu_product`).

        All params active with one step count (the common case) gives [(0, len(self))]:
        one update over the whole buffer. Each run can take one kernel call with one
        step count, because inactive params are never inside a run.
        """
        counts = self.step_counts
        if self._scalars:  # equal keys <=> same step count and same scalar states
            counts = list(zip(counts, *(m for _, _, m, _ in self._scalars.values())))
        runs: list[tuple[int, int]] = []
        start = -1
        for i, on in enumerate(active):
            if start >= 0 and (not on or counts[i] != counts[start]):
                runs.append((start, i))
                start = -1
            if on and start < 0:
                start = i
        if start >= 0:
            runs.append((start, len(active)))
        return runs

    def advance(
        self,
        spans: Sequence[tuple[int, int]],
        rows: tuple[Tensor, tuple[bool, ...]] | None = None,
    ) -> list[Tensor]:
        """Add 1 to the step count of every param in `spans` (of the active rows).

        Args:
            spans: runs [start, stop) from `spans()`.
            rows: multi-trial only: (float 0/1 mask on the device (K,), the same mask
                on the host); only the marked trials' counts advance.

        Returns:
            Per span, its first param's step counts (now t >= 1 where advanced): a 0-d
            float32 tensor, or a (K,) view with multi-trial buffers.
        """
        for start, stop in spans:
            if rows is None:
                self.steps[start:stop].add_(1)
                for i in range(start, stop):
                    self.step_counts[i] += 1.0
            else:
                mask, host = rows
                self.steps[:, start:stop].add_(mask[:, None])  # (K, stop - start)
                for i in range(start, stop):
                    self.step_counts[i] = tuple(c + on for c, on in zip(self.step_counts[i], host))
        return [self.step_views[start] for start, _ in spans]


def _f32(x: float) -> float:
    """`x` rounded to float32 (round to nearest even), as a Python float."""
    return struct.unpack("f", struct.pack("f", float(x)))[0]
