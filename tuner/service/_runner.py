"""The queue runner inside ``tuner serve``: runs queued sweeps, each in a process of its own.

On start, sweeps a crash left ``running`` go back to the queue; running them again
resumes their studies (finished trials kept, interrupted ones re-run). The API
never waits on a sweep: it writes the queue, the runner reads it.

Why processes: stopping the service must leave a running sweep exactly as a crash
does (queue row ``running``, its unfinished trials ``RUNNING`` in the study), so that
the next start requeues and resumes it. A sweep in a thread cannot be stopped so: asked
to stop, it records its running trials as failed; with Ray shut down beneath it, Ray
Tune starts a new Ray and fails the sweep. A process is killed, and its stores stay
as they were. The local Ray stays in the service's process (see :class:`_LocalRay`),
so stopping also ends every Ray process the service started."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from tuner.service._service import SweepService

if TYPE_CHECKING:
    from tuner.service._stores import Stores
    from tuner.settings import Settings
    from tuner.store import Sweep

__all__ = ["QueueRunner"]

log = logging.getLogger(__name__)

_PARENT_POLL_S = 0.5  # how often a sweep process checks that the runner's process lives


class QueueRunner:
    """Runs queued sweeps, at most ``max_concurrent`` at a time, each in a child process.

    Without ``TUNER_RAY_ADDRESS`` the runner starts a local Ray of its own (never one
    found on the machine) and its sweep processes connect to it as Ray jobs.

    Args:
        stores: the stores whose queue to drain (a sweep process opens its own from their settings).
        max_concurrent: sweeps run at once (one thread and one process each).
        poll_interval: seconds between looks at an empty queue (``wake`` cuts it short).
    """

    def __init__(self, stores: Stores, *, max_concurrent: int = 1, poll_interval: float = 2.0) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent >= 1 must hold, but got {max_concurrent}")
        self._stores = stores
        self._max_concurrent = max_concurrent
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # guards _processes against stop()
        self._processes: dict[str, Any] = {}  # sweep id -> its running multiprocessing.Process
        self._ray = None if stores.settings.ray_address else _LocalRay()

    def start(self) -> list[str]:
        """Requeue sweeps a crash left running, start local Ray and the runner threads;
        returns the requeued names. Call it from the main thread (see :class:`_LocalRay`).

        Raises:
            Exception: what ``ray.init`` raised.
        """
        requeued = [s.name for s in self._stores.store.requeue_running()]
        if self._ray is not None:
            self._ray.start()  # in the caller's thread, which must outlive Ray: the main thread
        for i in range(self._max_concurrent):
            thread = threading.Thread(target=self._loop, name=f"sweep-runner-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        atexit.register(self.stop)  # before multiprocessing's own exit hook, which would wait for the sweeps
        return requeued

    def wake(self) -> None:
        """Look at the queue now (called after a submit)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking sweeps, kill the running sweeps' processes and shut down local Ray,
        within about ``timeout`` seconds (idempotent).

        A killed sweep stays ``running`` in the queue and is resumed at the next start,
        exactly as after a crash: its finished trials are kept, its running ones re-run.
        """
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            process.kill()  # SIGKILL: nothing more is written; Ray ends the job's trial workers
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._ray is not None and not self._ray.shutdown(max(0.5, deadline - time.monotonic())):
            log.warning(
                "local Ray did not shut down within %.0f s; some of its processes may outlive the service", timeout
            )

    def _loop(self) -> None:
        while not self._stopping.is_set():
            sweep = self._stores.store.claim_next()
            if sweep is None:
                self._wake.wait(self._poll_interval)
                self._wake.clear()
                continue
            log.info("running sweep %s (%s), attempt %d", sweep.name, sweep.id, sweep.attempts)
            self._run(sweep)

    def _run(self, sweep: Sweep) -> None:
        """Run one claimed sweep in a child process and wait for it."""
        settings = self._stores.settings
        if self._ray is not None:
            settings = settings.model_copy(update={"ray_address": self._ray.address})
        process = multiprocessing.get_context("spawn").Process(
            target=_sweep_process, args=(settings, sweep, os.getpid()), name=f"adamtune-sweep-{sweep.name}"
        )
        with self._lock:
            if self._stopping.is_set():  # claimed as the service stops: requeued at the next start
                return
            process.start()
            self._processes[sweep.id] = process
        process.join()
        with self._lock:
            del self._processes[sweep.id]
        if (
            process.exitcode != 0
            and not self._stopping.is_set()
            and self._stores.store.get(sweep.id).state == "running"
        ):
            self._stores.store.finish(
                sweep.id,
                "failed",
                error=f"the sweep's process ended with exit code {process.exitcode} before recording an outcome",
            )


class _LocalRay:
    """The local Ray a runner starts for its sweep processes.

    Ray ties its node processes (GCS, raylet) to the *thread* that started them
    (``PR_SET_PDEATHSIG``): when that thread ends first, or the process dies of a
    signal, they are killed outright and their own children (the dashboard and
    runtime-env agents, idle workers) are left behind. So Ray is started in the
    main thread, which lives until the process ends, and ended with ``ray.shutdown()``,
    in which the raylet stops its agents and workers itself.
    """

    def __init__(self) -> None:
        self.address: str | None = None  # the GCS address, once started

    def start(self) -> None:
        """Start a local Ray of our own (never one another program started on this machine).

        ``ray.init`` in the main thread installs a SIGTERM handler that exits at once, and
        Ray's crash handler, which aborts the process 3 s after a SIGTERM (an alarm); the
        handlers found before (the server's graceful stop) are put back.
        """
        from tuner.executor import start_local_ray

        main = threading.current_thread() is threading.main_thread()
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)} if main else {}
        try:
            self.address = start_local_ray()
        finally:
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)

    def shutdown(self, timeout: float) -> bool:
        """Shut Ray down; returns whether it ended within ``timeout`` seconds."""
        if self.address is None:
            return True
        from tuner.executor import disconnect

        thread = threading.Thread(target=disconnect, name="ray-shutdown", daemon=True)
        thread.start()
        thread.join(timeout)
        self.address = None
        return not thread.is_alive()


def _sweep_process(settings: Settings, sweep: Sweep, parent_pid: int) -> None:
    """A sweep process's main: run one claimed sweep; end when the runner kills it or its
    process is gone.

    SIGTERM and SIGINT are ignored: they reach this process too when sent to the
    service's process group (Ctrl-C on its terminal), and the runner, stopping, kills
    it; ending here first would read as a crash of the sweep. The sweep runs in a
    thread so that neither Ray nor Ray Tune installs handlers of its own (they do in
    the main thread only).
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            SweepService(settings).run_queued(sweep)
        except BaseException as e:
            failed.append(e)
            raise

    thread = threading.Thread(target=run, name=f"sweep-{sweep.name}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(_PARENT_POLL_S)
        if os.getppid() != parent_pid:  # the service was killed: so is its sweep
            os._exit(1)
    if failed:
        raise SystemExit(1)
