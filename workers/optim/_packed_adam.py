"""`PackedAdam`: K Adam (or NAdam, or AdaMax) trials with their own hyperparameters, one
fused update per step."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ._algorithms import AlgorithmName, get_algorithm
from ._backends import BackendName, resolve_packed_backend
from ._diagnostics import packed_diagnostics
from ._flat import FlatParams
from ._hparams import TrialHyperparams, per_trial, validate_trial

_TRIAL_KEYS = ("lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay")
_TABLE_KEYS = ("lr", "beta1", "beta2", "eps", "weight_decay")  # then active, momentum_decay

Floats = float | Sequence[float] | Tensor


class PackedAdam:
    r"""Adam for K stacked trials: row k of every param evolves exactly as a separate
    `torch.optim.Adam` with trial k's hyperparameters, in one call per step.

    ``algorithm="nadam"`` / ``"adamax"``: row k evolves as a separate `torch.optim.NAdam`
    / `torch.optim.Adamax` instead (formulas in `FusedNAdam` / `FusedAdamax`; one
    algorithm per pack; NAdam's ``momentum_decay`` per trial like lr).

    Every param has a leading trial dim K, as produced by
    ``params, buffers = torch.func.stack_module_state(models)``. Per trial k, for each
    param row p = param[k] with gradient g (Kingma & Ba 2014, Alg. 1;
    torch/optim/adam.py, `_single_tensor_adam`), with t the (trial, param) step count::

        g     <- -g                               if maximize
        g     <- g + lambda_k * p                 if not decoupled (L2)
        p     <- p * (1 - lr_k * lambda_k)        if decoupled (AdamW)
        m     <- lerp(m, g, 1 - beta1_k)
        v     <- beta2_k * v + (1 - beta2_k) * g^2
        v_max <- max(v_max, v)                    if amsgrad (raw, not bias-corrected)
        p     <- p - lr_k / (1 - beta1_k^t) * m / (sqrt(v or v_max) / sqrt(1 - beta2_k^t) + eps_k)

    Public API:
        - ``step(closure=None)``: one update of every active trial; params whose
          ``.grad`` is None are skipped for all trials (as torch skips them).
        - ``zero_grad(set_to_none=True)``: as `FusedAdam.zero_grad` (grads stay views
          of the flat grad buffer so ``backward()`` accumulates in place).
        - ``num_trials``: K. ``params``: the stacked params, in order.
        - ``active`` (tuple of K bools) and ``set_active(mask)``: an inactive trial is
          frozen: its param rows, states and step counts are not touched by `step`,
          and no NaN arises from its (possibly zero) bias correction.
        - ``algorithm``: ``"adam"``, ``"nadam"`` or ``"adamax"``.
        - ``hyperparameters(k)``: trial k's ``{"lr", "betas", "eps", "weight_decay"}``
          (torch.optim.Adam keyword arguments; NAdam adds ``"momentum_decay"``).
        - ``set_hyperparameters(k, *, lr=, betas=, eps=, weight_decay=, momentum_decay=)``: change trial
          k's values between steps (omitted ones are kept); the state is kept.
        - ``set_lrs(lrs)``: every trial's lr at once, e.g. before each step of K
          per-trial lr schedules (what ``LambdaLR`` does to a ``torch.optim.Adam``).
        - ``reset_trial(k)``: zero trial k's ``exp_avg``/``exp_avg_sq``/``max_exp_avg_sq``
          rows and step counts, as a fresh optimizer; with `set_hyperparameters`, new
          param values written into row k (``p[k].copy_(...)`` under no_grad) and
          `set_active`, a freed slot takes a new trial.
        - ``diagnostics()``: per-trial optimizer-state health, see `packed_diagnostics`.
        - ``state_dict()`` / ``load_state_dict(sd)``: the whole packed state; ``sd`` is::

            {"state": {i: {"step": (K,) float32, "exp_avg": (K, *shape_i),
                           "exp_avg_sq": (K, *shape_i), "max_exp_avg_sq": ... (amsgrad)}},
             "trials": {"lr": [K floats], "beta1": [...], "beta2": [...], "eps": [...],
                        "weight_decay": [...], "active": [K bools]},
             "amsgrad": bool, "maximize": bool, "decoupled_weight_decay": bool,
             "algorithm": "adam"}

          (NAdam: state ``step, mu_product`` (K,) float32, ``exp_avg, exp_avg_sq``, and
          trials["momentum_decay"];
          AdaMax: ``step, exp_avg, exp_inf``; a checkpoint without "algorithm" is Adam's)

          where i indexes `params` and only params that have been stepped appear (as
          torch). Tensors are views of the live buffers (as torch's): deep-copy or
          `torch.save` them for a snapshot.
        - ``trial_state_dict(k)``: trial k's state as a ``torch.optim.Adam`` (``NAdam``,
          ``Adamax``) state dict (one param group over ``[p[k] for p in params]``; copies).

    Memory: at construction the params are packed into one (K, N) buffer and each
    ``p.data`` becomes a (K, *shape) view of it (rows strided by N: the view is not
    contiguous for K > 1); grads, states and the (K, n_params) float32 step counts live
    in (K, N) / (K, n) buffers on the params' device. A ``.grad`` that is not the flat
    view (e.g. a non-contiguous grad of a stacked/bmm weight) is copied into the
    contiguous flat grad buffer before the update: torch 2.13's CPU fused kernel
    computes wrong updates on non-contiguous grads. Because the params are strided
    views, autograd warns once per process "grad and param do not obey the gradient
    layout contract" when it accumulates into the flat grad views: expected, harmless.

    Mixed precision: float16/bfloat16 params keep float32 ``exp_avg``/``exp_avg_sq``
    (half-precision moments silently degrade training); the update is computed in
    float32 and the param rounded to its dtype.

    Bytes moved per param element per step, float32: 28 B (read p, g, m, v; write p,
    m, v), 36 B with amsgrad; an inactive trial moves none. Backends: "triton" (one
    launch per run of params, grid trial x block, hyperparameters and steps read on
    the device), "torch_fused" / "reference" (one call per group of active trials
    sharing hyperparameters).

    Args:
        params: the stacked params: tensors of shape (K, ...) with one K, one device
            and one floating dtype, or a name -> tensor mapping of them.
        lr, eps, weight_decay: a float for every trial, or K values (sequence/tensor);
            lr defaults to torch's default of the algorithm (1e-3 Adam, 2e-3 NAdam and
            AdaMax).
        betas: (beta1, beta2), each a float or K values.
        amsgrad, maximize, decoupled_weight_decay: shared by all trials (amsgrad: Adam
            only; decoupled_weight_decay: Adam and NAdam).
        algorithm: ``"adam"`` (default), ``"nadam"`` or ``"adamax"``, for every trial.
        momentum_decay: NAdam only: a float or K values (default torch's 4e-3).
        backend: ``"auto"`` (`workers.optim.auto_backend`: "torch_fused" on CPU, the
            Triton kernel on CUDA where Triton is installed) or a name from
            `available_backends(device.type)`.

    Raises:
        ValueError: no params, a param listed twice, params of different K, device or
            dtype, a per-trial value list not of length K, an invalid value (torch's
            message, prefixed with the trial), an unavailable backend, an unknown
            algorithm, or an option its algorithm does not have (amsgrad other than
            with Adam, decoupled_weight_decay with AdaMax, momentum_decay other than
            with NAdam).
        TypeError: a param that is not a real floating-point tensor.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Mapping[str, Tensor],
        lr: Floats | None = None,
        betas: tuple[Floats, Floats] = (0.9, 0.999),
        eps: Floats = 1e-8,
        weight_decay: Floats = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        backend: BackendName = "auto",
        algorithm: AlgorithmName = "adam",
        momentum_decay: Floats | None = None,
    ) -> None:
        self._algorithm = get_algorithm(algorithm)
        _check_options(algorithm, amsgrad, decoupled_weight_decay, momentum_decay)
        if lr is None:
            lr = self._algorithm.lr
        if momentum_decay is None:
            momentum_decay = 4e-3 if algorithm == "nadam" else 0.0
        tensors = list(params.values() if isinstance(params, Mapping) else params)
        if not tensors:
            raise ValueError("PackedAdam needs at least one param, but got none")
        if len({id(p) for p in tensors}) != len(tensors):
            raise ValueError("each param may appear once in PackedAdam, but one is listed twice")
        if tensors[0].dim() == 0:
            raise ValueError("params must have a leading trial dim K, but param 0 is 0-d")
        trials = tensors[0].shape[0]
        self._flat = FlatParams(tensors, trials=trials)
        self._algorithm.prepare(self._flat)
        self._update = resolve_packed_backend(backend, self._flat.device.type, algorithm)
        self._flags = {
            "amsgrad": bool(amsgrad),
            "maximize": bool(maximize),
            "decoupled_weight_decay": bool(decoupled_weight_decay),
        }
        values = dict(zip(_TRIAL_KEYS, (lr, *betas, eps, weight_decay, momentum_decay)))
        self._values = {key: per_trial(key, v, trials) for key, v in values.items()}
        self._active = [True] * trials
        for k in range(trials):
            validate_trial(k, *(self._values[key][k] for key in _TRIAL_KEYS))
        self._has_state = [False] * len(tensors)
        self._hp = self._build_hp()

    # ---- trials --------------------------------------------------------------------
    @property
    def num_trials(self) -> int:
        """K, the number of packed trials."""
        return len(self._active)

    @property
    def algorithm(self) -> str:
        """``"adam"``, ``"nadam"`` or ``"adamax"``: the update every trial runs."""
        return self._algorithm.name

    @property
    def params(self) -> tuple[Tensor, ...]:
        """The stacked params (K, ...), in construction order."""
        return self._flat.params

    @property
    def active(self) -> tuple[bool, ...]:
        """Which trials `step` updates (all True at construction)."""
        return tuple(self._active)

    def set_active(self, mask: Sequence[bool] | Tensor) -> None:
        """Set which trials `step` updates; `mask` has K bools (a device tensor is
        copied to the host once, here).

        Raises:
            ValueError: if `mask` does not hold K values.
        """
        values = mask.detach().cpu().reshape(-1).tolist() if isinstance(mask, Tensor) else mask
        if len(values) != self.num_trials:
            raise ValueError(f"mask must hold K={self.num_trials} values, but got {len(values)}")
        self._active = [bool(v) for v in values]
        self._hp = self._build_hp()

    def hyperparameters(self, k: int) -> dict[str, Any]:
        """Trial k's ``{"lr", "betas", "eps", "weight_decay"}`` as torch.optim.Adam takes them
        (NAdam: and ``"momentum_decay"``)."""
        lr, beta1, beta2, eps, wd, md = (self._values[key][self._trial(k)] for key in _TRIAL_KEYS)
        out = {"lr": lr, "betas": (beta1, beta2), "eps": eps, "weight_decay": wd}
        if self._algorithm.name == "nadam":
            out["momentum_decay"] = md
        return out

    def set_hyperparameters(
        self,
        k: int,
        *,
        lr: float | None = None,
        betas: tuple[float, float] | None = None,
        eps: float | None = None,
        weight_decay: float | None = None,
        momentum_decay: float | None = None,
    ) -> None:
        """Change trial k's hyperparameters from the next `step` on (None: keep).

        Raises:
            IndexError: if k is not in [0, K).
            ValueError: an invalid value (torch's message, prefixed with the trial), or
                momentum_decay for an algorithm other than NAdam.
        """
        _check_options(self._algorithm.name, False, False, momentum_decay)
        current = self.hyperparameters(k)
        beta1, beta2 = betas if betas is not None else current["betas"]
        new = {
            "lr": current["lr"] if lr is None else float(lr),
            "beta1": float(beta1),
            "beta2": float(beta2),
            "eps": current["eps"] if eps is None else float(eps),
            "weight_decay": current["weight_decay"] if weight_decay is None else float(weight_decay),
            "momentum_decay": self._values["momentum_decay"][k] if momentum_decay is None else float(momentum_decay),
        }
        validate_trial(k, *new.values())
        for key, value in new.items():
            self._values[key][k] = value
        self._hp = self._build_hp()

    def set_lrs(self, lrs: Sequence[float]) -> None:
        """Set every trial's lr from the next `step` on (one value per trial; the state is kept).

        Cheaper than K `set_hyperparameters` calls: the (6, K) hyperparameter table is
        rebuilt once; on CUDA it goes to the device by a non-blocking copy from pinned
        memory, so calling this before every step adds no host sync.

        Raises:
            ValueError: if `lrs` does not hold K values, or one is negative or NaN.
        """
        values = [float(lr) for lr in lrs]
        if len(values) != self.num_trials:
            raise ValueError(f"lrs must hold K={self.num_trials} values, but got {len(values)}")
        for k, lr in enumerate(values):
            if not lr >= 0.0:  # also rejects NaN
                raise ValueError(f"trial {k}: Invalid learning rate: {lr}")
        self._values["lr"] = values
        self._hp = self._build_hp()

    def reset_trial(self, k: int) -> None:
        """Zero trial k's optimizer state and step counts (params and hyperparameters
        are kept): its next step is a first step, as with a new torch.optim.Adam.

        Raises:
            IndexError: if k is not in [0, K).
        """
        self._flat.reset_row(self._trial(k))

    def _trial(self, k: int) -> int:
        if not 0 <= k < self.num_trials:
            raise IndexError(f"trial index must be in [0, {self.num_trials}), but got {k}")
        return k

    def _build_hp(self) -> TrialHyperparams:
        rows = (
            [self._values[key] for key in _TABLE_KEYS]
            + [[float(a) for a in self._active]]
            + [self._values["momentum_decay"]]
        )
        device = self._flat.device
        if device.type == "cuda":  # pinned + non_blocking: the host does not wait for the GPU (set_lrs runs per step)
            table = torch.tensor(rows, dtype=torch.float64, pin_memory=True).to(device, non_blocking=True)  # (7, K)
        else:
            table = torch.tensor(rows, dtype=torch.float64).to(device)  # (7, K)
        return TrialHyperparams(
            **{key: tuple(self._values[key]) for key in _TRIAL_KEYS},
            active=tuple(self._active),
            table=table,
            **self._flags,
        )

    # ---- stepping --------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adam update of every active trial (see the class docstring).

        Returns:
            The closure's loss (it runs with grad enabled), or None.

        Raises:
            RuntimeError: on a sparse gradient.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        flat, hp = self._flat, self._hp
        has_grad = flat.collect_grads()
        spans = flat.spans(has_grad)
        if not spans or not any(hp.active):
            return loss
        for i, on in enumerate(has_grad):
            self._has_state[i] = self._has_state[i] or on
        steps = flat.advance(spans, rows=(hp.table[5], hp.active))
        segments = [[flat.layout.span(b, a, z) for a, z in spans] for b in (flat.param, flat.grad)]
        states = self._algorithm.update_args(flat, spans, hp, hp.active)
        self._update(*segments, *states, steps, hp)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the flat grad buffer; trainable params keep their flat `.grad` views
        (`set_to_none` only affects params with requires_grad=False, as `FusedAdam`)."""
        self._flat.zero_grad(set_to_none)

    def diagnostics(self) -> dict[str, list[float]]:
        """Per-trial optimizer-state diagnostics (one pass over the state, on demand);
        see `packed_diagnostics`. Trials that never stepped report NaN ratios."""
        return packed_diagnostics(self._flat, self._hp, self._algorithm.name)

    # ---- (de)serialization -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The packed state (layout in the class docstring); tensors are live views."""
        state = {}
        for i, stepped in enumerate(self._has_state):
            if stepped:
                state[i] = self._param_state(i, lambda view: view)
        keys = _TRIAL_KEYS if self._algorithm.name == "nadam" else _TABLE_KEYS
        trials: dict[str, list] = {key: list(self._values[key]) for key in keys}
        trials["active"] = list(self._active)
        return {"state": state, "trials": trials, **self._flags, "algorithm": self._algorithm.name}

    def _param_state(self, i: int, take: Callable[[Tensor], Tensor]) -> dict[str, Tensor]:
        """Param i's state entries in torch's key order, each view passed through `take`."""
        flat = self._flat
        entry = {"step": take(flat.step_views[i])}
        for name in flat.scalar_names:
            entry[name] = take(flat.scalar_views(name)[i])
        for name in self._algorithm.state_keys()[1:]:
            if name in flat.state_names:
                entry[name] = take(flat.state_views(name)[i])
        return entry

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a `state_dict()` of a PackedAdam over params of the same shapes (its
        hyperparameters, flags and active mask replace ours).

        Raises:
            ValueError: if K, the number of params or a state tensor's shape differs.
        """
        trials = state_dict["trials"]
        algorithm = state_dict.get("algorithm", "adam")
        if algorithm != self._algorithm.name:
            raise ValueError(
                f"the checkpoint is of a {algorithm!r} PackedAdam, but this one runs {self._algorithm.name!r}"
            )
        trials = {"momentum_decay": [4e-3 if algorithm == "nadam" else 0.0] * len(trials["active"]), **trials}
        if len(trials["active"]) != self.num_trials:
            raise ValueError(
                f"the checkpoint has K={len(trials['active'])} trials, but this PackedAdam has K={self.num_trials}"
            )
        flat = self._flat
        state = state_dict["state"]
        if any(not 0 <= int(i) < len(flat) for i in state):
            raise ValueError(
                f"the checkpoint has state for params {sorted(state)}, but this PackedAdam has {len(flat)} params"
            )
        for k in range(self.num_trials):
            validate_trial(k, *(float(trials[key][k]) for key in _TRIAL_KEYS))
        for i in range(len(flat)):
            entry = state.get(i)
            if entry is None:
                flat.reset(i)
                self._has_state[i] = False
                continue
            for name, init in self._algorithm.scalar_states:
                if name not in entry:
                    flat.set_scalar(name, i, i + 1, (init,) * self.num_trials)
            for key, value in entry.items():
                if key not in self._algorithm.state_keys():
                    raise ValueError(f"unknown state key {key!r} for param {i} in the checkpoint")
                if key == "step":
                    view = flat.step_views[i]
                elif key in flat.scalar_names:
                    view = flat.scalar_views(key)[i]
                else:
                    view = flat.state_views(key)[i]
                if value.shape != view.shape:
                    raise ValueError(
                        f"loaded state {key!r} of param {i} must have shape "
                        f"{tuple(view.shape)}, but has {tuple(value.shape)}; is the "
                        "checkpoint from another model or K?"
                    )
                if key == "step":
                    flat.set_step(i, value.tolist())
                elif key in flat.scalar_names:
                    flat.set_scalar(key, i, i + 1, value.tolist())
                elif value is not view:
                    view.copy_(value)
            for name in flat.state_names:
                if name not in entry:
                    flat.state_views(name)[i].zero_()
            self._has_state[i] = True
        self._values = {key: [float(v) for v in trials[key]] for key in _TRIAL_KEYS}
        self._active = [bool(a) for a in trials["active"]]
        self._flags = {key: bool(state_dict[key]) for key in self._flags}
        self._hp = self._build_hp()

    def trial_state_dict(self, k: int) -> dict[str, Any]:
        """Trial k's state as ``torch.optim.Adam([p[k] for p in params], ...).state_dict()``
        (``torch.optim.NAdam`` / ``Adamax`` for those algorithms).

        Loads into that torch optimizer (or `FusedAdam` / `FusedNAdam` / `FusedAdamax`)
        over trial k's params, which then continues exactly as row k would. Params whose
        step count for trial k is 0 (never stepped, or reset) have no entry, as in
        torch. Scalar states (step, mu_product) are 0-d float32 on the CPU, as torch's
        for-loop and foreach optimizers keep them. One host sync.
        """
        k, flat = self._trial(k), self._flat
        steps = flat.steps[k].tolist()  # (n,)
        state = {}
        for i, step in enumerate(steps):
            if step > 0:
                state[i] = self._param_state(i, lambda view: view[k].clone())
                for name in ("step", *flat.scalar_names):
                    state[i][name] = state[i][name].cpu()
        group = self._algorithm.torch_group({**self.hyperparameters(k), **self._flags})
        group["params"] = list(range(len(flat)))
        return {"state": state, "param_groups": [group]}


def _check_options(algorithm: str, amsgrad: bool, decoupled_weight_decay: bool, momentum_decay: object) -> None:
    """Raises ValueError for an option `algorithm`'s torch optimizer does not have."""
    if amsgrad and algorithm != "adam":
        raise ValueError(f"amsgrad is an option of Adam only, but algorithm={algorithm!r}")
    if decoupled_weight_decay and algorithm == "adamax":
        raise ValueError(
            "torch.optim.Adamax has no decoupled weight decay, but decoupled_weight_decay=True with algorithm='adamax'"
        )
    if momentum_decay is not None and algorithm != "nadam":
        raise ValueError(f"momentum_decay is an option of NAdam only, but algorithm={algorithm!r}")
