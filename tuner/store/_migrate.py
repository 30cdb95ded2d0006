"""Bring a sweep-queue database to the newest schema with the Alembic revisions shipped in this package."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from tuner.errors import TunerError
from tuner.store._engine import WRITE, retry_locked

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade"]

#: The Alembic script folder (``env.py``, ``versions/``), shipped as package data.
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

#: Key of the PostgreSQL advisory lock that serializes concurrent upgrades.
_PG_LOCK_KEY = 0x616461_6D74  # "adamt"

#: Alembic keeps the running migration in module globals (``alembic.context``,
#: ``alembic.op``), so two threads must never run one at the same time, even on
#: different databases. Taken before the database lock, so the order is always the same.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code (no ``alembic.ini``); ``env.py`` migrates ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Upgrade the database to head in one transaction; a no-op when it is there already.

    Concurrent openers wait for each other: threads of one process through a
    lock (Alembic is not thread-safe), processes through the database: SQLite
    through ``BEGIN IMMEDIATE``, PostgreSQL through a transaction-scoped advisory lock.

    Raises:
        TunerError: the database is at a revision this adamtune does not know
            (written by a newer adamtune).
    """

    def transaction() -> None:
        with _ALEMBIC_LOCK, engine.connect() as connection:
            connection.execution_options(**WRITE)
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                config = alembic_config(connection)
                _check_known(connection, ScriptDirectory.from_config(config), engine)
                command.upgrade(config, "head")

    retry_locked(transaction, url=engine.url)


def _check_known(connection: Connection, script: ScriptDirectory, engine: Engine) -> None:
    for revision in MigrationContext.configure(connection).get_current_heads():
        try:
            script.get_revision(revision)
        except CommandError as e:
            raise TunerError(
                f"the sweep database {engine.url.render_as_string(hide_password=True)} is at schema "
                f"revision {revision!r}, which this adamtune does not know (its newest is "
                f"{script.get_current_head()!r}); upgrade adamtune, or point TUNER_DB_URL at another database"
            ) from e
