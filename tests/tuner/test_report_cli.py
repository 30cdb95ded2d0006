"""``tuner report NAME [-o FILE]``: writes the sweep's self-contained report page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from study_cases import sweep_in_home
from typer.testing import CliRunner

from tuner.cli import app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUNER_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    sweep_in_home(tmp_path / "home", "rep", "adam", n=6)
    return tmp_path


def test_report_writes_the_page_to_the_given_file(home: Path) -> None:
    (home / "out").mkdir()
    result = CliRunner().invoke(app, ["report", "rep", "-o", "out/page.html"])

    assert result.exit_code == 0, result.output
    assert "making the report…" in result.output and "wrote out/page.html" in result.output  # a line while it builds
    html = (home / "out" / "page.html").read_text(encoding="utf-8")
    assert 'id="plots"' in html and 'id="trials"' in html and 'id="top-k"' in html and 'id="headline"' in html
    assert html.count('class="plot"') >= 4  # 6 trials: no contour (10) and no importance (8)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)  # fetches nothing


def test_report_defaults_to_report_name_html_in_the_current_folder(home: Path) -> None:
    result = CliRunner().invoke(app, ["report", "rep"])

    assert result.exit_code == 0, result.output
    assert "wrote report-rep.html" in result.output
    assert (home / "report-rep.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_of_an_unknown_sweep_is_refused(home: Path) -> None:
    from tuner.errors import SweepNotFoundError

    result = CliRunner().invoke(app, ["report", "nope"])

    assert isinstance(result.exception, SweepNotFoundError)
    assert not (home / "report-nope.html").exists()
