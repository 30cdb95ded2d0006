"""The Adam family over flat buffers: what Adam, NAdam and AdaMax do differently, besides
the element-wise update.

An `Algorithm` names its ``torch.optim`` class, the keys of its param groups in torch's
order (so our state dicts load into torch's optimizers), its per-param state in torch's
state-dict order (tensor states shaped like the param; scalar states such as NAdam's
``mu_product``), and how one step prepares the arguments of the update function after the
step counts were advanced: `Algorithm.update_args`. The arithmetic itself lives with the
backends (`_reference`, `_torch_fused` / `_torch_foreach`, `_triton_adam`), looked up by
`_backends.resolve_backend(name, device_type, algorithm)`; every update function takes
``(params, grads, *update_args, steps, hp)``:

- adam:   ``exp_avgs, exp_avg_sqs, max_exp_avg_sqs`` (the last empty without amsgrad)
- nadam:  ``exp_avgs, exp_avg_sqs, mu_products`` (mu_products: one 0-d, or (K,), float32
  tensor per segment, already multiplied by this step's mu_t, as torch does before it
  computes the step sizes)
- adamax: ``exp_avgs, exp_infs``

NAdam's momentum schedule (Dozat 2016; torch.optim.NAdam's ``momentum_decay``) is here once:
`nadam_mu` (mu_t), the host-side ``mu_product *= mu_t`` of `Algorithm.update_args`, and
`nadam_step_sizes`, which the reference and torch-foreach backends use. The Triton kernel
computes mu_t on the device instead (`_triton_adam._nadam_mu`: it reads the step count there,
with no host sync).

State per param, torch's keys and order (step: float32 0-d, or (K,) when packed):
Adam ``step, exp_avg, exp_avg_sq[, max_exp_avg_sq]``; NAdam ``step, mu_product,
exp_avg, exp_avg_sq``; AdaMax ``step, exp_avg, exp_inf``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor

from ._flat import FlatParams, _f32
from ._hparams import AdamHyperparams, TrialHyperparams

AlgorithmName = Literal["adam", "nadam", "adamax"]

# defaults of the param-group flags (and NAdam's momentum_decay) of torch.optim (2.13)
_GROUP_DEFAULTS: dict[str, Any] = {
    "momentum_decay": 4e-3,
    "amsgrad": False,
    "maximize": False,
    "foreach": None,
    "capturable": False,
    "differentiable": False,
    "fused": None,
    "decoupled_weight_decay": False,
}
_HYPERPARAMS = ("lr", "betas", "eps", "weight_decay", "momentum_decay")


@dataclass(frozen=True)
class Algorithm:
    """One member of the Adam family (see the module docstring).

    Attributes:
        name: ``"adam"``, ``"nadam"`` or ``"adamax"``.
        torch_class: the matching class of ``torch.optim`` (its name, e.g. ``"NAdam"``).
        group_keys: the keys of torch's param groups, in torch's order (``params`` aside).
        moments: tensor states shaped like the param, in torch's order.
        amsgrad_state: the extra tensor state with ``amsgrad=True`` (Adam only).
        scalar_states: (name, value before the first step) of the per-param scalars.
        lr: torch's default learning rate.
    """

    name: AlgorithmName
    torch_class: str
    group_keys: tuple[str, ...]
    moments: tuple[str, ...]
    amsgrad_state: str | None = None
    scalar_states: tuple[tuple[str, float], ...] = ()
    lr: float = 1e-3

    def tensor_states(self, amsgrad: bool) -> tuple[str, ...]:
        """Names of the tensor states a step with `amsgrad` uses, in torch's order."""
        extra = (self.amsgrad_state,) if amsgrad and self.amsgrad_state else ()
        return (*self.moments, *extra)

    def state_keys(self) -> tuple[str, ...]:
        """Every key a per-param state may hold (``step`` first)."""
        extra = (self.amsgrad_state,) if self.amsgrad_state else ()
        return ("step", *(n for n, _ in self.scalar_states), *self.moments, *extra)

    def torch_group(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A param group (without ``params``) as torch builds it: `group_keys` in order,
        from `values`, flags missing there at torch's defaults."""
        return {key: values[key] if key in values else _GROUP_DEFAULTS[key] for key in self.group_keys}

    def group_flag_defaults(self) -> dict[str, Any]:
        """The flags torch's ``__setstate__`` fills into older param groups."""
        return {k: _GROUP_DEFAULTS[k] for k in self.group_keys if k not in _HYPERPARAMS}

    def prepare(self, flat: FlatParams) -> None:
        """Allocate this algorithm's scalar states in `flat`."""
        for name, init in self.scalar_states:
            flat.add_scalar_state(name, init)

    def update_args(
        self,
        flat: FlatParams,
        spans: Sequence[tuple[int, int]],
        hp: AdamHyperparams | TrialHyperparams,
        active: Sequence[bool] | None = None,
    ) -> list[list[Tensor]]:
        """The state arguments of the update function over `spans` of `flat`, after
        `flat.advance(spans)`; for NAdam this multiplies each param's ``mu_product`` by
        mu_t (of the active trials, `active`, when packed) first.
        """
        segments = [
            [flat.layout.span(flat.state_buffer(name), a, b) for a, b in spans]
            for name in self.tensor_states(hp.amsgrad)
        ]
        if self.amsgrad_state and not hp.amsgrad:
            segments.append([])
        if self.name == "nadam":
            segments.append(_advance_mu_products(flat, spans, hp, active))
        return segments


def nadam_mu(step: float, beta1: float, momentum_decay: float) -> float:
    """NAdam's momentum coefficient mu_t = beta1 * (1 - 0.5 * 0.96^(t * psi)), in float64,
    as torch/optim/nadam.py computes it (t may be a float step count)."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def nadam_step_sizes(
    lr: float, beta1: float, momentum_decay: float, step: float, mu_product: float
) -> tuple[float, float]:
    """NAdam's two step sizes at step t, in float64, as torch/optim/nadam.py computes them:
    ``-lr (1 - mu_t) / (1 - mu_product)`` for the gradient and ``-lr mu_{t+1} / (1 -
    mu_product mu_{t+1})`` for ``exp_avg`` (each ``param.addcdiv_(..., denom, value=...)``).

    Args:
        lr, beta1, momentum_decay: the param group's (psi = momentum_decay).
        step: t >= 1, this step's count (a float, as torch reads it).
        mu_product: prod_{s<=t} mu_s: the state after this step's ``mu_product *= mu_t``
            (`Algorithm.update_args`).
    """
    mu = nadam_mu(step, beta1, momentum_decay)
    mu_next = nadam_mu(step + 1, beta1, momentum_decay)
    return -lr * (1.0 - mu) / (1.0 - mu_product), (-lr * mu_next) / (1.0 - mu_product * mu_next)


def _advance_mu_products(
    flat: FlatParams,
    spans: Sequence[tuple[int, int]],
    hp: AdamHyperparams | TrialHyperparams,
    active: Sequence[bool] | None,
) -> list[Tensor]:
    """``mu_product *= mu_t`` for every param of `spans` (float32, as torch's 0-d state
    times a Python float: the float is rounded to float32 first), on the host mirror
    and the device; per span, its first param's ``mu_product`` view.

    All params of a span share step count and mu_product (`FlatParams.spans`), so a
    span gets one value (one per trial when packed).
    """
    mirror = flat.scalar_values("mu_product")
    for start, stop in spans:
        t, old = flat.step_counts[start], mirror[start]
        if not flat.lead:
            mu = nadam_mu(t, hp.beta1, hp.momentum_decay)  # type: ignore[arg-type]
            flat.set_scalar("mu_product", start, stop, _f32(old * _f32(mu)))
        else:
            new = tuple(
                _f32(old[k] * _f32(nadam_mu(t[k], hp.beta1[k], hp.momentum_decay[k]))) if active[k] else old[k]  # type: ignore[index]
                for k in range(len(old))
            )
            flat.set_scalar("mu_product", start, stop, new)
    views = flat.scalar_views("mu_product")
    return [views[start] for start, _ in spans]


ADAM = Algorithm(
    name="adam",
    torch_class="Adam",
    group_keys=(
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
        "foreach",
        "capturable",
        "differentiable",
        "fused",
        "decoupled_weight_decay",
    ),
    moments=("exp_avg", "exp_avg_sq"),
    amsgrad_state="max_exp_avg_sq",
    lr=1e-3,
)
NADAM = Algorithm(
    name="nadam",
    torch_class="NAdam",
    group_keys=(
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "momentum_decay",
        "decoupled_weight_decay",
        "maximize",
        "foreach",
        "capturable",
        "differentiable",
    ),
    moments=("exp_avg", "exp_avg_sq"),
    scalar_states=(("mu_product", 1.0),),
    lr=2e-3,
)
ADAMAX = Algorithm(
    name="adamax",
    torch_class="Adamax",
    group_keys=("lr", "betas", "eps", "weight_decay", "foreach", "maximize", "differentiable", "capturable"),
    moments=("exp_avg", "exp_inf"),
    lr=2e-3,
)
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (ADAM, NADAM, ADAMAX)}


def get_algorithm(name: str) -> Algorithm:
    """The `Algorithm` called `name`.

    Raises:
        ValueError: if `name` is not one of ``"adam"``, ``"nadam"``, ``"adamax"``.
    """
    try:
        return ALGORITHMS[name]
    except (KeyError, TypeError):
        raise ValueError(f"algorithm must be one of {tuple(ALGORITHMS)}, but got algorithm={name!r}") from None
