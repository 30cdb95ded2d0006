"""`FusedAdam`: torch.optim.Adam semantics, one fused update per flat buffer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT

from ._adapters import AdamUpdateFn
from ._backends import BackendName, check_backend_name, resolve_backend
from ._diagnostics import flat_diagnostics
from ._flat import FlatParams
from ._hparams import AdamHyperparams, validate_adam_args

_MOMENTS = ("exp_avg", "exp_avg_sq")
_AMSGRAD = "max_exp_avg_sq"


class FusedAdam(Optimizer):
    r"""Adam / AdamW over flat buffers: one fused update per (param group, device, dtype).

    Same math, param-group keys and `state_dict` layout as `torch.optim.Adam` (torch
    2.13): a state dict saved by either loads into the other. Update at step t for
    each param p with gradient g (Kingma & Ba 2014, Alg. 1; torch/optim/adam.py)::

        g     <- -g                               if maximize
        g     <- g + lambda * p                   if lambda != 0 and not decoupled (L2)
        p     <- p * (1 - lr * lambda)            if lambda != 0 and decoupled (AdamW)
        m     <- beta1 * m + (1 - beta1) * g
        v     <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)                    if amsgrad (raw, not bias-corrected)
        p     <- p - lr / (1 - beta1^t) * m / (sqrt(v or v_max) / sqrt(1 - beta2^t) + eps)

    Memory layout: at construction each group's params are packed per (device, dtype)
    into one flat buffer and `p.data` becomes a contiguous view into it (a non-contiguous
    param becomes contiguous; tensors that aliased the old storage are detached from it).
    Grads, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` and the per-param `step`
    (float32, 0-d, on the param's device, as with `Adam(fused=True)`) are views into flat
    buffers too, so `optimizer.state[p]` looks exactly like torch's, except that
    float16/bfloat16 params keep float32 moments (half-precision moments silently
    degrade training; the update is computed in float32 and rounded to the param). Construction briefly
    holds the params twice (old storage + flat copy). `torch.save` of a single param
    saves its whole flat buffer (the storage is shared); `model.state_dict()` is fine.

    Bytes moved per element per step (s = itemsize; 4 for float32), default backend:
    7 s for the update (read p, g, m, v; write p, m, v), 9 s with amsgrad, plus 1 s for
    `zero_grad()`, plus 2 s for each element of a `.grad` that had to be copied in.

    Gradients:
        - `zero_grad()` zeroes the flat grad buffer and keeps (re-)assigning the views
          as `.grad` of every param with `requires_grad=True`, also for
          `set_to_none=True`, so `backward()` accumulates in place. Consequence: unlike
          torch, a param that gets no gradient from `backward()` is stepped with a zero
          gradient. To skip a param on a step, set `p.grad = None` explicitly; it is then
          skipped exactly as torch.optim.Adam skips it (no step count, no state change).
        - A `.grad` that is not the flat view (user-assigned, possibly non-contiguous,
          or allocated by autograd after `.grad` was None, e.g. after
          `model.zero_grad()`) is copied into the flat buffer before the update.
        - Fast path: all params of a buffer have grads and equal step counts -> one
          kernel call over the buffer; otherwise one call over runs of params.

    Args:
        params: iterable of params or named params, or of param-group dicts.
        lr: learning rate, float or 1-element tensor (default 1e-3).
        betas: EMA coefficients (beta1, beta2), both in [0, 1) (default (0.9, 0.999)).
        eps: added to the denominator, in gradient units (default 1e-8).
        weight_decay: lambda >= 0 (default 0).
        amsgrad: use AMSGrad (Reddi et al. 2018) (default False).
        maximize: maximize the objective (default False).
        decoupled_weight_decay: AdamW weight decay (Loshchilov & Hutter 2019)
            (default False).
        backend: update implementation: ``"auto"`` (`workers.optim.auto_backend`:
            torch's fused kernel on CPU, and on CUDA too until the Triton kernel is
            verified on a GPU), ``"triton"`` (our Triton kernel; CUDA, with the extra
            ``.[triton]``),
            ``"torch_fused"`` (torch's fused kernel; CPU, CUDA) or ``"reference"``
            (plain torch ops, any device); see `workers.optim.available_backends`.

    Raises:
        ValueError: invalid lr / eps / betas / weight_decay (torch's messages), an
            unknown or unavailable backend, a param listed twice, or an empty params list.
        TypeError: a param that is not a real floating-point tensor.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        backend: BackendName = "auto",
    ) -> None:
        validate_adam_args(lr, betas, eps, weight_decay)
        check_backend_name(backend)
        self._backend = backend
        # per param group: [(flat buffers of one device/dtype, its update function)]
        self._flats: list[list[tuple[FlatParams, AdamUpdateFn]]] = []
        defaults = {  # the keys and order of torch.optim.Adam's param groups
            "lr": lr,
            "betas": tuple(b.squeeze() if isinstance(b, Tensor) else b for b in betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": None,  # recorded for torch compatibility, ignored
            "capturable": False,  # ditto
            "differentiable": False,  # ditto
            "fused": None,  # ditto: a torch Adam loading this state picks its default
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    # ---- param groups ------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (its params are packed into new flat buffers).

        Raises:
            ValueError: if a param is listed twice in the group (torch only warns).
            TypeError: if a param is not a real floating-point tensor.
        """
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else params
        if not isinstance(params, set):  # torch raises its own TypeError for sets
            params = list(params)
            tensors = [p[1] if isinstance(p, tuple) else p for p in params]
            if len({id(p) for p in tensors}) != len(tensors):
                raise ValueError(
                    "each param may appear once in a FusedAdam param group, but a param "
                    "is listed twice; deduplicate the params (e.g. tied weights)"
                )
        param_group["params"] = params
        super().add_param_group(param_group)
        try:
            self._flats.append(self._make_flats(self.param_groups[-1]["params"]))
        except Exception:
            self.param_groups.pop()
            raise

    def _make_flats(self, params: list[Tensor]) -> list[tuple[FlatParams, AdamUpdateFn]]:
        by_key: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
        for p in params:
            by_key.setdefault((p.device, p.dtype), []).append(p)
        updates = [resolve_backend(self._backend, device.type) for device, _ in by_key]
        return [(FlatParams(ps), update) for ps, update in zip(by_key.values(), updates)]

    # ---- stepping ----------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one optimization step; params with `.grad` None are skipped.

        Args:
            closure: re-evaluates the model and returns the loss (run with grad enabled).

        Returns:
            The closure's loss, or None.

        Raises:
            RuntimeError: on a sparse gradient, or if a group's `params` list was
                changed after construction.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group, flats in zip(self.param_groups, self._flats, strict=True):
            if len(group["params"]) != sum(len(flat) for flat, _ in flats):
                raise RuntimeError(
                    "a param group's 'params' list changed after FusedAdam was built; "
                    "use add_param_group() to add params"
                )
            hp = AdamHyperparams.from_group(group)
            for flat, update in flats:
                self._step_flat(flat, update, hp)
        return loss

    def _step_flat(self, flat: FlatParams, update: AdamUpdateFn, hp: AdamHyperparams) -> None:
        has_grad = flat.collect_grads()
        names = (*_MOMENTS, _AMSGRAD) if hp.amsgrad else _MOMENTS
        views = {name: flat.state_views(name) for name in names}
        for i, p in enumerate(flat.params):  # lazy state creation, as torch does
            if has_grad[i]:
                state = self.state[p]
                if not state:
                    state["step"] = flat.step_views[i]
                for name in names:
                    if name not in state:
                        state[name] = views[name][i]
        spans = flat.spans(has_grad)
        if not spans:
            return
        steps = flat.advance(spans)  # torch's fused path also counts before the kernel
        span = flat.layout.span
        update(
            [span(flat.param, a, b) for a, b in spans],
            [span(flat.grad, a, b) for a, b in spans],
            [span(flat.state_buffer("exp_avg"), a, b) for a, b in spans],
            [span(flat.state_buffer("exp_avg_sq"), a, b) for a, b in spans],
            [span(flat.state_buffer(_AMSGRAD), a, b) for a, b in spans] if hp.amsgrad else [],
            steps,
            hp,
        )

    def diagnostics(self) -> dict[str, float]:
        """Optimizer-state health over all params: ``eps_dominated_frac``,
        ``update_rms_ratio``, ``nonfinite`` (see `workers.optim._diagnostics`).

        On demand: one read of params and moments, one host sync; NaN ratios before
        the first step.
        """
        return flat_diagnostics([
            (flat, AdamHyperparams.from_group(group))
            for group, flats in zip(self.param_groups, self._flats, strict=True)
            for flat, _ in flats
        ])

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero all flat grad buffers; trainable params keep their flat `.grad` views.

        `set_to_none` only affects frozen params (`requires_grad=False`), see
        `FlatParams.zero_grad`: trainable params' grads stay allocated (zeroed) so that
        `backward()` writes into the flat buffer.
        """
        for flats in self._flats:
            for flat, _ in flats:
                flat.zero_grad(set_to_none)

    # ---- (de)serialization -------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `torch.optim.Adam` or `FusedAdam` state dict (see torch's method).

        Unlike torch's loader, float32 moments of float16/bfloat16 params are copied
        without first being rounded to the param's dtype.
        """
        saved = [i for group in state_dict["param_groups"] for i in group["params"]]
        ours = [p for group in self.param_groups for p in group["params"]]
        self._unrounded = {  # loaded state tensors before torch casts them to p.dtype
            p: state_dict["state"].get(i, {}) for i, p in zip(saved, ours)
        }
        try:
            super().load_state_dict(state_dict)
        finally:
            del self._unrounded

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_backend": self._backend}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Called by `load_state_dict` and unpickling: copy state into the flat buffers."""
        super().__setstate__(state)
        for group in self.param_groups:  # as torch.optim.Adam.__setstate__
            for key in ("amsgrad", "maximize", "decoupled_weight_decay", "capturable",
                        "differentiable"):
                group.setdefault(key, False)
            group.setdefault("foreach", None)
            group.setdefault("fused", None)
        if "_flats" not in self.__dict__:  # unpickled: rebuild the buffers
            self._backend = state.get("_backend", "auto")
            self._flats = [self._make_flats(g["params"]) for g in self.param_groups]
        self._adopt_state()

    def _adopt_state(self) -> None:
        """Copy `self.state` (as loaded) into the flat buffers and replace it by views.

        Params without loaded state get zeroed state and step 0, as if never stepped.

        Raises:
            ValueError: if a loaded state tensor's shape differs from its param's.
        """
        unrounded = self.__dict__.get("_unrounded", {})
        for g, flats in enumerate(self._flats):
            for flat, _ in flats:
                for i, p in enumerate(flat.params):
                    state = self.state.get(p)
                    if not state:
                        flat.reset(i)
                        continue
                    for name in flat.state_names:
                        if name not in state:
                            flat.state_views(name)[i].zero_()
                    for key, value in list(state.items()):
                        if key == "step":
                            flat.set_step(i, float(value))
                            state[key] = flat.step_views[i]
                        elif isinstance(value, Tensor) and key in (*_MOMENTS, _AMSGRAD):
                            view = flat.state_views(key)[i]
                            if value.shape != view.shape:
                                raise ValueError(
                                    f"loaded state {key!r} of a param in group {g} must "
                                    f"have the param's shape {tuple(view.shape)}, but has "
                                    f"shape {tuple(value.shape)}; is the checkpoint from "
                                    "another model?"
                                )
                            value = unrounded.get(p, {}).get(key, value)
                            if value is not view:
                                view.copy_(value)
                            state[key] = view
