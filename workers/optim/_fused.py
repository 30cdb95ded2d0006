"""`FusedOptimizer`: the machinery of `FusedAdam`, `FusedNAdam` and `FusedAdamax`.

A ``torch.optim.Optimizer`` whose params are packed per (param group, device, dtype) into
flat buffers (`FlatParams`), stepped by one update call per buffer (or per run of params,
`FlatParams.spans`) of the subclass's `Algorithm` on the chosen backend. Subclasses set
`algorithm` and write ``__init__`` with torch's signature, validation and param-group
defaults; everything else (lazy state as torch's, grads as flat views, state dicts
that load into and from torch's optimizer, pickling, diagnostics) is here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.optimizer import ParamsT

from ._adapters import AdamUpdateFn
from ._algorithms import Algorithm
from ._backends import BackendName, check_backend_name, resolve_backend
from ._diagnostics import flat_diagnostics
from ._flat import FlatParams
from ._hparams import AdamHyperparams


class FusedOptimizer(Optimizer):
    """Base of the fused Adam-family optimizers (see the module docstring and `FusedAdam`).

    Args:
        params: iterable of params or named params, or of param-group dicts.
        defaults: the param-group defaults, torch's keys in torch's order.
        backend: see `FusedAdam`.
    """

    algorithm: ClassVar[Algorithm]

    def __init__(self, params: ParamsT, defaults: dict[str, Any], backend: BackendName) -> None:
        check_backend_name(backend)
        self._backend = backend
        # per param group: [(flat buffers of one device/dtype, its update function)]
        self._flats: list[list[tuple[FlatParams, AdamUpdateFn]]] = []
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
                    f"each param may appear once in a {type(self).__name__} param group, but a param "
                    "is listed twice; deduplicate the params (e.g. tied weights)"
                )
        param_group["params"] = params
        if torch.compiler.is_compiling():
            super().add_param_group(param_group)
        else:
            # torch wraps add_param_group in ``torch._disable_dynamo``, whose first call imports
            # torch._dynamo: 1.5-1.9 s of every fresh trial process (and of the driver's lr range
            # test) on this 2-core CPU, for a guard that matters only under torch.compile. Outside
            # it, torch's own function (functools' ``__wrapped__``) does the same work; a torch
            # without the wrapper gets its plain method.
            add = Optimizer.add_param_group
            getattr(add, "__wrapped__", add)(self, param_group)
        try:
            self._flats.append(self._make_flats(self.param_groups[-1]["params"]))
        except Exception:
            self.param_groups.pop()
            raise

    def _make_flats(self, params: list[Tensor]) -> list[tuple[FlatParams, AdamUpdateFn]]:
        by_key: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
        for p in params:
            by_key.setdefault((p.device, p.dtype), []).append(p)
        algorithm = self.algorithm
        updates = [resolve_backend(self._backend, device.type, algorithm.name) for device, _ in by_key]
        flats = [FlatParams(ps) for ps in by_key.values()]
        for flat in flats:
            algorithm.prepare(flat)
        return list(zip(flats, updates))

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
                    f"a param group's 'params' list changed after {type(self).__name__} was built; "
                    "use add_param_group() to add params"
                )
            hp = AdamHyperparams.from_group(group)
            for flat, update in flats:
                self._step_flat(flat, update, hp)
        return loss

    def _step_flat(self, flat: FlatParams, update: AdamUpdateFn, hp: AdamHyperparams) -> None:
        has_grad = flat.collect_grads()
        names = self.algorithm.tensor_states(hp.amsgrad)
        views = {name: flat.state_views(name) for name in names}
        scalars = {name: flat.scalar_views(name) for name in flat.scalar_names}
        for i, p in enumerate(flat.params):  # lazy state creation, torch's keys and order
            if has_grad[i]:
                state = self.state[p]
                if not state:
                    state["step"] = flat.step_views[i]
                    for name, scalar_views in scalars.items():
                        state[name] = scalar_views[i]
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
            *self.algorithm.update_args(flat, spans, hp),
            steps,
            hp,
        )

    def diagnostics(self) -> dict[str, float]:
        """Optimizer-state health over all params: ``eps_dominated_frac``,
        ``update_rms_ratio``, ``nonfinite`` (see `workers.optim._diagnostics`).

        On demand: one read of params and moments, one host sync; NaN ratios before
        the first step.
        """
        return flat_diagnostics(
            [
                (flat, AdamHyperparams.from_group(group))
                for group, flats in zip(self.param_groups, self._flats, strict=True)
                for flat, _ in flats
            ],
            algorithm=self.algorithm.name,
        )

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
        """Load a state dict of the matching ``torch.optim`` class (e.g. ``torch.optim.NAdam``
        for `FusedNAdam`) or of this class (see torch's method).

        Unlike torch's loader, float32 states of float16/bfloat16 params are copied
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
        flags = self.algorithm.group_flag_defaults()
        for group in self.param_groups:  # as torch.optim.Adam / NAdam / Adamax.__setstate__
            for key, default in flags.items():
                group.setdefault(key, default)
        if "_flats" not in self.__dict__:  # unpickled: rebuild the buffers
            self._backend = state.get("_backend", "auto")
            self._flats = [self._make_flats(g["params"]) for g in self.param_groups]
        self._adopt_state()

    def _adopt_state(self) -> None:
        """Copy `self.state` (as loaded) into the flat buffers and replace it by views.

        Params without loaded state get zeroed state and step 0, as if never stepped; a
        scalar state missing from a loaded entry (e.g. NAdam's ``mu_product``) starts at
        its initial value.

        Raises:
            ValueError: if a loaded state tensor's shape differs from its param's.
        """
        unrounded = self.__dict__.get("_unrounded", {})
        tensor_keys = self.algorithm.state_keys()
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
                    for name, init in self.algorithm.scalar_states:
                        if name not in state:
                            flat.set_scalar(name, i, i + 1, init)
                            state[name] = flat.scalar_views(name)[i]
                    for key, value in list(state.items()):
                        if key == "step":
                            flat.set_step(i, float(value))
                            state[key] = flat.step_views[i]
                        elif key in flat.scalar_names:
                            value = unrounded.get(p, {}).get(key, value)
                            flat.set_scalar(key, i, i + 1, float(value))
                            state[key] = flat.scalar_views(key)[i]
                        elif isinstance(value, Tensor) and key in tensor_keys:
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
