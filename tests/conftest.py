"""Fixtures shared by every test folder: throwaway PostgreSQL databases.

Tests that need PostgreSQL (the queue, Optuna, MLflow) ask ``postgres_url_factory``
for fresh databases on the local server (127.0.0.1:5432, user ``postgres``,
trust auth). Without a server those tests are skipped, except under CI (``CI=true``,
as CI services set it), where the server is part of the machine and its absence
fails them: see :func:`connect_postgres_admin`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
_TEST_PROCESS = os.getpid()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Test files with a ``slow`` test run first, the rest after them, each file's tests in
    their order: with pytest-xdist's ``--dist loadfile --no-loadscope-reorder`` (``make test``)
    the long files start early and the many short ones fill both workers' ends (longest
    first), instead of one worker finishing a long end-to-end file alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: files stay together


@pytest.fixture(autouse=True)
def _no_hard_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``os._exit`` in the pytest process fails the test instead of ending the run.

    ``tuner sweep run`` ends a finished sweep with ``os._exit`` (tuner/cli/__init__.py): a
    test that ran one in-process by mistake would stop pytest with exit code 0 and skip
    every later test. Other processes (forked children) exit as usual.
    """
    real_exit = os._exit

    def guarded(code: int) -> None:
        if os.getpid() == _TEST_PROCESS:
            raise AssertionError(f"os._exit({code}) in the test process: run the tuner CLI in a subprocess")
        real_exit(code)

    monkeypatch.setattr(os, "_exit", guarded)


def connect_postgres_admin(host: str = PG_HOST, port: int = PG_PORT) -> Any:
    """An autocommit psycopg connection to the server's ``postgres`` database, or the
    calling test's end: a failure with ``CI=true`` in the environment, a skip otherwise.
    The one place of the rule for every PostgreSQL test."""
    import psycopg

    try:
        # autocommit: CREATE/DROP DATABASE cannot run in a transaction
        return psycopg.connect(
            host=host, port=port, user=PG_USER, dbname="postgres", connect_timeout=3, autocommit=True
        )
    except psycopg.OperationalError as e:
        reason = f"PostgreSQL not reachable on {host}:{port} as user {PG_USER!r}: {' '.join(str(e).split())}"
        if os.environ.get("CI", "").strip().lower() in ("true", "1"):
            pytest.fail(
                f"{reason}; CI=true requires it (start the server, or unset CI to skip these tests)", pytrace=False
            )
        pytest.skip(f"{reason} (with CI=true this fails)")


@pytest.fixture(scope="session")
def _postgres_admin() -> Iterator[Any]:
    """An autocommit psycopg connection to the server's ``postgres`` database (once per session)."""
    connection = connect_postgres_admin()
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
