"""Adam-family hyperparameters as frozen values (one trial, or K packed trials), and validation.

One value type serves Adam, NAdam and AdaMax (`workers.optim._algorithms`): each
algorithm's update reads the fields it uses (NAdam adds `momentum_decay`; AdaMax has no
amsgrad and no decoupled weight decay). The update functions of every backend (`_reference.py`, `_torch_fused.py`, `_triton_adam.py`)
take an `AdamHyperparams` instead of a param-group dict, so a backend never sees the
optimizer's bookkeeping keys (`params`, `foreach`, `fused`, ...). K-trial backends take a
`TrialHyperparams`: per-trial floats for host-side backends plus the same values as a
small device table for kernels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor


@dataclass(frozen=True, slots=True)
class AdamHyperparams:
    """Hyperparameters of one Adam update, read from a param group at each `step()`.

    Attributes:
        lr: step size gamma, in parameter units per unit of normalized update
            m_hat / (sqrt(v_hat) + eps); a Python float or a 1-element tensor.
        beta1: decay of the first-moment EMA, dimensionless, in [0, 1).
        beta2: decay of the second-moment EMA, dimensionless, in [0, 1).
        eps: added to sqrt(v_hat), in gradient units.
        weight_decay: lambda, per step; L2 penalty folded into the gradient, or
            (decoupled) a multiplicative shrink of the param by (1 - lr * lambda).
        amsgrad: normalize by the running max of the raw second moment (Reddi et al. 2018).
        maximize: ascend the objective (the gradient is negated).
        decoupled_weight_decay: AdamW (Loshchilov & Hutter 2019) instead of L2.
        momentum_decay: NAdam's psi (Dozat 2016; torch.optim.NAdam): the momentum
            schedule mu_t = beta1 * (1 - 0.5 * 0.96^(t * psi)), per step; unused by Adam
            and AdaMax (0 there).
    """

    lr: float | Tensor
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    amsgrad: bool
    maximize: bool
    decoupled_weight_decay: bool
    momentum_decay: float = 0.0

    @classmethod
    def from_group(cls, group: Mapping[str, Any]) -> AdamHyperparams:
        """Read the hyperparameters of a `torch.optim.Adam`, `NAdam` or `Adamax` param
        group (keys a group lacks, e.g. Adamax's ``amsgrad``, read as False / 0).

        Tensor betas are converted to Python floats (one host sync each when on an
        accelerator); a tensor lr is passed through, squeezed to 0-d.
        """
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        if isinstance(lr, Tensor) and lr.dim() != 0:
            lr = lr.squeeze()
        return cls(
            lr=lr,
            beta1=float(beta1),
            beta2=float(beta2),
            eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]),
            amsgrad=bool(group.get("amsgrad", False)),
            maximize=bool(group["maximize"]),
            decoupled_weight_decay=bool(group.get("decoupled_weight_decay", False)),
            momentum_decay=float(group.get("momentum_decay", 0.0)),
        )


def validate_adam_args(
    lr: float | Tensor,
    betas: tuple[float | Tensor, float | Tensor],
    eps: float,
    weight_decay: float,
    momentum_decay: float | None = None,
    *,
    beta_types: bool = True,
) -> None:
    """Check constructor arguments exactly as `torch.optim.Adam.__init__` does (torch 2.13);
    `torch.optim.NAdam` also checks `momentum_decay`, and NAdam / Adamax skip the beta
    type checks (``beta_types=False``).

    Raises:
        ValueError: with torch's own message, e.g. ``Invalid learning rate: -1.0``, when
            lr < 0, eps < 0, a beta outside [0, 1), weight_decay < 0, momentum_decay < 0,
            a tensor lr or beta with more than one element, or (`beta_types`) one beta a
            float and the other a tensor.
    """
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if momentum_decay is not None and not 0.0 <= momentum_decay:
        raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
    if not beta_types:
        return
    both_floats = isinstance(betas[0], float) and isinstance(betas[1], float)
    both_tensors = isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor)
    if not (both_floats or both_tensors):
        raise ValueError("betas must be either both floats or both Tensors")
    for i, beta in enumerate(betas):
        if isinstance(beta, Tensor) and beta.numel() != 1:
            raise ValueError(f"Tensor betas[{i}] must be 1-element")


@dataclass(frozen=True, slots=True)
class TrialHyperparams:
    """Hyperparameters of K packed trials for one update: per-trial values, shared flags.

    Built by `PackedAdam` whenever a value changes (not per step).

    Attributes:
        lr, beta1, beta2, eps, weight_decay, momentum_decay: K Python floats each, trial
            k's value at index k (units as in `AdamHyperparams`; momentum_decay 0 unless
            NAdam).
        active: K bools; inactive trials are not updated and their steps do not count.
        amsgrad, maximize, decoupled_weight_decay: shared by all trials.
        table: (7, K) float64 on the params' device, rows lr, beta1, beta2, eps,
            weight_decay, active (1.0/0.0), momentum_decay: what a kernel reads instead
            of host floats.
    """

    lr: tuple[float, ...]
    beta1: tuple[float, ...]
    beta2: tuple[float, ...]
    eps: tuple[float, ...]
    weight_decay: tuple[float, ...]
    active: tuple[bool, ...]
    amsgrad: bool
    maximize: bool
    decoupled_weight_decay: bool
    table: Tensor
    momentum_decay: tuple[float, ...] = ()

    def trial(self, k: int) -> AdamHyperparams:
        """Trial k's hyperparameters as a single-trial `AdamHyperparams`."""
        return AdamHyperparams(
            lr=self.lr[k],
            beta1=self.beta1[k],
            beta2=self.beta2[k],
            eps=self.eps[k],
            weight_decay=self.weight_decay[k],
            amsgrad=self.amsgrad,
            maximize=self.maximize,
            decoupled_weight_decay=self.decoupled_weight_decay,
            momentum_decay=self.momentum_decay[k] if self.momentum_decay else 0.0,
        )

    def groups(self) -> list[tuple[AdamHyperparams, list[int]]]:
        """Active trials grouped by equal hyperparameters, in order of first appearance.

        A backend that takes scalar hyperparameters makes one call per group.
        """
        groups: dict[AdamHyperparams, list[int]] = {}
        for k, on in enumerate(self.active):
            if on:
                groups.setdefault(self.trial(k), []).append(k)
        return list(groups.items())


def per_trial(name: str, value: float | Sequence[float] | Tensor, trials: int) -> list[float]:
    """`value` as K floats: a float is repeated, a sequence or tensor must have K values.

    Raises:
        ValueError: if a sequence or tensor does not hold exactly `trials` values.
    """
    if isinstance(value, Tensor):
        value = value.detach().cpu().reshape(-1).tolist()
    if isinstance(value, (int, float)):
        return [float(value)] * trials
    values = [float(v) for v in value]
    if len(values) != trials:
        raise ValueError(
            f"{name} must be a float or hold one value per trial (K={trials}), but got "
            f"{len(values)} values; pass a float to use one value for every trial"
        )
    return values


def validate_trial(
    k: int, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, momentum_decay: float | None = None
) -> None:
    """`validate_adam_args` for trial k, naming the trial in the error.

    Raises:
        ValueError: as `validate_adam_args`, prefixed with ``trial k:``.
    """
    try:
        validate_adam_args(lr, (beta1, beta2), eps, weight_decay, momentum_decay)
    except ValueError as e:
        raise ValueError(f"trial {k}: {e}") from None
