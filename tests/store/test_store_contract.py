"""The sweep-queue contract, run against SQLite and PostgreSQL (see conftest.store_url)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tuner.errors import SweepExistsError, SweepNotFoundError, SweepStateError
from tuner.store import TERMINAL_STATES, Sweep, SweepStore

SPEC = {"workload": "digits_mlp", "n_trials": 8, "space": {"lr": [1e-5, 1e-1], "log": True}, "tags": ["a", None, 1.5]}
STATES = ["queued", "running", "completed", "failed", "cancelled"]

MakeSweep = Callable[..., Sweep]


def _is_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


def _assert_plain(sweep: object) -> None:
    """A frozen Sweep whose fields hold plain Python values only (no ORM object leaks)."""
    assert type(sweep) is Sweep
    for field in dataclasses.fields(Sweep):
        value = getattr(sweep, field.name)
        assert type(value).__module__ in {"builtins", "datetime"}, (field.name, type(value))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sweep.name = "other"  # type: ignore[misc]


# -- submit and read ---------------------------------------------------------------------


def test_submit_queues_a_sweep(store: SweepStore) -> None:
    before = datetime.now(UTC)
    sweep = store.submit("lr-search", SPEC)
    after = datetime.now(UTC)

    _assert_plain(sweep)
    assert len(sweep.id) == 32 and int(sweep.id, 16) >= 0
    assert (sweep.name, sweep.spec, sweep.state) == ("lr-search", SPEC, "queued")
    assert _is_utc(sweep.created_at) and before <= sweep.created_at <= after
    assert (sweep.started_at, sweep.finished_at, sweep.error) == (None, None, None)
    assert (sweep.cancel_requested, sweep.attempts) == (False, 0)
    assert (sweep.mlflow_experiment_id, sweep.mlflow_run_id) == (None, None)
    assert store.get(sweep.id) == sweep
    assert store.get_by_name("lr-search") == sweep


def test_stored_spec_is_a_copy(store: SweepStore) -> None:
    spec = {"space": {"lr": [1e-5, 1e-1]}}
    sweep = store.submit("s", spec)
    spec["space"]["lr"].append(99)
    assert store.get(sweep.id).spec == {"space": {"lr": [1e-5, 1e-1]}}


@pytest.mark.parametrize("spec", [{"x": float("nan")}, {"x": object()}, ["not", "a", "mapping"]])
def test_spec_must_be_json(store: SweepStore, spec: object) -> None:
    with pytest.raises(TypeError, match="spec must"):
        store.submit("s", spec)  # type: ignore[arg-type]
    assert store.list() == []


@pytest.mark.parametrize("name", ["", "x" * 256])
def test_name_length_is_checked(store: SweepStore, name: str) -> None:
    with pytest.raises(ValueError, match="1 to 255 characters"):
        store.submit(name, {})
    assert store.list() == []


@pytest.mark.parametrize("first_state", STATES)
def test_duplicate_name_is_refused_in_any_state(store: SweepStore, make_sweep: MakeSweep, first_state: str) -> None:
    first = make_sweep(first_state, name="dup")
    with pytest.raises(SweepExistsError, match=f"'dup' is taken \\(id {first.id}, {first_state}\\)"):
        store.submit("dup", {})
    assert [s.id for s in store.list()] == [first.id]


def test_list_is_newest_first_and_filters_by_state(store: SweepStore, make_sweep: MakeSweep) -> None:
    done = make_sweep("completed", name="a")
    running = make_sweep("running", name="b")
    queued = [make_sweep("queued", name=n) for n in ("c", "d")]

    assert [s.name for s in store.list()] == ["d", "c", "b", "a"]
    assert store.list(state="queued") == queued[::-1]
    assert store.list(state="running") == [running]
    assert store.list(state="completed") == [done]
    assert store.list(state="failed") == []
    for sweep in store.list():
        _assert_plain(sweep)


def test_list_refuses_an_unknown_state(store: SweepStore) -> None:
    with pytest.raises(ValueError, match="'paused'"):
        store.list(state="paused")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get("0" * 32),
        lambda s: s.get_by_name("missing"),
        lambda s: s.finish("0" * 32, "completed"),
        lambda s: s.request_cancel("0" * 32),
        lambda s: s.set_tracking("0" * 32, experiment_id="1", run_id="r"),
    ],
    ids=["get", "get_by_name", "finish", "request_cancel", "set_tracking"],
)
def test_unknown_sweeps_are_not_found(store: SweepStore, call: Callable[[SweepStore], object]) -> None:
    store.submit("present", {})
    with pytest.raises(SweepNotFoundError, match="no sweep has"):
        call(store)


# -- claiming ----------------------------------------------------------------------------


def test_claim_next_takes_the_oldest_queued_sweep(store: SweepStore) -> None:
    assert store.claim_next() is None
    ids = [store.submit(name, {}).id for name in ("first", "second", "third")]
    claimed = [store.claim_next() for _ in ids]
    assert store.claim_next() is None

    assert [s.id for s in claimed] == ids
    for sweep in claimed:
        _assert_plain(sweep)
        assert (sweep.state, sweep.attempts) == ("running", 1)
        assert _is_utc(sweep.started_at) and sweep.started_at >= sweep.created_at
        assert store.get(sweep.id) == sweep


def test_claim_skips_cancelled_sweeps(store: SweepStore, make_sweep: MakeSweep) -> None:
    make_sweep("cancelled", name="gone")
    kept = make_sweep("queued", name="kept")
    assert store.claim_next().id == kept.id
    assert store.claim_next() is None


# -- the transition table ----------------------------------------------------------------

#: The allowed finish() moves, written out independently of the implementation's table.
FINISH_ALLOWED = {("queued", "cancelled"), ("running", "completed"), ("running", "failed"), ("running", "cancelled")}


@pytest.mark.parametrize("target", sorted(TERMINAL_STATES))
@pytest.mark.parametrize("start", STATES)
def test_finish_follows_the_transition_table(store: SweepStore, make_sweep: MakeSweep, start: str, target: str) -> None:
    sweep = make_sweep(start)
    if (start, target) in FINISH_ALLOWED:
        finished = store.finish(sweep.id, target, error="boom")
        _assert_plain(finished)
        assert (finished.state, finished.error) == (target, "boom")
        assert _is_utc(finished.finished_at) and finished.finished_at >= finished.created_at
        assert store.get(sweep.id) == finished
    else:
        with pytest.raises(SweepStateError) as raised:
            store.finish(sweep.id, target)
        message = str(raised.value)
        assert repr(sweep.name) in message and f"is {start}" in message and f"become {target}" in message
        assert store.get(sweep.id) == sweep


@pytest.mark.parametrize("target", ["queued", "running", "paused"])
def test_finish_takes_only_final_states(store: SweepStore, make_sweep: MakeSweep, target: str) -> None:
    sweep = make_sweep("running")
    with pytest.raises(ValueError, match="finish\\(\\) state must be one of cancelled, completed, failed"):
        store.finish(sweep.id, target)  # type: ignore[arg-type]
    assert store.get(sweep.id) == sweep


def test_finished_sweeps_keep_their_timeline(store: SweepStore, make_sweep: MakeSweep) -> None:
    sweep = make_sweep("failed")
    assert sweep.created_at <= sweep.started_at <= sweep.finished_at
    assert all(_is_utc(t) for t in (sweep.created_at, sweep.started_at, sweep.finished_at))


# -- cancelling --------------------------------------------------------------------------


def test_cancelling_a_queued_sweep_is_immediate(store: SweepStore, make_sweep: MakeSweep) -> None:
    sweep = make_sweep("queued")
    cancelled = store.request_cancel(sweep.id)
    assert (cancelled.state, cancelled.cancel_requested, cancelled.attempts) == ("cancelled", True, 0)
    assert _is_utc(cancelled.finished_at)
    assert store.get(sweep.id) == cancelled


def test_cancelling_a_running_sweep_flags_it_for_its_runner(store: SweepStore, make_sweep: MakeSweep) -> None:
    sweep = make_sweep("running")
    flagged = store.request_cancel(sweep.id)
    assert (flagged.state, flagged.cancel_requested, flagged.finished_at) == ("running", True, None)
    assert store.request_cancel(sweep.id) == flagged  # asking twice changes nothing

    done = store.finish(sweep.id, "cancelled", error="cancelled by user")
    assert (done.state, done.cancel_requested, done.error) == ("cancelled", True, "cancelled by user")


@pytest.mark.parametrize("start", sorted(TERMINAL_STATES))
def test_cancelling_a_final_sweep_is_refused(store: SweepStore, make_sweep: MakeSweep, start: str) -> None:
    sweep = make_sweep(start)
    with pytest.raises(SweepStateError, match=f"is {start} and cannot become cancelled"):
        store.request_cancel(sweep.id)
    assert store.get(sweep.id) == sweep


# -- crash recovery ----------------------------------------------------------------------


def test_requeue_running_puts_crashed_sweeps_back(store: SweepStore, make_sweep: MakeSweep) -> None:
    done = make_sweep("completed")
    crashed = [make_sweep("running"), make_sweep("running")]
    flagged = store.request_cancel(make_sweep("running").id)
    waiting = make_sweep("queued")

    requeued = store.requeue_running()

    assert [s.id for s in requeued] == [s.id for s in crashed]
    for sweep in requeued:
        _assert_plain(sweep)
        assert (sweep.state, sweep.attempts, sweep.started_at) == ("queued", 1, None)
        assert store.get(sweep.id) == sweep
    # a cancel asked for before the crash is honoured, not re-run
    after = store.get(flagged.id)
    assert (after.state, after.attempts) == ("cancelled", 1) and _is_utc(after.finished_at)
    assert store.get(done.id) == done and store.get(waiting.id) == waiting
    assert store.requeue_running() == []

    # the requeued sweeps run again, ahead of younger ones, counting the attempt
    again = [store.claim_next() for _ in range(3)]
    assert [s.id for s in again] == [crashed[0].id, crashed[1].id, waiting.id]
    assert [s.attempts for s in again] == [2, 2, 1]


# -- tracking ids ------------------------------------------------------------------------


@pytest.mark.parametrize("start", STATES)
def test_set_tracking_records_mlflow_ids(store: SweepStore, make_sweep: MakeSweep, start: str) -> None:
    sweep = make_sweep(start)
    tracked = store.set_tracking(sweep.id, experiment_id="17", run_id="a1b2c3")
    _assert_plain(tracked)
    assert tracked == dataclasses.replace(sweep, mlflow_experiment_id="17", mlflow_run_id="a1b2c3")
    assert store.get(sweep.id) == tracked


def test_tracking_ids_survive_later_transitions(store: SweepStore, make_sweep: MakeSweep) -> None:
    sweep = make_sweep("running")
    store.set_tracking(sweep.id, experiment_id="3", run_id="run")
    done = store.finish(sweep.id, "completed")
    assert (done.mlflow_experiment_id, done.mlflow_run_id) == ("3", "run")
