"""Packed tests train tiny models: one torch thread each (two OpenMP threads on a busy
two-core machine spin against each other and run ~50x slower)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Every packed test runs on one torch thread (``one_torch_thread`` in tests/conftest.py)."""
