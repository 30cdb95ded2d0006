"""An in-process API over fresh SQLite stores, without a runner (sweeps stay queued)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tuner.api import create_app
from tuner.service import SweepService
from tuner.settings import Settings


@pytest.fixture
def service(tmp_path: Path) -> SweepService:
    return SweepService(Settings(home=tmp_path))


@pytest.fixture
def client(service: SweepService) -> TestClient:
    with TestClient(create_app(service)) as client:
        yield client
