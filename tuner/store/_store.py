"""The sweep queue: submit, claim, cancel and finish sweeps in one SQL database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tuner.errors import SweepExistsError, SweepNotFoundError
from tuner.storage import read_only_where_unwritable
from tuner.store._engine import WRITE, create_store_engine, retry_locked
from tuner.store._migrate import upgrade
from tuner.store._models import NAME_MAX, SweepRow, to_sweep
from tuner.store._sweep import TERMINAL_STATES, Sweep, SweepState, check_state, check_transition

__all__ = ["SweepStore"]

T = TypeVar("T")

#: Queued sweeps one SQLite claimer tries per pass before it looks again.
_CLAIM_CANDIDATES = 8


def _now() -> datetime:
    return datetime.now(UTC)


class SweepStore:
    """The sweep queue in a SQLAlchemy database (a SQLite file or PostgreSQL).

    Opening migrates the database to the newest schema (a no-op when it is
    there); a SQLite file this process may read but not write is opened read-only
    (:func:`tuner.storage.read_only_where_unwritable`) and not migrated. The store is safe to share between threads, and several processes
    may open the same database; every method is one short transaction and
    returns frozen :class:`Sweep` values.

    Args:
        url: SQLAlchemy URL, e.g. ``Settings.database_url``
            (``sqlite:///<TUNER_HOME>/tuner.db`` or ``postgresql://…``).

    Raises:
        TunerError: the database was written by a newer adamtune (unknown schema revision).
    """

    def __init__(self, url: str) -> None:
        read_only = read_only_where_unwritable(url)
        self._engine = create_store_engine(url)
        if not read_only:  # a SQLite file this process may not write is read as it is
            upgrade(self._engine)
        self._read = sessionmaker(self._engine, expire_on_commit=False)
        self._write = sessionmaker(self._engine.execution_options(**WRITE), expire_on_commit=False)

    def __repr__(self) -> str:
        return f"SweepStore({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- transactions --------------------------------------------------------------------

    def _transaction(self, body: Callable[[Session], T], *, write: bool) -> T:
        """Run ``body`` in one transaction (committed if it returns), retrying SQLite lock errors."""
        factory = self._write if write else self._read

        def attempt() -> T:
            with factory() as session, session.begin():
                return body(session)

        return retry_locked(attempt, url=self._engine.url)

    def _locked_row(self, session: Session, sweep_id: str) -> SweepRow:
        """The row, locked until commit (``FOR UPDATE``; SQLite's write transaction locks the file)."""
        row = session.get(SweepRow, sweep_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise self._not_found("id", sweep_id)
        return row

    def _not_found(self, key: str, value: str) -> SweepNotFoundError:
        # No URL nor path of the store: the message may reach an HTTP client.
        return SweepNotFoundError(
            f"no sweep has {key} {value!r} in the sweep queue; SweepStore.list() shows the stored sweeps"
        )

    # -- submitting and reading ----------------------------------------------------------

    def submit(self, name: str, spec: Mapping[str, Any]) -> Sweep:
        """Queue a new sweep.

        Args:
            name: unique among the store's sweeps; 1 to 255 characters.
            spec: the validated spec as a JSON-able mapping (``SweepSpec.model_dump(mode="json")``).

        Returns:
            The sweep, ``queued``, ``attempts == 0``.

        Raises:
            SweepExistsError: a sweep called ``name`` exists (in any state).
            ValueError: ``name`` is empty or longer than 255 characters.
            TypeError: ``spec`` is not a mapping of JSON values (nothing was written).
        """
        if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX:
            raise ValueError(f"a sweep name must be a string of 1 to {NAME_MAX} characters, but got {name!r}")
        stored_spec = _json_copy(spec)

        def body(session: Session) -> Sweep:
            row = SweepRow(
                id=uuid.uuid4().hex,
                name=name,
                spec=stored_spec,
                state="queued",
                created_at=_now(),
                cancel_requested=False,
                attempts=0,
            )
            session.add(row)
            session.flush()
            return to_sweep(row)

        try:
            return self._transaction(body, write=True)
        except IntegrityError as e:
            existing = self._find(SweepRow.name == name)
            if existing is None:
                raise
            raise SweepExistsError(
                f"sweep names must be unique, but {name!r} is taken (id {existing.id}, {existing.state}); "
                "choose another name"
            ) from e

    def get(self, sweep_id: str) -> Sweep:
        """The sweep with this id. Raises :class:`SweepNotFoundError` if there is none."""
        sweep = self._find(SweepRow.id == sweep_id)
        if sweep is None:
            raise self._not_found("id", sweep_id)
        return sweep

    def get_by_name(self, name: str) -> Sweep:
        """The sweep called ``name``. Raises :class:`SweepNotFoundError` if there is none."""
        sweep = self._find(SweepRow.name == name)
        if sweep is None:
            raise self._not_found("name", name)
        return sweep

    def _find(self, where: Any) -> Sweep | None:
        def body(session: Session) -> Sweep | None:
            row = session.scalars(select(SweepRow).where(where)).one_or_none()
            return None if row is None else to_sweep(row)

        return self._transaction(body, write=False)

    def list(self, state: SweepState | None = None) -> list[Sweep]:
        """All sweeps, or those in ``state``, newest first (by ``created_at``).

        Raises:
            ValueError: ``state`` is not a :data:`SweepState`.
        """
        query = select(SweepRow).order_by(SweepRow.created_at.desc(), SweepRow.id.desc())
        if state is not None:
            check_state(state)
            query = query.where(SweepRow.state == state)
        return self._transaction(lambda session: [to_sweep(row) for row in session.scalars(query)], write=False)

    # -- the runner's side ---------------------------------------------------------------

    def claim_next(self) -> Sweep | None:
        """Move the oldest queued sweep to ``running`` (``attempts += 1``) and return it.

        Safe with any number of concurrent claimers, in threads or processes:
        each queued sweep goes to exactly one of them.

        Returns:
            The claimed sweep, or ``None`` when nothing is queued.
        """
        if self._engine.dialect.name == "postgresql":
            return self._transaction(_claim_skip_locked, write=True)
        return self._transaction(_claim_compare_and_set, write=True)

    def request_cancel(self, sweep_id: str) -> Sweep:
        """Cancel a sweep: a queued one at once; a running one is flagged ``cancel_requested``.

        The runner of a flagged sweep stops it and calls ``finish(sweep_id, "cancelled")``.
        Asking again for a flagged sweep changes nothing.

        Raises:
            SweepNotFoundError: no sweep has this id.
            SweepStateError: the sweep is already completed, failed or cancelled.
        """

        def body(session: Session) -> Sweep:
            row = self._locked_row(session, sweep_id)
            check_transition(sweep_id=row.id, name=row.name, current=row.state, requested="cancelled")  # type: ignore[arg-type]
            row.cancel_requested = True
            if row.state == "queued":
                row.state, row.finished_at = "cancelled", _now()
            return to_sweep(row)

        return self._transaction(body, write=True)

    def finish(self, sweep_id: str, state: SweepState, *, error: str | None = None) -> Sweep:
        """Move a running sweep to a final state (``finished_at`` = now).

        Args:
            state: ``completed``, ``failed`` or ``cancelled``.
            error: why it failed or was cancelled (stored as given).

        Raises:
            SweepNotFoundError: no sweep has this id.
            SweepStateError: the sweep cannot go from its state to ``state``
                (e.g. it is already final, or it is queued and ``state`` is not ``cancelled``).
            ValueError: ``state`` is not a final state.
        """
        check_state(state, allowed=TERMINAL_STATES, what="finish() state")

        def body(session: Session) -> Sweep:
            row = self._locked_row(session, sweep_id)
            check_transition(sweep_id=row.id, name=row.name, current=row.state, requested=state)  # type: ignore[arg-type]
            row.state, row.finished_at, row.error = state, _now(), error
            return to_sweep(row)

        return self._transaction(body, write=True)

    def requeue_running(self) -> list[Sweep]:
        """Put every sweep left ``running`` by a crash back in the queue (call once at service start).

        ``attempts`` is kept and ``started_at`` cleared. A running sweep whose
        cancel was requested is finished as ``cancelled`` instead, since nobody
        is left to stop it. Only call this when no runner of this database is alive.

        Returns:
            The sweeps put back in the queue, oldest first.
        """

        def body(session: Session) -> list[Sweep]:
            rows = session.scalars(
                select(SweepRow).where(SweepRow.state == "running").order_by(SweepRow.created_at).with_for_update()
            ).all()
            requeued = []
            for row in rows:
                target: SweepState = "cancelled" if row.cancel_requested else "queued"
                check_transition(sweep_id=row.id, name=row.name, current="running", requested=target)
                if target == "cancelled":
                    row.state, row.finished_at = "cancelled", _now()
                    row.error = row.error or "cancel requested; the service stopped before the runner did"
                else:
                    row.state, row.started_at = "queued", None
                    requeued.append(row)
            session.flush()
            return [to_sweep(row) for row in requeued]

        return self._transaction(body, write=True)

    def set_tracking(self, sweep_id: str, *, experiment_id: str, run_id: str) -> Sweep:
        """Record the MLflow experiment and parent run that track the sweep (any state).

        Raises:
            SweepNotFoundError: no sweep has this id.
        """

        def body(session: Session) -> Sweep:
            row = self._locked_row(session, sweep_id)
            row.mlflow_experiment_id, row.mlflow_run_id = experiment_id, run_id
            return to_sweep(row)

        return self._transaction(body, write=True)


def _claim_skip_locked(session: Session) -> Sweep | None:
    """PostgreSQL: lock the oldest queued row no other claimer holds, and take it."""
    row = session.scalars(
        select(SweepRow)
        .where(SweepRow.state == "queued")
        .order_by(SweepRow.created_at, SweepRow.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is None:
        return None
    check_transition(sweep_id=row.id, name=row.name, current="queued", requested="running")
    row.state, row.started_at, row.attempts = "running", _now(), row.attempts + 1
    session.flush()
    return to_sweep(row)


def _claim_compare_and_set(session: Session) -> Sweep | None:
    """Other backends: take a candidate only if it is still queued (rowcount 1), else try the next."""
    while True:
        candidates = session.scalars(
            select(SweepRow.id)
            .where(SweepRow.state == "queued")
            .order_by(SweepRow.created_at, SweepRow.id)
            .limit(_CLAIM_CANDIDATES)
        ).all()
        if not candidates:
            return None
        for sweep_id in candidates:
            result = session.execute(
                update(SweepRow)
                .where(SweepRow.id == sweep_id, SweepRow.state == "queued")
                .values(state="running", started_at=_now(), attempts=SweepRow.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                return to_sweep(session.get_one(SweepRow, sweep_id, populate_existing=True))


def _json_copy(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``spec`` through strict JSON, so what is stored is what ``get`` returns."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"a sweep spec must be a mapping, but got {type(spec).__name__}")
    try:
        return json.loads(json.dumps(dict(spec), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"a sweep spec must hold only JSON values (no NaN or infinity), but json.dumps failed: {e}; "
            'pass SweepSpec.model_dump(mode="json")'
        ) from e
