"""Opening a store migrates its database to head with the revisions shipped in the package."""

from __future__ import annotations

import importlib.resources
import sqlite3
import threading

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from tuner.errors import TunerError
from tuner.store import SweepStore

MIGRATIONS = importlib.resources.files("tuner.store") / "migrations"


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"the migration history must be linear, but has heads {heads}"
    return heads[0]


def _versions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT version_num FROM alembic_version")))


def _schema(engine: Engine) -> dict[str, object]:
    inspector = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted(i["name"] for i in inspector.get_indexes(table)),
            sorted(c["name"] for c in inspector.get_check_constraints(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS / "env.py").is_file()
    assert any(p.name.endswith(".py") for p in (MIGRATIONS / "versions").iterdir())


def test_open_creates_the_queue_at_head(store_url: str, raw_engine: Engine) -> None:
    assert inspect(raw_engine).get_table_names() == []
    SweepStore(store_url)
    assert set(inspect(raw_engine).get_table_names()) == {"sweeps", "alembic_version"}
    assert _versions(raw_engine) == [_head()]
    columns = {c["name"] for c in inspect(raw_engine).get_columns("sweeps")}
    assert {"id", "name", "spec", "state", "attempts", "cancel_requested", "mlflow_run_id"} <= columns


def test_reopening_changes_nothing(store_url: str, raw_engine: Engine) -> None:
    sweep = SweepStore(store_url).submit("kept", {"n_trials": 3})
    schema = _schema(raw_engine)

    reopened = SweepStore(store_url)

    assert reopened.get(sweep.id) == sweep
    assert _schema(raw_engine) == schema
    assert _versions(raw_engine) == [_head()]


def test_a_database_from_a_newer_adamtune_is_refused(store_url: str, raw_engine: Engine) -> None:
    SweepStore(store_url)
    with raw_engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(TunerError, match="revision 'f00dfeed'.*upgrade adamtune"):
        SweepStore(store_url)


def test_concurrent_first_opens_migrate_once(store_url: str, raw_engine: Engine) -> None:
    n = 6
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait(timeout=30)
        try:
            SweepStore(store_url)
        except BaseException as e:  # collected; asserted below
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert _versions(raw_engine) == [_head()]


def test_sqlite_file_gets_its_folder_and_wal_mode(tmp_path) -> None:
    path = tmp_path / "not" / "yet" / "tuner.db"
    SweepStore(f"sqlite:///{path}").submit("s", {})
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_sqlite_works_for_one_thread() -> None:
    store = SweepStore("sqlite://")
    sweep = store.submit("s", {})
    assert store.claim_next() == store.get(sweep.id)
    assert store.get(sweep.id).state == "running"
