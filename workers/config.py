"""A trial's Adam config as one frozen value: torch's defaults, the value rules, the
keyword arguments of ``torch.optim.Adam``/``AdamW`` (``NAdam``, ``Adamax``) and
``workers.FusedAdam`` (``FusedNAdam``, ``FusedAdamax``), and the lr schedule.

A driver sends a trial a plain config (:data:`CONFIG_KEYS`)::

    {"lr": 0.003, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
     "warmup_fraction": 0.05, "schedule": "cosine", "amsgrad": False, "decoupled_weight_decay": False}

and every consumer reads it through :class:`AdamConfig`::

    adam = AdamConfig.from_config(config)                # validated, defaults filled in
    optimizer = FusedAdam(model.parameters(), **adam.torch_kwargs())
    scheduler = lr_scheduler(optimizer, **adam.schedule_kwargs(), total_steps=...)

The defaults are ``torch.optim.Adam``'s (torch/optim/adam.py: ``lr=1e-3,
betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
decoupled_weight_decay=False``) and a constant lr without warm-up. ``NAdam`` and
``Adamax`` default to ``lr=2e-3`` and otherwise the same values (:data:`DEFAULT_LRS`);
:meth:`AdamConfig.torch_defaults` is the config of any of the three at its defaults.

``algorithm`` picks the member of the Adam family (:data:`ALGORITHMS`): ``adam`` (the
default), ``nadam`` (``torch.optim.NAdam``, Dozat 2016, with ``momentum_decay`` at
torch's 4e-3 unless set) or ``adamax`` (``torch.optim.Adamax``). A config carries
``algorithm`` only when it is not ``adam``, and ``momentum_decay`` only with ``nadam``,
so an Adam trial's config is the same as before the other two existed.

The value rules (:data:`RULES`) are those a trial config and a search space's fixed
values, bounds and choices (``tuner.search_space``) meet alike. They follow
``torch.optim.Adam``'s own checks (torch/optim/adam.py: ``0 <= lr``,
``0 <= betas[i] < 1``, ``0 <= eps``, ``0 <= weight_decay``), two made strict for
tuning: ``lr > 0`` (lr 0 trains nothing) and ``eps > 0`` (with eps 0 a parameter whose
gradients are all 0 gets 0 / 0 = NaN from the update m_hat / (sqrt(v_hat) + eps),
Kingma & Ba 2014, Algorithm 1). ``beta = 1`` stays out: the moment estimate would never
move and the bias correction 1 - beta^t divides by 0. The schedule's formula is in
:mod:`workers.schedule`, which imports its names (:data:`SCHEDULES`) from here.

Importing this module imports neither torch nor any other ``workers`` module.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ALGORITHMS", "AdamConfig", "CONFIG_KEYS", "DEFAULT_LRS", "RULES", "SCHEDULES", "check_hyperparameter"]

SCHEDULES: tuple[str, ...] = ("constant", "cosine", "linear")
"""Schedule names: the lr after warm-up stays at its base value, or decays to 0 by a
half cosine or a straight line over the remaining steps (:mod:`workers.schedule`)."""

ALGORITHMS: tuple[str, ...] = ("adam", "nadam", "adamax")
"""The Adam family a trial may train with: ``torch.optim.Adam`` (``AdamW`` with decoupled
weight decay), ``NAdam`` and ``Adamax``; ``workers.FusedAdam``, ``FusedNAdam``,
``FusedAdamax``."""

DEFAULT_LRS: dict[str, float] = {"adam": 1e-3, "nadam": 2e-3, "adamax": 2e-3}
"""Each algorithm's default lr in ``torch.optim`` (torch/optim/adam.py ``lr=1e-3``; nadam.py and
adamax.py ``lr=2e-3``). Their other defaults are Adam's: betas (0.9, 0.999), eps 1e-8,
weight_decay 0 (and NAdam's momentum_decay 4e-3), the :class:`AdamConfig` fields'."""

#: algorithm -> (its torch.optim class, its workers.optim class)
_CLASSES = {"adam": ("Adam", "FusedAdam"), "nadam": ("NAdam", "FusedNAdam"), "adamax": ("Adamax", "FusedAdamax")}
_NAMES = ("schedule", "algorithm")  # hyperparameters whose values are names

#: hyperparameter -> (predicate on a checked value, the rule as the error states it)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (lambda v: v > 0, "lr > 0 must hold"),
    "beta1": (lambda v: 0 <= v < 1, "0 <= beta1 < 1 must hold"),
    "beta2": (lambda v: 0 <= v < 1, "0 <= beta2 < 1 must hold"),
    "eps": (lambda v: v > 0, "eps > 0 must hold"),
    "weight_decay": (lambda v: v >= 0, "weight_decay >= 0 must hold"),
    "warmup_fraction": (
        lambda v: 0 <= v < 1,
        "0 <= warmup_fraction < 1 must hold (a fraction of the optimizer steps; 0 for no warm-up)",
    ),
    "schedule": (lambda v: v in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
    "algorithm": (lambda v: v in ALGORITHMS, f"algorithm must be one of {', '.join(ALGORITHMS)}"),
    "momentum_decay": (lambda v: v >= 0, "momentum_decay >= 0 must hold"),
}

_REQUIRED = ("lr", "beta1", "beta2", "eps")
_OPTIONAL = (
    "weight_decay",
    "decoupled_weight_decay",
    "amsgrad",
    "schedule",
    "warmup_fraction",
    "algorithm",
    "momentum_decay",
)
_REALS = (*_REQUIRED, "weight_decay", "momentum_decay")
_FLAGS = ("amsgrad", "decoupled_weight_decay")


def check_hyperparameter(key: str, value: Any) -> None:
    """Check one hyperparameter's value against :data:`RULES`.

    Args:
        key: a key of :data:`RULES` (``lr``, ``beta1``, …, ``schedule``, ``algorithm``).
        value: a real number (not a bool; NaN fails every rule), or for ``schedule`` and
            ``algorithm`` a name.

    Raises:
        KeyError: ``key`` has no rule.
        ValueError: ``"<rule>, but got <key>=<value>"``.
    """
    ok, rule = RULES[key]
    numeric = key not in _NAMES
    bad_type = numeric and (isinstance(value, bool) or not isinstance(value, numbers.Real))
    if bad_type or (numeric and math.isnan(value)) or not ok(value):
        raise ValueError(f"{rule}, but got {key}={value!r}")


@dataclass(frozen=True)
class AdamConfig:
    """One trial's Adam hyperparameters and lr schedule, validated (defaults: ``torch.optim.Adam``'s).

    The field order is the key order of a trial config as sweeps store it
    (:meth:`to_config`).

    Args:
        lr: base learning rate, > 0 (the schedule scales it per optimizer step).
        beta1, beta2: decay rates of the first and second moment estimates, in [0, 1).
        eps: added to the denominator sqrt(v_hat) + eps, > 0.
        weight_decay: L2 penalty (added to the gradient), or with
            ``decoupled_weight_decay`` the AdamW decay ``p *= 1 - lr * weight_decay``; >= 0.
        warmup_fraction: fraction of the optimizer steps over which the lr rises
            linearly, in [0, 1).
        schedule: the lr after warm-up, one of :data:`SCHEDULES`.
        amsgrad: use the maximum of past ``exp_avg_sq`` (Reddi et al. 2018).
        decoupled_weight_decay: AdamW semantics for ``weight_decay`` (Loshchilov & Hutter 2019);
            NAdamW with ``nadam``.
        algorithm: one of :data:`ALGORITHMS`.
        momentum_decay: NAdam's momentum schedule psi (``torch.optim.NAdam``), >= 0; used
            by ``nadam`` only.

    Raises:
        ValueError: a number that is not a real number (a bool is not), a flag that is
            not a bool, or a value that breaks its rule in :data:`RULES` (checked in that
            order: the numbers' types, their rules, the flags, then ``schedule``,
            ``warmup_fraction`` and ``algorithm``), or an option the algorithm's torch
            optimizer lacks (``amsgrad`` other than with adam, ``decoupled_weight_decay``
            with adamax).
    """

    lr: float = DEFAULT_LRS["adam"]
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_fraction: float = 0.0
    schedule: str = "constant"
    amsgrad: bool = False
    decoupled_weight_decay: bool = False
    algorithm: str = "adam"
    momentum_decay: float = 4e-3

    def __post_init__(self) -> None:
        for key in _REALS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"config[{key!r}] must be a real number, but got {value!r}")
        for key in _REALS:
            check_hyperparameter(key, getattr(self, key))
        for key in _FLAGS:
            if getattr(self, key) not in (True, False):  # also accepts numpy.bool_
                raise ValueError(f"config[{key!r}] must be a bool, but got {getattr(self, key)!r}")
        check_hyperparameter("schedule", self.schedule)
        check_hyperparameter("warmup_fraction", self.warmup_fraction)
        check_hyperparameter("algorithm", self.algorithm)
        if self.amsgrad and self.algorithm != "adam":
            raise ValueError(
                f"amsgrad is an option of Adam only, but got algorithm={self.algorithm!r} with amsgrad=True"
            )
        if self.decoupled_weight_decay and self.algorithm == "adamax":
            raise ValueError(
                "torch.optim.Adamax has no decoupled weight decay, but got algorithm='adamax' with "
                "decoupled_weight_decay=True"
            )
        for key in (*_REALS, "warmup_fraction"):
            object.__setattr__(self, key, float(getattr(self, key)))
        for key in _FLAGS:
            object.__setattr__(self, key, bool(getattr(self, key)))

    @classmethod
    def torch_defaults(cls, algorithm: str = "adam", **fields: Any) -> AdamConfig:
        """The config of ``algorithm``'s torch optimizer at its defaults: ``lr`` from
        :data:`DEFAULT_LRS` (2e-3 for nadam and adamax), every other field at its default.

        Args:
            algorithm: one of :data:`ALGORITHMS`.
            fields: other fields to set, e.g. ``amsgrad`` or ``decoupled_weight_decay``.

        Raises:
            ValueError: ``algorithm`` is not one of :data:`ALGORITHMS`, or a bad field (see the class).
        """
        check_hyperparameter("algorithm", algorithm)
        return cls(lr=DEFAULT_LRS[algorithm], algorithm=algorithm, **fields)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AdamConfig:
        """The value of a trial config as a driver sends it.

        Args:
            config: ``lr``, ``beta1``, ``beta2``, ``eps`` (required, real numbers) and
                optionally ``weight_decay``, ``amsgrad``, ``decoupled_weight_decay``,
                ``schedule``, ``warmup_fraction``, ``algorithm``, ``momentum_decay``
                (defaults as the fields'). Keys outside
                :data:`CONFIG_KEYS` are ignored (a driver may add bookkeeping such as
                ``trial_number``; the sweep spec validates hyperparameter names).

        Raises:
            KeyError: a required key is missing.
            ValueError: a bad value (see the class).
        """
        missing = [key for key in _REQUIRED if key not in config]
        if missing:
            raise KeyError(
                f"config is missing required key(s) {missing}; a trial config needs "
                f"{list(_REQUIRED)} and may set {list(_OPTIONAL)}"
            )
        return cls(**{key: config[key] for key in (*_REQUIRED, *_OPTIONAL) if key in config})

    def to_config(self) -> dict[str, Any]:
        """The plain trial config: the keys of :data:`CONFIG_KEYS` in field order, but
        ``algorithm`` only when not ``adam`` and ``momentum_decay`` only with ``nadam``."""
        config = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.algorithm == "adam":
            del config["algorithm"]
        if self.algorithm != "nadam":
            del config["momentum_decay"]
        return config

    @property
    def betas(self) -> tuple[float, float]:
        """``(beta1, beta2)``, as ``torch.optim.Adam`` takes them."""
        return (self.beta1, self.beta2)

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the algorithm's torch optimizer and fused class (floats, a
        tuple of two floats, bools): for adam, ``torch.optim.Adam`` (torch >= 2.6),
        ``workers.FusedAdam`` and ``workers.PackedAdam``'s row values, ``{"lr", "betas",
        "eps", "weight_decay", "amsgrad", "decoupled_weight_decay"}``; for nadam
        (``torch.optim.NAdam``, ``workers.FusedNAdam``) ``{"lr", "betas", "eps",
        "weight_decay", "momentum_decay", "decoupled_weight_decay"}``; for adamax
        (``torch.optim.Adamax``, ``workers.FusedAdamax``) ``{"lr", "betas", "eps",
        "weight_decay"}``."""
        kwargs: dict[str, Any] = {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }
        if self.algorithm == "adam":
            kwargs["amsgrad"] = self.amsgrad
        if self.algorithm == "nadam":
            kwargs["momentum_decay"] = self.momentum_decay
        if self.algorithm != "adamax":
            kwargs["decoupled_weight_decay"] = self.decoupled_weight_decay
        return kwargs

    def torch_optimizer(self) -> tuple[str, dict[str, Any]]:
        """The ``torch.optim`` class name and its keyword arguments, for any torch version:
        for adam ``("AdamW", kwargs)`` where weight decay is decoupled, else ``("Adam", kwargs)``,
        with ``kwargs = {"lr", "betas", "eps", "weight_decay", "amsgrad"}`` (``AdamW`` is
        ``Adam`` with ``decoupled_weight_decay=True``, torch/optim/adamw.py); for nadam and
        adamax ``("NAdam", ...)`` / ``("Adamax", ...)`` with :meth:`torch_kwargs`. Build it
        with ``getattr(torch.optim, name)(params, **kwargs)``."""
        kwargs = self.torch_kwargs()
        if self.algorithm != "adam":
            return _CLASSES[self.algorithm][0], kwargs
        decoupled = kwargs.pop("decoupled_weight_decay")
        return ("AdamW" if decoupled else "Adam"), kwargs

    def fused_optimizer(self) -> tuple[str, dict[str, Any]]:
        """The ``workers.optim`` class of the algorithm (``FusedAdam``, ``FusedNAdam``,
        ``FusedAdamax``) and its keyword arguments (:meth:`torch_kwargs`); build it with
        ``getattr(workers.optim, name)(params, **kwargs)``."""
        return _CLASSES[self.algorithm][1], self.torch_kwargs()

    def schedule_kwargs(self) -> dict[str, Any]:
        """``{"schedule": str, "warmup_fraction": float}``, the keyword arguments of
        :func:`workers.schedule.lr_multiplier` and :func:`workers.schedule.lr_scheduler` but
        ``total_steps``."""
        return {"schedule": self.schedule, "warmup_fraction": self.warmup_fraction}

    @property
    def scheduled(self) -> bool:
        """Whether the lr changes over training (False: a constant schedule without warm-up,
        which needs no scheduler)."""
        return self.schedule != "constant" or self.warmup_fraction > 0


CONFIG_KEYS: frozenset[str] = frozenset(f.name for f in fields(AdamConfig))
"""Every key of a trial config that changes training (:meth:`AdamConfig.from_config` reads these)."""
