"""The sweep-queue contract runs against every backend: a SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tuner.store import Sweep, SweepState, SweepStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """URL of an empty database: a SQLite file under tmp_path, or ``adamtune_test_<8 hex>`` on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tuner.db'}"
    return request.getfixturevalue("postgres_url_factory")()


@pytest.fixture
def store(store_url: str) -> SweepStore:
    return SweepStore(store_url)


@pytest.fixture
def raw_engine(store_url: str) -> Iterator[Engine]:
    """A plain SQLAlchemy engine on the store's database, to look at what was written."""
    engine = create_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_sweep(store: SweepStore) -> Callable[..., Sweep]:
    """Submits a sweep and drives it to ``state`` through the public API.

    Only for ``queued`` may other sweeps be queued already (claim_next takes the oldest).
    """
    counter = itertools.count()

    def make(state: SweepState, name: str | None = None) -> Sweep:
        sweep = store.submit(name or f"sweep-{next(counter)}", {"workload": "digits_mlp", "n_trials": 4})
        if state == "queued":
            return sweep
        if state == "cancelled":
            return store.request_cancel(sweep.id)
        claimed = store.claim_next()
        assert claimed is not None and claimed.id == sweep.id, "another sweep was queued before this one"
        if state == "running":
            return claimed
        return store.finish(sweep.id, state)

    return make
