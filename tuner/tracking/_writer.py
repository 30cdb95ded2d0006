"""The MLflow writer: a child process that writes trials' child runs while the driver goes on,
and the one place a sweep's driver reaches MLflow through.

A sweep's driver records every epoch of every trial. On the embedded SQLite store
each MLflow write costs 10-30 ms of Python (SQLAlchemy, MLflow's checks), several per
trial: measured, a 32-trial packed sweep spent about 2 s of its 4.5 s in MLflow, on
the driver's one core, while the second core waited. A thread does not help (the
GIL); a process does. :class:`TrackingWriter` starts one (``spawn``), sends it trial
events through a queue, in order, and :meth:`TrackingWriter.flush` waits until a
sweep's events are written. The child ignores Ctrl-C (the driver decides when to
stop), runs at a lower CPU priority once its store is open (``nice`` 10, so it does not slow the training
it records) and exits when the driver's process is gone. Being spawned, it imports
the parent's main module again: a script that runs sweeps through
:class:`tuner.SweepService` needs the usual ``if __name__ == "__main__":`` guard.

The driver's own MLflow calls (the sweep's parent run, its analysis, a resumed sweep's
repairs) go through the same process as :class:`WriterTracker` calls, in order with the trial
events: a sweep's driver never imports MLflow (its import and its client's start cost about
3-4 s of CPU, which the writer pays once instead of twice), and the store has one writer.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuner.errors import TrackingError
from tuner.tracking._tracker import Tracker  # no MLflow: it loads when a Tracker is built

if TYPE_CHECKING:
    from tuner.records import Outcome

__all__ = ["TrackingWriter", "TrialEvents", "WriterTracker"]

_POLL_S = 1.0  # how often the child checks that its parent lives; how often flush checks the child
_LIVE_S = 1.0  # a running trial's held epochs are written at least this long after its last write
_BATCH_MAX = 10_000  # events the child takes from the queue at once
# The child's CPU priority, below the driver's and the trials' (0): its writes fill idle
# CPU time instead of slowing the training they record. Measured on 2 cores, a packed
# sweep's epochs took up to 2x longer while the writer ran at the same priority.
_NICE = 10


class TrackingWriter:
    """A child process that writes trial events to MLflow child runs.

    Args:
        tracking_uri, artifact_root, retry_seconds: as for :class:`tuner.tracking.Tracker`.
            While MLflow is unreachable, the process retries a write for up to
            ``retry_seconds`` (the events behind it wait in the queue; the driver goes
            on), then reports the sweep's error at its flush.

    The process starts at construction and ends after the events already queued
    when this object is closed or garbage-collected, or when this process ends.
    """

    def __init__(self, tracking_uri: str, artifact_root: str | None, *, retry_seconds: float | None = None) -> None:
        if retry_seconds is None:  # read here: the child gets it explicitly, whatever its environment
            from tuner.settings import Settings

            retry_seconds = Settings().mlflow_retry_seconds
        context = multiprocessing.get_context("spawn")
        self._events = context.Queue()
        self._replies = context.Queue()
        self._lock = threading.Lock()  # one flush at a time: replies come back in order
        self._process = context.Process(
            target=_serve,
            args=(tracking_uri, artifact_root, retry_seconds, self._events, self._replies),
            name="adamtune-mlflow-writer",
            daemon=True,
        )
        interrupt_blocked = threading.current_thread() is threading.main_thread()
        if interrupt_blocked:  # the child starts with Ctrl-C blocked, then ignores it
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._process.start()
        finally:
            if interrupt_blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        self._finalizer = weakref.finalize(self, self._events.put, None)

    @property
    def process(self) -> multiprocessing.process.BaseProcess:
        """The writer's child process, for supervision (its ``pid``, ``is_alive()``, ``exitcode``);
        it is started and ended by this object."""
        return self._process

    def events(self, sweep: str, parent_run_id: str) -> TrialEvents:
        """A sweep observer that sends the sweep's trial events to this writer."""
        return TrialEvents(self, sweep, parent_run_id)

    def send(self, *event: Any) -> None:
        """Queue one event (see :func:`_serve` for the kinds)."""
        self._events.put(event)

    def flush(self, sweep: str | None = None) -> None:
        """Wait until every event queued so far is written (``None``: wait until the process is up
        and its MLflow store open).

        Raises:
            TrackingError: a write of ``sweep`` failed (the rest of its events were
                skipped), or the writer process died.
            StoreError: (``sweep=None``) the MLflow store cannot be opened (:class:`tuner.tracking.Tracker`).
        """
        error = self._ask(("flush", sweep))
        if error is not None:
            raise TrackingError(f"writing sweep {sweep!r} to MLflow failed: {error}")

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run the process's :class:`tuner.tracking.Tracker` method ``method`` after every event
        queued so far is written, and return its result.

        Raises:
            What the method raises (:class:`TrackingError`, :class:`tuner.errors.StoreError`, ...;
            one that cannot cross processes as a :class:`TrackingError` saying what it was), or
            TrackingError: the writer process died.
        """
        return self._ask(("call", method, args, kwargs))

    @property
    def tracker(self) -> WriterTracker:
        """This process's :class:`tuner.tracking.Tracker` calls, run in the writer process."""
        return WriterTracker(self)

    def _ask(self, request: tuple[Any, ...]) -> Any:
        """Send ``request`` and wait for its answer: a value, or an exception raised here."""
        with self._lock:  # one question at a time: answers come back in order
            self._events.put(request)
            while True:
                try:
                    kind, answer = self._replies.get(timeout=_POLL_S)
                    break
                except queue.Empty:
                    if not self._process.is_alive():
                        raise TrackingError(
                            f"the MLflow writer process exited with code {self._process.exitcode}; "
                            "the sweep's trials are in its Optuna study, its MLflow child runs may be incomplete"
                        ) from None
        if kind == "raise":
            raise answer
        return answer

    def close(self) -> None:
        """End the process after the events already queued, and wait for it."""
        self._finalizer()
        self._process.join(timeout=30)


class TrialEvents:
    """A sweep observer (see :class:`tuner.executor.SweepObserver`) that forwards to a writer.

    Each trial gets one MLflow child run under the sweep's parent run, named
    ``trial-NNNN``, with the trial's Adam hyperparameters and lr schedule as params,
    one metric step per epoch, its final state as tags and, once it ended, the files of
    its folder as artifacts (see :class:`tuner.tracking.Tracker` and :mod:`tuner.tracking._files`).
    :meth:`close` waits until they are written.
    """

    def __init__(self, writer: TrackingWriter, sweep: str, parent_run_id: str) -> None:
        self._writer, self._sweep, self._parent = writer, sweep, parent_run_id

    def trial_started(self, number: int, config: Mapping[str, Any]) -> None:
        self._writer.send("start", self._sweep, number, self._parent, dict(config))

    def epoch_reported(self, number: int, epoch: int, metrics: Mapping[str, float]) -> None:
        self._writer.send("epoch", self._sweep, number, epoch, dict(metrics))

    def trial_finished(self, number: int, outcome: Outcome) -> None:
        self._writer.send("end", self._sweep, number, outcome.state, outcome.reason, outcome.node, outcome.folder)

    def close(self) -> None:
        """Wait until the sweep's events are written.

        Raises:
            TrackingError: a write failed.
        """
        self._writer.flush(self._sweep)


class WriterTracker:
    """A :class:`tuner.tracking.Tracker` whose every public method runs in a
    :class:`TrackingWriter`'s process (:meth:`TrackingWriter.call`): the same methods, arguments,
    results and errors, MLflow never imported here."""

    def __init__(self, writer: TrackingWriter) -> None:
        self._writer = writer

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not callable(getattr(Tracker, name, None)):
            raise AttributeError(f"{type(self).__name__} has no method {name!r} (Tracker's public methods only)")
        return lambda *args, **kwargs: self._writer.call(name, *args, **kwargs)


def _serve(tracking_uri: str, artifact_root: str | None, retry_seconds: float, events: Any, replies: Any) -> None:
    """The child's loop. Events: ``("start", sweep, number, parent_run_id, config)``,
    ``("epoch", sweep, number, epoch, metrics)``, ``("end", sweep, number, state, reason, ray_node,
    folder)`` (``folder``: the trial's own folder, whose files are logged; ``None``: none),
    ``("flush", sweep)`` (answered with the sweep's first error or ``None``), ``("call", method,
    args, kwargs)`` (a :class:`Tracker` method, run after everything before it is written;
    answered with its result or error), ``None`` (exit).

    It takes every event already queued at once (up to ``_BATCH_MAX``) and writes each
    trial's epochs and end from them in one MLflow write: when the driver outpaces the
    store, the writes grow instead of the queue.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _sqlite_wal()
    try:  # at the driver's priority: the sweep's parent run waits for this
        tracker = Tracker(tracking_uri, artifact_root, retry_seconds=retry_seconds)
    except Exception as e:  # noqa: BLE001 - answered to every question until the driver closes it
        _refuse(e, events, replies)
    else:
        os.nice(_NICE)
        _write(tracker, events, replies)
    # Everything is written and answered: skip the interpreter's teardown of MLflow's and
    # SQLAlchemy's modules (~0.8 s here), which a spawned child otherwise runs before it exits.
    replies.close()
    replies.join_thread()
    os._exit(0)


def _write(tracker: Tracker, events: Any, replies: Any) -> None:
    """Take events until ``None`` or the driver's process is gone (see :func:`_serve`)."""
    runs = _Runs(tracker, replies)
    parent = multiprocessing.parent_process()
    while True:
        try:
            taken = [events.get(timeout=_POLL_S)]
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                runs.write(everything=True)
                return
            runs.write()  # running trials' epochs that came due
            continue
        while len(taken) < _BATCH_MAX:
            try:
                taken.append(events.get_nowait())
            except queue.Empty:
                break
        for event in taken:
            if event is None:
                runs.write(everything=True)
                return
            if event[0] == "call":
                runs.write(everything=True)
                replies.put(_answer(getattr(tracker, event[1]), *event[2:]))
                continue
            runs.take(*event)
        runs.write()


class _Runs:
    """The child's trial runs: events are taken in order, epochs and ends are held until :meth:`write`.

    A trial's end is written at the next write, with every epoch still held; a running
    trial's epochs at most every ``_LIVE_S`` seconds. A run's metrics thus stay live
    on a dashboard while a small model's trial, a few epochs in a second, costs one
    MLflow write instead of one per epoch (each ``log_batch`` costs 5-7 ms on SQLite).
    """

    def __init__(self, tracker: Any, replies: Any) -> None:
        self._tracker, self._replies = tracker, replies
        self._ids: dict[tuple[str, int], str] = {}  # (sweep, trial number) -> run id
        self._held: dict[tuple[str, int], _Held] = {}  # epochs and end not yet written, per trial
        self._written: dict[tuple[str, int], float] = {}  # when each running trial's run was last written
        self._stale: dict[str, set[int]] = {}  # per sweep: trials with runs from an earlier attempt
        self._errors: dict[str, str] = {}  # per sweep: the first failed write

    def take(self, kind: str, sweep: str, *args: Any) -> None:
        if kind == "flush":  # the end of a run of the sweep: a later run starts afresh
            self.write(everything=True)
            self._stale.pop(sweep, None)
            for key in [key for key in self._ids if key[0] == sweep]:
                del self._ids[key]
                self._written.pop(key, None)
            self._replies.put(("value", self._errors.pop(sweep, None)))
            return
        if sweep in self._errors:
            return
        try:
            if kind == "start":
                number, parent_run_id, config = args
                if (sweep, number) in self._held:  # a retried trial: its earlier run's events first
                    self.write(everything=True)
                if sweep not in self._stale:  # one search per sweep instead of one per trial
                    self._stale[sweep] = set(self._tracker.trial_run_ids(sweep))
                replace = number in self._stale[sweep] or (sweep, number) in self._ids  # or retried in this run
                self._ids[sweep, number] = self._tracker.start_trial(
                    sweep, parent_run_id, number, config, replace=replace
                )
                self._written[sweep, number] = time.monotonic()
            elif kind == "epoch":
                number, epoch, metrics = args
                self._hold(sweep, number).epochs.append((epoch, metrics))
            elif kind == "end":
                number, state, reason, node, folder = args
                self._hold(sweep, number).end = (state, reason, node, folder)
        except Exception as e:  # noqa: BLE001 - reported at the sweep's flush
            self._errors[sweep] = _describe(e)

    def write(self, *, everything: bool = False) -> None:
        """Write what is held and due (``everything``: all of it): one MLflow write per trial
        (see ``Tracker.log_trial``)."""
        now = time.monotonic()
        due = {
            key: trial
            for key, trial in self._held.items()
            if everything or trial.end is not None or now - self._written[key] >= _LIVE_S
        }
        for (sweep, number), trial in due.items():
            del self._held[sweep, number]
            if sweep in self._errors:
                continue
            try:
                state, reason, node, folder = trial.end or (None, None, None, None)
                self._tracker.log_trial(self._ids[sweep, number], trial.epochs, state=state, reason=reason, node=node)
                if folder is not None:
                    # Read from this machine's disk: on a multi-node cluster, a folder on another
                    # node is not here and that trial logs no files (tuner/tracking/_files.py).
                    self._tracker.log_trial_files(self._ids[sweep, number], folder)
                self._written[sweep, number] = now
                if trial.end is not None:
                    del self._ids[sweep, number], self._written[sweep, number]
            except Exception as e:  # noqa: BLE001 - reported at the sweep's flush
                self._errors[sweep] = _describe(e)

    def _hold(self, sweep: str, number: int) -> _Held:
        if (sweep, number) not in self._ids:
            raise KeyError(f"trial {number} of sweep {sweep!r} has no run: its start event never came")
        return self._held.setdefault((sweep, number), _Held())


def _answer(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    """``("value", result)`` of ``method(*args, **kwargs)``, or ``("raise", error)``."""
    try:
        return "value", method(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - raised again in the driver
        return "raise", _portable(e)


def _portable(error: Exception) -> Exception:
    """``error`` if it survives pickling (as the queue sends it), else a :class:`TrackingError` naming it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to cross processes
        return TrackingError(_describe(error))
    return error


def _refuse(error: Exception, events: Any, replies: Any) -> None:
    """The loop of a writer whose MLflow store did not open: every flush and call is answered
    with ``error``, events are dropped, until the driver closes it."""
    answer = ("raise", _portable(error))
    parent = multiprocessing.parent_process()
    while True:
        try:
            event = events.get(timeout=_POLL_S)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return
            continue
        if event is None:
            return
        if event[0] in ("flush", "call"):
            replies.put(answer)


def _describe(error: Exception) -> str:
    """A failed write for the flush's message: a :class:`TrackingError` (MLflow unreachable
    past the retries) says what was tried and where the trials are; anything else gets that added."""
    if isinstance(error, TrackingError):
        return str(error)
    return f"{type(error).__name__}: {error}; the sweep's trials are kept in its Optuna study"


@dataclass
class _Held:
    """A trial's events not yet written: ``(epoch, metrics)`` pairs and its end ``(state, reason,
    ray_node, folder)``."""

    epochs: list[tuple[int, Mapping[str, float]]] = field(default_factory=list)
    end: tuple[str, str | None, str | None, str | None] | None = None  # state, reason, ray_node, folder


def _sqlite_wal() -> None:
    """Give this process's SQLite connections (MLflow's, here) WAL journaling with
    ``synchronous=NORMAL`` (:func:`tuner.study.journal_wal`).

    The child runs nothing but MLflow, whose engine is not ours to configure, so the
    hook is on every engine of the process. The journal mode stays with the file;
    readers in other processes are unaffected (SQLite's WAL needs a local file system,
    as SQLite itself does).
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from tuner.study import journal_wal

    event.listen(Engine, "connect", journal_wal)
