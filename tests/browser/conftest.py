"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

The PyPI ``playwright`` package (the ``dev`` extra) brings its driver but no browser;
``make test`` installs Debian's ``chromium`` first (``make browser``), and these tests
launch that binary. Where either is missing the tests skip, saying which and how to
get it; under ``CI=true`` the skip says, loudly, that CI did not run them.

Screenshots go to ``$ADAMTUNE_SCREENSHOTS`` when set (kept after the run), else to
the test's ``tmp_path``.

The MLflow, optuna-dashboard and report tests share one finished sweep (:func:`sweep`, written
by :func:`browsing.write_sweep`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from browsing import Sweep, write_sweep

#: Where Debian's ``chromium`` package puts the browser, if it is not on PATH.
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")


def chromium_executable() -> str | None:
    """Path of a ``chromium`` binary: on PATH, else Debian's, else ``None``."""
    found = shutil.which("chromium")
    if found:
        return found
    return str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.is_file() else None


def _skip(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        reason = f"!!! CI=true but the browser tests did NOT run: {reason} !!!"
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``), one for the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip("playwright is not importable: install the dev extra (pip install -e '.[dev]')")
    executable = chromium_executable()
    if executable is None:
        _skip(
            f"no chromium binary on PATH or at {DEBIAN_CHROMIUM}: `make browser` installs Debian's "
            "(apt-get install chromium), which needs root and the Debian package registry"
        )
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, and Chromium refuses its sandbox for root;
        # --disable-dev-shm-usage: containers' /dev/shm (64 MiB in Docker) is too small for its pages.
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context (no cookies or local storage from other tests)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)  # ms; the first MLflow page load on a busy CI machine
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Folder for this test's screenshots: ``$ADAMTUNE_SCREENSHOTS`` or ``tmp_path``."""
    folder = Path(os.environ["ADAMTUNE_SCREENSHOTS"]) if os.environ.get("ADAMTUNE_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """The shared finished sweep (:func:`browsing.write_sweep`), its stores in a fresh ``TUNER_HOME``."""
    return write_sweep(tmp_path_factory.mktemp("tuner-home"))
