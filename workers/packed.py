"""Train K Adam configurations of one workload as one stacked model (a *pack*).

Adam's hyperparameters do not change a model's shapes, so K trials of one workload
train together: the K models' parameters are stacked along a leading trial
dimension (``torch.func.stack_module_state``), one ``vmap``-ed ``functional_call``
runs the K forwards and backwards (for an MLP, batched matmuls instead:
:mod:`workers._stacked`), and one :class:`~workers.optim.PackedAdam` step updates
all K rows, each with its own ``lr``, ``betas``, ``eps`` and ``weight_decay``
(HFTA, Wang et al., MLSys 2021). Each member also follows its own lr schedule
(:mod:`workers.schedule`) over its own steps: before a step, the optimizer gets the K
lrs ``base_lr * lr_multiplier(step)`` that ``train``'s ``LambdaLR`` would set.

Packing varies the optimizer hyperparameters only. Every member starts from the
weights :func:`workers.training.train` starts from for the same ``seed``, and in
its own epoch ``e`` sees the same mini-batches in the same order as ``train``'s
epoch ``e``; so a member's curve equals the curve ``train`` gives for its config,
up to float32 rounding (a stacked matmul sums in another order than a single one).

Members are independent: the pack's loss is the *sum* of each member's mean loss,
so each member's gradient is exactly its single-model gradient, and a member that
diverges (NaN/inf) or is stopped leaves the computation (only the running members'
rows are gathered for the forward and backward) and is frozen in the optimizer,
without touching the others. A freed slot can take a new configuration
(:meth:`PackedTrainer.assign`): its rows restart from the initial weights with a
fresh optimizer state, and it follows its own epoch count from 1.

Like :mod:`workers.training`, this module knows nothing of Ray, Optuna or MLflow.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap

from workers._loop import autocast, check_metric_keys, check_steps, mean_metrics, phase
from workers._stacked import stacked_forward
from workers.config import AdamConfig
from workers.optim import PackedAdam
from workers.schedule import lr_multiplier
from workers.training import divergence
from workers.workloads import Workload, get_workload

__all__ = ["PackedTrainer", "SlotState", "stacked_forward", "train_packed"]

SlotState = Literal["free", "running", "stopped", "finished"]
"""A slot's state: ``free`` (no trial yet), ``running`` (trains at the next epoch),
``stopped`` (by :meth:`PackedTrainer.stop`, or after diverging), ``finished``
(reached ``max_epochs``)."""

_FLAGS = ("amsgrad", "decoupled_weight_decay", "algorithm")


class PackedTrainer:
    """K trials of one workload trained as one stacked model, one epoch per call.

    Slots are numbered ``0 .. size - 1``; slot ``k`` starts with ``configs[k]``
    (``None``: free until :meth:`assign`). The caller drives epochs with
    :meth:`run_epoch` and, between epochs, stops slots (:meth:`stop`) and fills
    free, stopped or finished slots with new trials (:meth:`assign`).

    Construction loads the data, builds the stacked model and runs one untimed
    forward/backward (``vmap`` warm-up) without touching weights or optimizer state,
    so a caller can build the pack while it prepares the trials.

    Args:
        configs: one trial config (or ``None``) per slot, as for
            :func:`workers.training.train` (``lr``, ``beta1``, ``beta2``, ``eps``,
            optional ``weight_decay``, ``amsgrad``, ``decoupled_weight_decay``,
            ``schedule``, ``warmup_fraction``, ``algorithm``, ``momentum_decay``;
            other keys ignored).
        amsgrad, decoupled_weight_decay, algorithm: the pack's update rule, shared by
            every trial in it (they select the rule, not a per-row value: one algorithm
            per pack, ``PackedAdam(algorithm=...)``); ``None``: that of the configs, which
            must agree (``False`` / ``"adam"`` if there are none). NAdam's
            ``momentum_decay`` is a per-row value.
        workload: a registered name, a ``module:Class`` reference or an instance whose
            ``can_pack`` is true.
        workload_args: keyword arguments of the class a name refers to (the spec's
            ``workload_args``); unused for an instance.
        max_epochs: epochs each member trains unless stopped, >= 1.
        seed: seeds the (shared) initial weights and the batch order, as in ``train``.
        device: torch device, e.g. ``"cpu"`` or ``"cuda:0"``.
        num_threads: if given, ``torch.set_num_threads(num_threads)`` (process-wide).
        diagnostics: add each member's optimizer-state diagnostics to its rows, as
            ``train(..., diagnostics=True)`` does (``adam_eps_dominated_frac``,
            ``adam_update_rms_ratio``, ``adam_nonfinite``; see ``PackedAdam.diagnostics``).

    Raises:
        KeyError: a config lacks a required key.
        ValueError: a bad config value, configs that disagree on ``amsgrad``,
            ``decoupled_weight_decay`` or ``algorithm`` (with each other or the arguments), no slots,
            a workload that cannot pack,
            ``max_epochs`` < 1 or ``num_threads`` < 1.
        UnknownWorkloadError: ``workload`` names no registered workload.
    """

    def __init__(
        self,
        configs: Sequence[Mapping[str, Any] | None],
        *,
        workload: str | Workload,
        workload_args: Mapping[str, Any] | None = None,
        max_epochs: int,
        seed: int = 0,
        device: str = "cpu",
        num_threads: int | None = None,
        amsgrad: bool | None = None,
        decoupled_weight_decay: bool | None = None,
        diagnostics: bool = False,
        algorithm: str | None = None,
    ) -> None:
        adams = [None if c is None else AdamConfig.from_config(c) for c in configs]
        if not adams:
            raise ValueError("a pack needs at least one slot, but got no configs")
        first = next((a for a in adams if a is not None), AdamConfig())
        flags = {"amsgrad": amsgrad, "decoupled_weight_decay": decoupled_weight_decay, "algorithm": algorithm}
        self._flags = {key: getattr(first, key) if value is None else value for key, value in flags.items()}
        for key in ("amsgrad", "decoupled_weight_decay"):
            self._flags[key] = bool(self._flags[key])
        for k, adam in enumerate(adams):
            if adam is not None:
                self._check_flags(k, adam)
        _check_int("max_epochs", max_epochs)
        if num_threads is not None:
            _check_int("num_threads", num_threads)
        resolved = get_workload(workload, workload_args) if isinstance(workload, str) else workload
        if not isinstance(resolved, Workload):
            raise TypeError(f"workload must be a name or a Workload, but got {type(workload).__name__}")
        if not resolved.can_pack:
            raise ValueError(
                f"workload {resolved.name!r} cannot pack (its can_pack is False: its model has buffers "
                "or state, or its loss is not a pure function); train its trials one by one"
            )
        if num_threads is not None:
            torch.set_num_threads(num_threads)

        self.workload = resolved
        self.max_epochs = max_epochs
        self._diagnostics = diagnostics
        self.size = len(adams)
        self._device = device = torch.device(device)
        self._seed = seed
        first_x, first_y = next(iter(resolved.train_batches(1, seed)))  # (B, ...): shapes for the warm-up
        self._first = first_x.to(device), first_y.to(device)

        base = resolved.build_model(seed).to(device)
        params, buffers = stack_module_state([base] * self.size)  # each (K, *shape), K equal rows
        self._params: dict[str, Tensor] = params
        self._buffers: dict[str, Tensor] = buffers
        self._initial = {name: p.detach().clone() for name, p in base.named_parameters()}  # (*shape) each
        self._model = copy.deepcopy(base).to("meta")  # the structure only, for functional_call
        # A free slot's rows hold torch's defaults (never stepped: it is inactive until assigned).
        rows = [adam or AdamConfig() for adam in adams]
        self._lr = [row.lr for row in rows]  # each slot's base lr, which its schedule scales
        self._adams = adams  # each slot's config (None: free), for its lr schedule
        self._optimizer = PackedAdam(
            list(params.values()),
            lr=[row.lr for row in rows],
            betas=([row.beta1 for row in rows], [row.beta2 for row in rows]),
            eps=[row.eps for row in rows],
            weight_decay=[row.weight_decay for row in rows],
            amsgrad=self._flags["amsgrad"],
            decoupled_weight_decay=self._flags["decoupled_weight_decay"],
            algorithm=self._flags["algorithm"],
            momentum_decay=[row.momentum_decay for row in rows] if self._flags["algorithm"] == "nadam" else None,
        )

        self._n_steps = resolved.steps_per_epoch()
        self._total_steps = max_epochs * self._n_steps  # a member's schedule spans its max_epochs

        self._state: list[SlotState] = ["free" if adam is None else "running" for adam in adams]
        self._epoch = [0] * self.size  # epochs each slot's current trial has completed
        self._optimizer.set_active([s == "running" for s in self._state])

        # (R,) losses of the R members whose (R, ...) params are given; batches shared by
        # all members, or one batch per member. (R, B_val, ...) outputs for a validation batch.
        stacked = stacked_forward(base) if first_x.dim() == 2 else None
        if stacked is None:  # any model that can pack: vmap over functional_call

            def member_forward(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
                with _vmap_safe_attention(self._device):
                    return functional_call(self._model, (p, b), (x,))

            def member_loss(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
                return resolved.loss(member_forward(p, b, x), y)  # () per member

            self._loss_shared = vmap(member_loss, in_dims=(0, 0, None, None))
            self._loss_each = vmap(member_loss, in_dims=(0, 0, 0, 0))
            self._forward = vmap(member_forward, in_dims=(0, 0, None))
        else:  # an MLP: batched matmuls (workers._stacked), the loss vmapped over the members' outputs
            loss_shared, loss_each = vmap(resolved.loss, in_dims=(0, None)), vmap(resolved.loss, in_dims=(0, 0))
            self._loss_shared = lambda p, b, x, y: loss_shared(stacked(p, x), y)
            self._loss_each = lambda p, b, x, y: loss_each(stacked(p, x), y)
            self._forward = lambda p, b, x: stacked(p, x)
        self._warm_up()

    # -- slots -------------------------------------------------------------------------------

    def state(self, slot: int) -> SlotState:
        """The state of ``slot``."""
        return self._state[self._slot(slot)]

    def epoch(self, slot: int) -> int:
        """Epochs the current trial of ``slot`` has completed."""
        return self._epoch[self._slot(slot)]

    def running(self) -> list[int]:
        """Slots that train at the next :meth:`run_epoch`, ascending."""
        return [k for k, s in enumerate(self._state) if s == "running"]

    def stop(self, slot: int) -> None:
        """Stop ``slot``'s trial: its rows are frozen and leave the loss. No-op unless running."""
        if self._state[self._slot(slot)] == "running":
            self._freeze(slot, "stopped")

    def assign(self, slot: int, config: Mapping[str, Any]) -> None:
        """Start a new trial with ``config`` in a slot that is not running (a free slot, or a refill).

        Its rows restart from the initial weights with a fresh optimizer state
        (step 0), and it trains its own epochs 1, 2, … with ``train``'s batches and its
        own lr schedule from step 0.

        Raises:
            KeyError, ValueError: a bad config (as :func:`workers.training.train`), or
                ``amsgrad``/``decoupled_weight_decay``/``algorithm`` differing from the pack's.
            RuntimeError: the slot is still running (stop it first).
        """
        slot = self._slot(slot)
        adam = AdamConfig.from_config(config)
        self._check_flags(slot, adam)
        if self._state[slot] == "running":
            raise RuntimeError(f"slot {slot} is still running; stop() it before assigning a new config")
        self._reset_weights(slot)
        self._optimizer.reset_trial(slot)
        self._optimizer.set_hyperparameters(
            slot,
            lr=adam.lr,
            betas=adam.betas,
            eps=adam.eps,
            weight_decay=adam.weight_decay,
            momentum_decay=adam.momentum_decay if adam.algorithm == "nadam" else None,
        )
        self._lr[slot], self._adams[slot] = adam.lr, adam
        self._state[slot] = "running"
        self._epoch[slot] = 0
        self._optimizer.set_active([s == "running" for s in self._state])

    def state_dict(self, slot: int) -> dict[str, Tensor]:
        """``slot``'s current weights (copies), loadable into ``workload.build_model(seed)``.

        A diverged slot's weights are reset to the initial ones (its NaN/inf are dropped).
        """
        slot = self._slot(slot)
        return {name: p[slot].detach().clone() for name, p in {**self._params, **self._buffers}.items()}

    # -- training ----------------------------------------------------------------------------

    def run_epoch(
        self, *, stop: Iterable[int] = (), assign: Mapping[int, Mapping[str, Any]] | None = None
    ) -> dict[int, dict[str, Any]]:
        """Train every running slot for one epoch of its own trial and evaluate it.

        ``stop`` and ``assign`` apply first, as :meth:`stop` for each slot in ``stop``
        and then :meth:`assign` for each ``{slot: config}``, so a remote caller changes
        the pack and starts its next epoch in one call (one round trip per epoch).

        Returns:
            ``{slot: row}`` for the slots that trained, ``row`` shaped exactly as
            :func:`workers.training.train`'s: ``{"epoch", "train_loss", **metrics}``
            (and the ``adam_*`` diagnostics if asked for),
            plus ``"diverged": True`` and ``"reason"`` for a member whose loss or a
            metric became non-finite (that slot is then ``stopped``). A slot that
            reaches ``max_epochs`` becomes ``finished``. Empty when nothing runs.

        Raises:
            As :meth:`stop` and :meth:`assign`; an error there leaves the epoch untrained.
        """
        for slot in stop:
            self.stop(slot)
        for slot, config in (assign or {}).items():
            self.assign(slot, config)
        running = self.running()
        if not running:
            return {}
        workload, device = self.workload, self._device
        epochs = [self._epoch[k] + 1 for k in running]
        # One batch stream per distinct epoch: members at the same epoch share its batches
        # (after a refill, members at different epochs each take their own epoch's batch).
        streams = {e: iter(workload.train_batches(e, self._seed)) for e in sorted(set(epochs))}
        # Only the R running rows train: a pack with stopped members costs what a pack of
        # R costs (gathered per step, so autograd scatters the grads back into the (K, ...)
        # tensors, with exact zeros in the other rows, which the optimizer leaves frozen).
        rows = None if len(running) == self.size else torch.tensor(running, device=device)  # (R,)
        loss = self._loss_shared if len(streams) == 1 else self._loss_each
        losses = torch.zeros(len(running), self._n_steps, dtype=torch.float32, device=device)  # (R, n_steps)
        sizes: list[int] = []  # samples per step
        lrs = self._lr_plan(running, epochs)  # (n_steps + 1, K) or None: set as train's LambdaLR sets them
        if lrs is not None:
            self._optimizer.set_lrs(lrs[0])

        self._model.train()
        for step in range(self._n_steps):
            with phase("data"):
                batch = {e: next(stream, None) for e, stream in streams.items()}
                if any(b is None for b in batch.values()):
                    check_steps(workload, min(e for e, b in batch.items() if b is None), step, self._n_steps)
                if len(streams) == 1:
                    [(x, y)] = batch.values()  # (B, ...), (B, ...): shared by all members
                else:
                    x = torch.stack([batch[e][0] for e in epochs])  # (R, B, ...)
                    y = torch.stack([batch[e][1] for e in epochs])  # (R, B, ...)
                x, y = x.to(device), y.to(device)
            with phase("forward_backward"):
                with autocast(workload, device):
                    member = loss(_take(self._params, rows), _take(self._buffers, rows), x, y)  # (R,)
                # Sum, not mean: each member's gradient is its own single-model gradient,
                # and one that turns NaN mid-epoch sends NaN only into its own rows.
                self._optimizer.zero_grad(set_to_none=True)
                member.sum().backward()
            with phase("optimizer"):
                if workload.grad_clip_norm is not None:
                    self._clip_grads(workload.grad_clip_norm)
                self._optimizer.step()
                if lrs is not None:
                    self._optimizer.set_lrs(lrs[step + 1])
            losses[:, step] = member.detach()
            sizes.append(y.shape[0] if len(streams) == 1 else y.shape[1])
        for e, stream in streams.items():
            if next(stream, None) is not None:
                check_steps(workload, e, self._n_steps + 1, self._n_steps)

        per_batch: list[list[dict[str, float]]] = [[] for _ in running]  # member -> one dict per val batch
        val_sizes: list[int] = []
        self._model.eval()
        with torch.no_grad(), phase("validation"):
            for x_val, y_val in workload.val_batches():  # streamed: memory for one batch x R members
                x_val, y_val = x_val.to(device), y_val.to(device)  # (B_val, ...), (B_val, ...)
                val_sizes.append(y_val.shape[0])
                with autocast(workload, device):
                    outputs = self._forward(
                        _take(self._params, rows), _take(self._buffers, rows), x_val
                    )  # (R, B_val, ...)
                for j in range(len(running)):
                    per_batch[j].append(workload.evaluate(outputs[j].float(), y_val))
        weights = torch.tensor(sizes, dtype=torch.float64, device=device)  # (n_steps,)
        diagnostics = self._optimizer.diagnostics() if self._diagnostics else {}  # key -> K floats
        results: dict[int, dict[str, Any]] = {}
        for j, (k, epoch) in enumerate(zip(running, epochs)):
            metrics = mean_metrics(per_batch[j], val_sizes)
            check_metric_keys(workload, metrics)
            self._epoch[k] = epoch
            train_loss = float((losses[j].double() * weights).sum() / sum(sizes))
            row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, **metrics}
            row.update({f"adam_{key}": values[k] for key, values in diagnostics.items()})
            reason = divergence(losses[j], metrics, epoch)
            if reason is not None:
                row["diverged"] = True
                row["reason"] = reason
                self._freeze(k, "stopped")
                self._reset_weights(k)  # keeps NaN/inf out of later arithmetic on the frozen rows
            elif epoch >= self.max_epochs:
                self._freeze(k, "finished")
            results[k] = row
        return results

    # -- internals ---------------------------------------------------------------------------

    def _warm_up(self) -> None:
        """One forward/backward on the first batch and one validation forward, results dropped.

        The first vmapped calls cost ~10x the later ones (dispatch and kernel setup);
        paying them here moves that out of the first epoch. Grads are zeroed after;
        weights and optimizer state are untouched.
        """
        x, y = self._first  # (B, ...), (B, ...)
        self._model.train()
        with autocast(self.workload, self._device):
            self._loss_shared(self._params, self._buffers, x, y).sum().backward()
        self._optimizer.zero_grad(set_to_none=True)
        self._model.eval()
        with torch.no_grad(), autocast(self.workload, self._device):
            self._forward(self._params, self._buffers, next(iter(self.workload.val_batches()))[0].to(self._device))

    @torch.no_grad()
    def _clip_grads(self, max_norm: float) -> None:
        """``torch.nn.utils.clip_grad_norm_`` per member: each row's gradient over all
        params is scaled by ``min(1, max_norm / (norm + 1e-6))`` (torch's formula)."""
        grads = [p.grad for p in self._params.values() if p.grad is not None]  # each (K, ...)
        norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # (P, K)
        total = torch.linalg.vector_norm(norms, dim=0)  # (K,) each member's global norm
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)  # (K,)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))

    def _lr_plan(self, running: list[int], epochs: list[int]) -> list[list[float]] | None:
        """The K lrs of each step of this epoch and of the step after it, ``(n_steps + 1, K)``
        as lists; None if no running member's lr changes (a constant schedule without warm-up).

        Member k at its own epoch e takes step s of the epoch as its optimizer step
        ``(e - 1) * n_steps + s`` and gets ``base_lr * lr_multiplier(...)``, the product
        ``LambdaLR`` forms in ``train``; other slots keep their base lr. Like ``LambdaLR``
        after its ``step()``, the optimizer holds the next step's lrs after each step, and
        so after the epoch (the ``adam_update_rms_ratio`` diagnostic reads them).
        """
        scheduled = [(k, (epoch - 1) * self._n_steps) for k, epoch in zip(running, epochs) if self._adams[k].scheduled]
        if not scheduled:
            return None
        plan, lrs = [], list(self._lr)
        for step in range(self._n_steps + 1):
            for k, first in scheduled:
                lrs[k] = self._lr[k] * lr_multiplier(
                    first + step, **self._adams[k].schedule_kwargs(), total_steps=self._total_steps
                )
            plan.append(list(lrs))
        return plan

    def _slot(self, slot: int) -> int:
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < self.size:
            raise IndexError(f"slot must be an int in [0, {self.size}), but got {slot!r}")
        return slot

    def _check_flags(self, slot: int, adam: AdamConfig) -> None:
        for key in _FLAGS:
            if getattr(adam, key) != self._flags[key]:
                raise ValueError(
                    f"every config of a pack must have the same {key}, but slot {slot} has "
                    f"{key}={getattr(adam, key)} and the pack {key}={self._flags[key]}; pack them separately"
                )

    def _freeze(self, slot: int, state: SlotState) -> None:
        self._state[slot] = state
        self._optimizer.set_active([s == "running" for s in self._state])

    @torch.no_grad()
    def _reset_weights(self, slot: int) -> None:
        for name, p in self._params.items():
            p[slot].copy_(self._initial[name])


def _vmap_safe_attention(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """On CUDA, ``scaled_dot_product_attention`` on its math backend inside ``vmap``.

    Under ``vmap`` the fused CUDA kernels get batched tensors whose strides they reject
    (seen on an H200, torch 2.11: the memory-efficient kernel's backward raises "LSE is
    not correctly aligned (strideH)" for char_lm); the math backend is plain batched
    matmuls and softmax. Elsewhere SDPA picks its backend as usual.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def _take(tensors: dict[str, Tensor], rows: Tensor | None) -> dict[str, Tensor]:
    """Rows ``rows`` of each (K, ...) tensor, as (R, ...) tensors autograd tracks back (``None``: all, as they are)."""
    return tensors if rows is None else {name: t[rows] for name, t in tensors.items()}


def train_packed(
    configs: Sequence[Mapping[str, Any]],
    *,
    workload: str | Workload,
    max_epochs: int,
    seed: int = 0,
    device: str = "cpu",
    num_threads: int | None = None,
    diagnostics: bool = False,
) -> Generator[list[dict[str, Any] | None], Iterable[int] | None, None]:
    """Train ``configs`` as one pack; yield each epoch's per-member metrics.

    The packed counterpart of :func:`workers.training.train` (same arguments, one
    config per member; see :class:`PackedTrainer`). Stop members between epochs with
    ``gen.send(members)`` (an iterable of member indices, e.g. ``{2, 5}``): that
    ``send`` returns the next epoch's list. The generator ends when no member runs.

    Yields:
        A list with one entry per member: its row for this epoch (as ``train``
        yields, including ``diverged``/``reason``), or ``None`` if it no longer runs.

    Raises:
        As :class:`PackedTrainer`, when called.
    """
    trainer = PackedTrainer(
        configs,
        workload=workload,
        max_epochs=max_epochs,
        seed=seed,
        device=device,
        num_threads=num_threads,
        diagnostics=diagnostics,
    )
    return _drive(trainer)


def _drive(trainer: PackedTrainer) -> Generator[list[dict[str, Any] | None], Iterable[int] | None, None]:
    while trainer.running():
        rows = trainer.run_epoch()
        stops = yield [rows.get(k) for k in range(trainer.size)]
        for k in stops or ():
            trainer.stop(k)


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, but got {value!r}")
