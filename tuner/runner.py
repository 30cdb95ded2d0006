"""The queue runner: threads inside ``tuner serve`` that run queued sweeps one after another.

On start, sweeps a crash left ``running`` go back to the queue; running them again
resumes their studies (finished trials kept, interrupted ones re-run). The API
never waits on a sweep: it writes the queue, the runner reads it.
"""

from __future__ import annotations

import logging
import threading

from tuner.sweeps import SweepService

__all__ = ["QueueRunner"]

log = logging.getLogger(__name__)


class QueueRunner:
    """Runs queued sweeps, at most ``max_concurrent`` at a time.

    Args:
        service: the sweep service whose queue to drain.
        max_concurrent: sweeps run at once (each in its own thread).
        poll_interval: seconds between looks at an empty queue (``wake`` cuts it short).
    """

    def __init__(self, service: SweepService, *, max_concurrent: int = 1, poll_interval: float = 2.0) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent >= 1 must hold, but got {max_concurrent}")
        self._service = service
        self._max_concurrent = max_concurrent
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> list[str]:
        """Requeue sweeps a crash left running and start the runner threads; returns the requeued names."""
        requeued = [s.name for s in self._service.store.requeue_running()]
        for i in range(self._max_concurrent):
            thread = threading.Thread(target=self._loop, name=f"sweep-runner-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return requeued

    def wake(self) -> None:
        """Look at the queue now (called after a submit)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop taking new sweeps. A sweep still running stays ``running`` in the queue and is
        resumed at the next start, exactly as after a crash."""
        self._stopping.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            sweep = self._service.store.claim_next()
            if sweep is None:
                self._wake.wait(self._poll_interval)
                self._wake.clear()
                continue
            log.info("running sweep %s (%s), attempt %d", sweep.name, sweep.id, sweep.attempts)
            self._service.run_queued(sweep)
