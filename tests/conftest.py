"""Fixtures shared by every test folder: throwaway PostgreSQL databases.

Tests that need PostgreSQL (the queue, Optuna, MLflow) ask ``postgres_url_factory``
for fresh databases on the local server (127.0.0.1:5432, user ``postgres``,
trust auth); without a server those tests are skipped, not failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


@pytest.fixture(scope="session")
def _postgres_admin() -> Iterator[Any]:
    """An autocommit psycopg connection to the server's ``postgres`` database (once per session)."""
    import psycopg

    try:
        # autocommit: CREATE/DROP DATABASE cannot run in a transaction
        connection = psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError:
        pytest.skip(f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT}")
    yield connection
    connection.close()


@pytest.fixture
def postgres_url_factory(_postgres_admin: Any) -> Iterator[Callable[..., str]]:
    """Creates empty databases ``adamtune_test_<8 hex>``; all are dropped when the test ends.

    ``postgres_url_factory()`` returns ``postgresql://postgres@127.0.0.1:5432/<db>``
    (SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, the driver adamtune ships).
    Connections still open at teardown are terminated before the drop.
    """
    from psycopg import sql

    created: list[str] = []

    def create() -> str:
        name = f"adamtune_test_{uuid.uuid4().hex[:8]}"
        with _postgres_admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"

    yield create
    with _postgres_admin.cursor() as cursor:
        for name in created:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for the test, restored after: tiny models gain nothing
    from a second thread, and two OpenMP threads on a busy two-core machine spin against
    each other (seconds instead of milliseconds)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
