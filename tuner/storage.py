"""Storage faults in one line: the three stores are checked before a command uses them.

The stores are the **queue** (``TUNER_DB_URL``, ``tuner.db``), the **Optuna study** store
(``TUNER_OPTUNA_STORAGE``, ``optuna.db``) and **MLflow** (``TUNER_MLFLOW_URI``, ``mlflow.db``).
:func:`check_stores` looks at each without writing anything: a SQLite file is opened
read-only (``immutable``: not even a journal is made), a database server gets one
connection. A fault becomes one :class:`~tuner.errors.StoreError` naming the store, its URL
without password and what to do; before a sweep runs, nothing is created.

A SQLite store this process may read but not write (a read-only ``TUNER_HOME``) is opened
read-only (:func:`read_only_where_unwritable`), so reading commands still work there.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from tuner.errors import StoreError

if TYPE_CHECKING:
    from tuner.settings import Settings

__all__ = ["StoreName", "check_store", "check_stores", "exception_chain", "permanent", "read_only_where_unwritable"]

#: The stores, as messages name them.
StoreName = Literal["queue", "Optuna study", "MLflow"]

#: The setting that points each store elsewhere.
_SETTING: dict[str, str] = {
    "queue": "TUNER_DB_URL",
    "Optuna study": "TUNER_OPTUNA_STORAGE",
    "MLflow": "TUNER_MLFLOW_URI",
}

#: Seconds a database server has to accept the checking connection.
_CONNECT_TIMEOUT_S = 10

#: Words of a database error that waiting does not fix (lower case).
_PERMANENT = (
    "readonly database",
    "read-only",
    "file is not a database",
    "database disk image is malformed",
    "unable to open database file",
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
)


def check_stores(settings: Settings, *, write: bool) -> None:
    """Check ``TUNER_HOME`` and the three stores of ``settings``; creates and writes nothing.

    Args:
        settings: where the stores are.
        write: the command writes (``sweep run``, ``serve``): each store must be writable, or
            creatable where it is missing. Otherwise a missing SQLite file is fine (it reads as empty).

    Raises:
        StoreError: ``TUNER_HOME`` is a file, or a store is corrupt, read-only, cannot be
            created, cannot be reached, or refused the login.
    """
    home = settings.home_dir
    blocker = _nearest_existing(home)
    if not blocker.is_dir():
        where = "is a file" if blocker == home else f"is under the file {blocker}"
        raise StoreError(
            f"TUNER_HOME {home} {where}, not a folder; set TUNER_HOME to a folder (it is created when missing)"
        )
    if write and not os.access(blocker, os.W_OK | os.X_OK):
        raise StoreError(
            f"TUNER_HOME {home} is read-only for this user; make it writable, or set TUNER_HOME to a writable folder"
        )
    for store, url in (
        ("queue", settings.database_url),
        ("Optuna study", settings.study_storage),
        ("MLflow", settings.tracking_uri),
    ):
        check_store(store, url, write=write)


def check_store(store: StoreName, url: str, *, write: bool) -> None:
    """Check one store (see :func:`check_stores`); an MLflow tracking server's URL is not checked
    here (:class:`tuner.tracking.Tracker` retries it).

    Raises:
        StoreError: the store cannot be used; ``transient`` when its server could not be reached.
    """
    if url.startswith(("http://", "https://")):
        return
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database not in (None, "", ":memory:") and not parsed.query.get("uri"):
            _check_sqlite_file(store, url, Path(parsed.database).expanduser().absolute(), write=write)
        return
    _check_server(store, url, write=write)


def read_only_where_unwritable(url: str) -> bool:
    """Whether ``url`` is a SQLite file this process may read but not write (the file, or its
    folder, which SQLite writes its journal in); if so, every SQLite connection this process opens
    to it from now on is read-only.

    That is a process-wide SQLAlchemy ``do_connect`` hook rather than another URL, since MLflow
    builds its own engine from the URL and takes a ``file:`` URI's folder for a relative path.
    The file opens ``immutable`` where no write-ahead log is pending: SQLite cannot make a WAL
    database's shared-memory file in a read-only folder.
    """
    if not url.startswith("sqlite:///") or "?" in url:
        return False
    path = Path(url.removeprefix("sqlite:///")).expanduser().absolute()
    if not path.is_file() or _writable(path):
        return False
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    hook = _read_only_hook(str(path))
    if not event.contains(Engine, "do_connect", hook):
        event.listen(Engine, "do_connect", hook)
    return True


def permanent(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is a store fault that waiting does not fix:
    a read-only or corrupt SQLite file, a refused login, a missing database or role."""
    for current in exception_chain(error):
        if isinstance(current, StoreError):
            return not current.transient
        if type(current).__name__ in ("OperationalError", "DatabaseError", "ProgrammingError", "InvalidCatalogName"):
            text = str(current).lower()
            if any(word in text for word in _PERMANENT):
                return True
    return False


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


@functools.cache
def _read_only_hook(path: str) -> Callable[..., None]:
    """A ``do_connect`` listener that opens SQLite connections to ``path`` read-only (one per path)."""
    pending = Path(f"{path}-wal").exists()
    uri = f"file:{quote(path)}?mode=ro" + ("" if pending else "&immutable=1")

    def hook(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if dialect.name == "sqlite" and cargs and os.path.abspath(str(cargs[0])) == path:
            cargs[0] = uri
            cparams["uri"] = True

    return hook


def _check_sqlite_file(store: StoreName, url: str, path: Path, *, write: bool) -> None:
    if path.is_dir():
        raise _fault(store, url, "is a folder, not a database file", "move it away")
    if path.exists():
        try:
            with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True)) as connection:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            raise _fault(
                store,
                url,
                f"is corrupt or not a SQLite database ({e})",
                "restore it from a backup or move it away (a new, empty one is created)",
            ) from None
        if write and not _writable(path):
            raise _fault(store, url, "is read-only for this user", "make the file and its folder writable")
        return
    if write:
        blocker = _nearest_existing(path.parent)
        if not blocker.is_dir():
            raise _fault(store, url, f"cannot be created: {blocker} is a file, not a folder", "point it at a folder")
        if not os.access(blocker, os.W_OK | os.X_OK):
            raise _fault(
                store, url, f"cannot be created: {blocker} is read-only for this user", "make that folder writable"
            )


def _check_server(store: StoreName, url: str, *, write: bool) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={"connect_timeout": _CONNECT_TIMEOUT_S} if url.startswith("postgresql") else {},
    )
    try:
        with engine.connect() as connection:
            read_only = (
                write
                and connection.dialect.name == "postgresql"
                and (connection.execute(text("SHOW transaction_read_only")).scalar() == "on")
            )
    except SQLAlchemyError as e:
        raise _server_fault(store, url, e) from None
    finally:
        engine.dispose()
    if read_only:
        raise _fault(
            store, url, "is read-only (transaction_read_only is on)", "connect to a writable server or database"
        )


def _server_fault(store: StoreName, url: str, error: BaseException) -> StoreError:
    cause = " ".join(str(getattr(error, "orig", None) or error).split())
    text = cause.lower()
    if "authentication failed" in text or "no pg_hba.conf entry" in text:
        return _fault(store, url, "refused the login", "check the user and password in the URL")
    if "does not exist" in text:
        return _fault(store, url, f"refused the connection: {cause[:200]}", "create it, or fix the name in the URL")
    if permanent(error):
        return _fault(store, url, f"cannot be used: {cause[:200]}", "fix the database or the URL")
    return _fault(
        store,
        url,
        f"cannot be reached: {cause[:200]}",
        "start the database server, or fix the host and port in the URL",
        transient=True,
    )


def _fault(store: StoreName, url: str, problem: str, fix: str, *, transient: bool = False) -> StoreError:
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    return StoreError(
        f"the {store} store {shown} {problem}; {fix}, or set {_SETTING[store]} to another database", transient=transient
    )


def _writable(path: Path) -> bool:
    """Whether SQLite may write ``path``: the file, and its folder (for the journal)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
