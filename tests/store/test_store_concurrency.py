"""Many claimers and submitters at once: every sweep is claimed exactly once, no row is lost.

Threads share one store, as in the service; processes each open their own, as
several services on one database would. Barriers start them together.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tuner.errors import SweepExistsError
from tuner.store import SweepStore

N_SWEEPS = 20
N_THREADS = 8
N_PROCESSES = 4


def _in_threads(n: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(i)`` in ``n`` threads released together; (results, errors)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = work(i)
        except BaseException as e:  # collected and asserted by the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    return results, errors


def _claim_all(store: SweepStore) -> list[str]:
    claimed = []
    while (sweep := store.claim_next()) is not None:
        claimed.append(sweep.id)
    return claimed


def _assert_each_claimed_once(store: SweepStore, submitted: list[str], claims: list[str]) -> None:
    assert sorted(claims) == sorted(submitted), [i for i, n in Counter(claims).items() if n > 1]
    assert {(s.state, s.attempts) for s in store.list()} == {("running", 1)}


def _queue(store: SweepStore) -> list[str]:
    return [store.submit(f"sweep-{i:02d}", {"i": i}).id for i in range(N_SWEEPS)]


def test_threads_claim_each_sweep_exactly_once(store: SweepStore) -> None:
    submitted = _queue(store)
    results, errors = _in_threads(N_THREADS, lambda _: _claim_all(store))
    assert errors == []
    _assert_each_claimed_once(store, submitted, [sweep_id for ids in results for sweep_id in ids])


def _claim_in_process(url: str, barrier: Any, results: Any) -> None:
    """Child process: open the (new) database with the others, wait for the queue, claim until it is empty."""
    try:
        barrier.wait(timeout=60)  # start: every child opens (and so migrates) at once
        store = SweepStore(url)
        barrier.wait(timeout=60)  # opened
        barrier.wait(timeout=60)  # the parent has queued the sweeps
        results.put(("ok", _claim_all(store)))
    except BaseException as e:
        results.put(("error", repr(e)))
        barrier.abort()  # the parent fails now instead of at its barrier timeout


def test_processes_open_a_new_database_and_claim_each_sweep_exactly_once(store_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(N_PROCESSES + 1), context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(store_url, barrier, results)) for _ in range(N_PROCESSES)
    ]
    for p in processes:
        p.start()

    def wait() -> None:
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            pytest.fail(f"a claimer process failed: {results.get(timeout=10)}")

    wait()  # start
    wait()  # all opened the new database concurrently
    store = SweepStore(store_url)
    submitted = _queue(store)
    wait()  # queued: claim
    outcomes = [results.get(timeout=90) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    assert [kind for kind, _ in outcomes] == ["ok"] * N_PROCESSES, outcomes
    _assert_each_claimed_once(store, submitted, [sweep_id for _, ids in outcomes for sweep_id in ids])


def test_concurrent_submitters_lose_no_rows(store: SweepStore) -> None:
    per_thread = 10

    def submit_many(t: int) -> list[str]:
        return [store.submit(f"t{t}-s{i}", {"t": t, "i": i}).id for i in range(per_thread)]

    results, errors = _in_threads(N_THREADS, submit_many)
    assert errors == []
    stored = store.list()
    assert sorted(s.id for s in stored) == sorted(i for ids in results for i in ids)
    assert len(stored) == N_THREADS * per_thread
    assert all(store.get_by_name(f"t{s.spec['t']}-s{s.spec['i']}") == s for s in stored)


def test_concurrent_submits_of_one_name_have_one_winner(store: SweepStore) -> None:
    results, errors = _in_threads(N_THREADS, lambda t: store.submit("contested", {"t": t}))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and len(errors) == N_THREADS - 1
    assert all(isinstance(e, SweepExistsError) for e in errors), errors
    assert store.list() == winners


def test_cancel_racing_claim_never_runs_a_cancelled_sweep(store: SweepStore) -> None:
    submitted = _queue(store)

    def work(i: int) -> Any:
        return _claim_all(store) if i == 0 else [store.request_cancel(sweep_id) for sweep_id in submitted]

    (claimed, cancels), errors = _in_threads(2, work)
    assert errors == []
    cancelled_at_once = {s.id for s in cancels if s.state == "cancelled"}
    assert cancelled_at_once.isdisjoint(claimed)
    assert cancelled_at_once | set(claimed) == set(submitted)
    for sweep in store.list():
        # claimed first and flagged after, or cancelled while still queued
        expected = ("running", True, 1) if sweep.id in claimed else ("cancelled", True, 0)
        assert (sweep.state, sweep.cancel_requested, sweep.attempts) == expected
