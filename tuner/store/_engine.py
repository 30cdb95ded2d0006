"""Engines for the sweep queue, and the retry around SQLite's whole-file write lock.

SQLite (the embedded default) gets WAL journaling (readers never block the
writer), a 30 s busy timeout, foreign keys, and transactions that SQLAlchemy
begins itself: write transactions with ``BEGIN IMMEDIATE``, so a writer waits
for the lock up front (under the busy timeout) instead of failing with
"database is locked" when it upgrades from reading to writing. A few retries
with backoff cover what still slips through.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

__all__ = ["WRITE", "create_store_engine", "retry_locked"]

T = TypeVar("T")

#: Execution option key read by the SQLite ``begin`` hook: the statement that opens a transaction.
_BEGIN_OPTION = "adamtune_sqlite_begin"

#: Execution options of a write transaction (``BEGIN IMMEDIATE`` on SQLite, nothing elsewhere).
WRITE: dict[str, Any] = {_BEGIN_OPTION: "BEGIN IMMEDIATE"}

#: pysqlite's busy timeout, seconds: how long a writer waits for another's lock.
SQLITE_TIMEOUT_S = 30.0

#: Tries of one transaction that failed with "database is locked" (SQLite only).
LOCKED_TRIES = 5
LOCKED_BACKOFF_S = 0.05


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; for a SQLite file, its parent folder is created first."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"
    if not memory and not parsed.query.get("uri"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        connect_args={"timeout": SQLITE_TIMEOUT_S, "check_same_thread": False},
        # one shared connection, or every pooled connection would see its own empty database
        **({"poolclass": StaticPool} if memory else {}),
    )
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # pysqlite emits no BEGIN; _on_sqlite_begin does
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


def _is_locked(error: OperationalError) -> bool:
    return "database is locked" in str(error.orig)


def retry_locked(transaction: Callable[[], T], *, url: URL) -> T:
    """Run ``transaction`` (which opens and commits its own transaction), retrying SQLite lock errors.

    Anything else, and a lock error on the last try, propagates unchanged.
    """
    if url.get_backend_name() != "sqlite":
        return transaction()
    for attempt in range(LOCKED_TRIES):
        try:
            return transaction()
        except OperationalError as e:
            if attempt == LOCKED_TRIES - 1 or not _is_locked(e):
                raise
            time.sleep(LOCKED_BACKOFF_S * 2**attempt * (1 + random.random()))  # backoff, jittered
    raise AssertionError("unreachable")
