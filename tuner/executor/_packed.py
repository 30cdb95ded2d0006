"""Packed execution: K configurations per Ray actor, trained as one stacked model.

The driver asks the sweep's study protocol (:class:`~tuner.executor._study.SweepStudy`,
the same as standard execution's, its window every slot) for configurations and keeps a
few *lanes* busy: one Ray actor each (``workers.packed.PackedTrainer``, resources
as for one trial), holding up to ``pack_size`` trials in its slots. Each call
trains one epoch of every running slot and returns one metric row per slot; the
driver, the only writer of the stores, records each row as its own trial's epoch
(Optuna intermediate value, MLflow child run through the observers: the same events
as the standard mode), stops a member where the study's ASHA rule says so, and
between epochs refills freed slots with the study's next trials until ``n_trials``
have started (a slot stays free while the study waits for a running trial). A lane
whose slots are all done ends.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.executor._cancel import Cancel
from tuner.executor._events import SweepObserver
from tuner.executor._outcome import classify
from tuner.executor._study import Asked, SweepStudy
from tuner.records import Outcome

if TYPE_CHECKING:
    import optuna

    from tuner.spec import SweepSpec

__all__ = ["lane_count", "run_packed"]

# Keys of a worker row that are not metrics.
_NOT_METRICS = {"epoch", "diverged", "reason", "error"}


def run_packed(
    spec: SweepSpec,
    *,
    n_trials: int,
    storage: optuna.storages.BaseStorage,
    observer: SweepObserver,
    ray_storage: Path | None = None,
    ray_address: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> str | None:
    """Run ``n_trials`` new trials of ``spec`` in packs of ``spec.pack_size`` on Ray; returns why
    the study stopped early (``fail_fast``), else ``None``.

    Arguments as for :func:`tuner.executor.run_standard` (``ray_storage`` is unused:
    packs keep no Ray Tune experiment files). Packs run at once as Ray's free
    resources allow, one trial's resources each, never more than there are trials to
    fill them; on a local Ray one CPU is left to the driver, which records every
    epoch of every member and on small models is the bottleneck.

    The workload must pack: the caller checked it (:func:`tuner.workload.check_workload`, whose
    :attr:`~tuner.workload.WorkloadInfo.can_pack` :func:`tuner.executor.execute` is given); it is
    not imported again here.
    """
    import ray

    from tuner.executor._ray import init_ray, sweep_runtime_env

    init_ray(ray_address, sweep_runtime_env(spec))
    driver = _Driver(spec, n_trials=n_trials, storage=storage, observer=observer, cancel=Cancel(should_stop))
    driver.run(
        lanes=lane_count(spec, n_trials, ray.available_resources(), driver_cpus=1.0 if ray_address is None else 0.0)
    )
    return driver.study.stopped


def lane_count(spec: SweepSpec, n_trials: int, available: Mapping[str, float], *, driver_cpus: float = 0.0) -> int:
    """How many packs to run at once: as many as fit in ``available`` Ray resources
    (less ``driver_cpus``), one trial's resources each (:func:`~tuner.executor._ray.concurrency`),
    and as ``n_trials`` fill; at least one.

    Measured on 2 CPUs, digits_mlp, 32 trials: one pack next to the driver finished the
    sweep in 6 s, two packs competing with the driver for the CPUs in 7-10 s.
    """
    from tuner.executor._ray import concurrency

    return min(concurrency(spec, n_trials, available, driver_cpus=driver_cpus), math.ceil(n_trials / spec.pack_size))


@dataclass
class _Member:
    """A trial in a lane's slot, with its last row (``None`` before its first epoch) and, once ended, its outcome."""

    asked: Asked
    last: dict[str, Any] | None = None
    outcome: Outcome | None = None
    failures: int = 0  # times its pack's worker died under it


@dataclass
class _Lane:
    """One actor and the trials in its slots (``None``: a free slot)."""

    actor: Any
    slots: list[_Member | None]
    node: Any = None  # ObjectRef of the Ray node id its actor runs on (asked once, read at the first end)
    waiting: bool = False  # all its slots are free and the study has no trial for them yet
    stops: list[int] = field(default_factory=list)  # slots to stop before the next epoch
    assigns: dict[int, Mapping[str, Any]] = field(default_factory=dict)  # slot -> config to start with it

    def running(self) -> list[int]:
        return [k for k, m in enumerate(self.slots) if m is not None]


class _Driver:
    """The loop on the driver: start lanes, record epochs, stop, refill, end.

    At an epoch's end the driver decides in memory: which members end (done,
    diverged, stopped by ASHA), what the sampler learns from the epoch (TPE's
    in-memory study), and which new configs fill the freed slots (asked after
    the sampler learned). It starts the actor's next epoch at once, in one call that
    carries those stops and assignments (one round trip per epoch: Ray's per-call
    cost adds up over a pack's many small changes).
    Every write to the stores (the Optuna study; MLflow through the observer) goes
    to a queue that the loop works through one write at a time whenever no epoch
    is waiting: the stores are slow next to a small model's epoch (an SQLite commit
    per write), and an actor never waits for them.
    """

    def __init__(
        self,
        spec: SweepSpec,
        *,
        n_trials: int,
        storage: optuna.storages.BaseStorage,
        observer: SweepObserver,
        cancel: Cancel,
    ) -> None:
        self.spec, self.observer, self.cancel = spec, observer, cancel
        self._n_trials, self._storage = n_trials, storage
        self._writes: deque[Callable[[], None]] = deque()  # store writes not yet done, in order
        from tuner.workload import parse_ref

        self._workload = parse_ref(spec.workload).worker_target  # importable on the workers without metadata

    def run(self, *, lanes: int) -> None:
        sizes, left = [], self._n_trials
        for i in range(lanes):
            sizes.append(min(self.spec.pack_size, math.ceil(left / (lanes - i))))
            left -= sizes[-1]
        # The window is every slot: that many trials train at once.
        self.study = SweepStudy(
            self.spec, self._storage, n_trials=self._n_trials, window=sum(sizes), defer=self._writes.append
        )
        resources = self.spec.resources_per_trial
        self._actor_options = {"num_cpus": resources.cpu, "num_gpus": resources.gpu, "max_restarts": 0}
        self._pending: dict[Any, _Lane] = {}  # in-flight epoch -> its lane
        self._lanes: list[_Lane] = []
        with _Interrupt() as interrupt:
            self._loop(sizes, interrupt)

    def _loop(self, sizes: list[int], interrupt: _Interrupt) -> None:
        import ray

        try:
            # Actors start first (a process, torch, the data, a warm-up: seconds) and get
            # their trials while they boot: asking and recording starts is slow too.
            for size in sizes:
                self._new_lane(size)
            for lane in self._lanes:
                self._start(lane, [], [])
            while self._pending or self._writes:
                ready = []
                if self._pending:
                    ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=0.0 if self._writes else 1.0)
                if interrupt.triggered:  # Ctrl-C: stop here; running trials stay RUNNING for --resume
                    break
                if self.cancel.stop_all():
                    while self._pending:
                        self._end_lane(self._pending.popitem()[1], cancelled=True)
                    break
                for ref in ready:
                    self._on_epoch(self._pending.pop(ref), ref)
                for lane in [lane for lane in self._lanes if lane.waiting]:  # the study may answer them now
                    lane.waiting = False
                    self._start(lane, [], [])
                if not ready and self._writes:
                    self._writes.popleft()()
            while self._writes:  # what is decided is recorded, also on Ctrl-C or a cancel
                self._writes.popleft()()
        finally:  # on an error or Ctrl-C its trials stay RUNNING in the study; a resume re-runs them
            for lane in self._lanes:
                ray.kill(lane.actor)

    def _new_lane(self, size: int) -> _Lane:
        resources, space = self.spec.resources_per_trial, self.spec.search_space
        actor = (
            _remote_trainer()
            .options(**self._actor_options)
            .remote(
                [None] * size,
                workload=self._workload,
                workload_args=self.spec.workload_args,
                max_epochs=self.spec.max_epochs,
                seed=self.spec.seed,
                device=resources.device,
                num_threads=resources.threads,
                amsgrad=space.amsgrad,
                decoupled_weight_decay=space.decoupled_weight_decay,
                algorithm=space.algorithms[0],  # one per pack: the spec refuses packing a searched algorithm
                diagnostics=True,  # as the standard mode's trainable: the same metrics per epoch
            )
        )
        lane = _Lane(actor, [None] * size, node=actor.node_id.remote())
        self._lanes.append(lane)
        return lane

    def _on_epoch(self, lane: _Lane, ref: Any) -> None:
        """A lane's epoch ended: decide and refill in memory, start its next epoch, then record."""
        import ray

        try:
            rows = ray.get(ref)
        except ray.exceptions.RayError as e:
            self._retry(lane, _describe(e))
            return
        trained, ended = self._decide(lane, rows)
        self._start(lane, trained, ended)

    def _retry(self, lane: _Lane, error: str) -> None:
        """The lane's worker died: its members that have failed fewer than ``max_failures`` times
        restart from their first epoch with the same configs on a new worker (as Ray Tune retries a
        trial); the others end as failed with ``error``. Free slots take trials not yet started."""
        import ray

        retried, given_up = [], []
        for member in (m for m in lane.slots if m is not None):
            (retried if member.failures < self.spec.max_failures else given_up).append(member)
        for member in given_up:
            self._end(member, error=error)
        self._record([], [], given_up)
        ray.kill(lane.actor)
        self._lanes.remove(lane)
        if not retried and self.study.asks_left <= 0:
            return
        fresh = self._new_lane(len(lane.slots))
        for slot, member in enumerate(retried):
            member.failures += 1
            member.last = None  # its epochs repeat (seeded); the study keeps the first values
            fresh.slots[slot] = member
            fresh.assigns[slot] = member.asked.config
            self._writes.append(partial(self._started, member.asked))  # its MLflow run starts over, as Tune's retry
        self._start(fresh, [], [])

    def _start(self, lane: _Lane, trained: list[_Member], ended: list[_Member]) -> None:
        """Refill the lane, start its next epoch (or free its actor), and queue the last one's records."""
        import ray

        fresh = self._refill(lane)
        if lane.running():
            self._pending[lane.actor.run_epoch.remote(stop=lane.stops, assign=lane.assigns)] = lane
            lane.stops, lane.assigns = [], {}
        elif self.study.asks_left > 0 and not self.cancel.triggered:
            lane.waiting = True  # the study waits for another lane's trial: refilled after the next epoch
        else:
            ray.kill(lane.actor)  # done: free its resources now
            self._lanes.remove(lane)
        self._record(fresh, trained, ended)

    def _decide(self, lane: _Lane, rows: Mapping[int, Mapping[str, Any]]) -> tuple[list[_Member], list[_Member]]:
        """Take in an epoch's rows: the sampler learns them; free the slots whose trial ends
        (done, diverged, or stopped by ASHA).

        Returns:
            The members that trained this epoch (their row is ``member.last``), and those that ended.
        """
        trained, ended = [], []
        for slot, row in sorted(rows.items()):
            member = lane.slots[slot]
            member.last = dict(row)
            trained.append(member)
            epoch, value = int(row["epoch"]), _number(row.get(self.spec.metric))
            stopped = self.study.report(member.asked, epoch, value)
            ends = bool(row.get("diverged")) or epoch >= self.spec.max_epochs  # the actor froze these itself
            if stopped and not ends:
                lane.stops.append(slot)
                ends = True
            if ends:
                self._end(member)
                ended.append(member)
                lane.slots[slot] = None
        return trained, ended

    def _refill(self, lane: _Lane) -> list[_Member]:
        """Give the lane's free slots new trials (asked in memory; a slot stays free while the
        study waits for a running trial); returns them."""
        fresh = []
        for slot, member in enumerate(lane.slots):
            if member is not None or self.cancel.triggered:
                continue
            asked = self.study.ask()
            if asked is None:
                break
            member = lane.slots[slot] = _Member(asked)
            lane.assigns[slot] = asked.config
            fresh.append(member)
        return fresh

    def _record(self, fresh: list[_Member], trained: list[_Member], ended: list[_Member]) -> None:
        """Queue the observer's events (after the study's writes queued so far): new trials, an epoch, ends."""
        for member in fresh:
            self._writes.append(partial(self._started, member.asked))
        for member in trained:
            row = member.last
            metrics = {k: v for k in row if k not in _NOT_METRICS and (v := _number(row[k])) is not None}
            self._writes.append(partial(self._reported, member.asked, int(row["epoch"]), metrics))
        for member in ended:
            self._writes.append(partial(self._finished, member.asked, member.outcome))

    def _started(self, asked: Asked) -> None:
        self.observer.trial_started(asked.number, asked.config)

    def _reported(self, asked: Asked, epoch: int, metrics: dict[str, float]) -> None:
        self.observer.epoch_reported(asked.number, epoch, metrics)

    def _finished(self, asked: Asked, outcome: Outcome) -> None:
        self.observer.trial_finished(asked.number, outcome)

    def _end(self, member: _Member, *, error: str | None = None, cancelled: bool = False) -> None:
        """Classify the member's trial and tell the study (the stored study's write is queued)."""
        outcome = classify(
            member.last, metric=self.spec.metric, max_epochs=self.spec.max_epochs, error=error, cancelled=cancelled
        )
        member.outcome = dataclasses.replace(outcome, node=self._node(member))
        self.study.tell(member.asked, member.outcome)

    def _node(self, member: _Member) -> str | None:
        """The Ray node id of the worker that trained ``member`` last (``None`` if that worker is gone)."""
        import ray

        lane = next((lane for lane in self._lanes if member in lane.slots), None)
        if lane is None or lane.node is None:
            return None
        try:
            return ray.get(lane.node, timeout=10)
        except ray.exceptions.RayError:
            return None

    def _end_lane(self, lane: _Lane, *, error: str | None = None, cancelled: bool = False) -> None:
        """End every trial still in the lane (failed: ``error``, or cut short by a cancel) and its actor."""
        import ray

        ended = []
        for slot in lane.running():
            self._end(lane.slots[slot], error=error, cancelled=cancelled)
            ended.append(lane.slots[slot])
            lane.slots[slot] = None
        ray.kill(lane.actor)
        self._record([], [], ended)


class _Interrupt:
    """Ctrl-C (SIGINT) ends a packed sweep at the next check, as Ray Tune's handler ends a standard one.

    The driver then stops its packs and returns; trials that were training stay
    ``RUNNING`` in the study, so the caller reports an interrupted sweep that
    ``--resume`` continues. A second Ctrl-C raises ``KeyboardInterrupt`` at once.
    Installed only in the main thread (a server runs sweeps in worker threads).
    """

    def __init__(self) -> None:
        self.triggered = False
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            self._restore()

    def _handle(self, signum: int, frame: Any) -> None:
        self.triggered = True
        self._restore()  # a second Ctrl-C interrupts at once

    def _restore(self) -> None:
        import signal

        signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)


@functools.cache
def _remote_trainer() -> Any:
    """``PackedTrainer`` as a Ray actor class (plus ``node_id()``: the Ray node it runs on), made
    once per process: Ray exports a class to the cluster on its first use (20-35 ms here), once per
    class object."""
    import ray

    from workers.packed import PackedTrainer

    class _NodeTrainer(PackedTrainer):
        def node_id(self) -> str:
            return ray.get_runtime_context().get_node_id()

    return ray.remote(_NodeTrainer)


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (not a bool), else ``None``."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _describe(error: BaseException) -> str:
    """One line: the worker's own exception (``Type: message``) where Ray carries one."""
    import ray

    cause = getattr(error, "cause", None)
    if isinstance(error, ray.exceptions.RayTaskError) and cause is not None:
        return f"{type(cause).__name__}: {cause}".strip().splitlines()[-1]
    if isinstance(error, ray.exceptions.RayActorError) and not error.actor_init_failed:
        return "the pack's worker process died (see the Ray logs)"
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__
