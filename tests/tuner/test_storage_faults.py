"""Storage faults in one line: a corrupt, read-only, missing or unreachable store, or a bad
``TUNER_HOME``, ends each command with exit code 2 and one line naming the store, its URL
without password and what to do; the stores are left byte for byte as they were.

The CLI runs in a subprocess, as a user meets it: whatever MLflow, Alembic or Ray would log
lands on the same stderr. A read-only home is read-only for the user running the CLI: as root
(who may write anything) it runs as ``nobody``, through util-linux's ``setpriv``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuner.errors import SpecError, StoreError, TrackingError

NOBODY = 65534
REPO = Path(__file__).resolve().parents[2]
SPEC = "name: faulty\nworkload: digits_mlp\nsearch_space: adam\nn_trials: 2\nmax_epochs: 1\n"
STORE_FILES = {"queue": "tuner.db", "Optuna study": "optuna.db", "MLflow": "mlflow.db"}
SETTINGS = {"queue": "TUNER_DB_URL", "Optuna study": "TUNER_OPTUNA_STORAGE", "MLflow": "TUNER_MLFLOW_URI"}
#: Every command that opens the stores; ``serve`` exits before it binds, on a port no test uses.
COMMANDS = {
    "sweep list": ["sweep", "list"],
    "sweep show": ["sweep", "show", "ran"],
    "export": ["export", "ran"],
    "sweep run": ["sweep", "run", "{spec}"],
    "serve": ["serve", "--port", "1"],
}


#: Makes the stored home (in a process of its own, so every store is closed cleanly at its end).
_MAKE_HOME = """
import sqlite3, sys
from tuner import parse_spec
from tuner.service import SweepService
from tuner.settings import Settings

home = sys.argv[1]
service = SweepService(Settings(home=home))
args = {"workload": "digits_mlp", "search_space": "adam", "n_trials": 2, "max_epochs": 1}
queued, ran = parse_spec({"name": "queued", **args}), parse_spec({"name": "ran", **args})
service.store.submit(queued.name, queued.model_dump(mode="json"))
service.studies.create(ran)
service.tracker.start_sweep(ran.name, ran.model_dump(mode="json"))
sqlite3.connect(home + "/mlflow.db").execute("PRAGMA journal_mode=WAL")  # as the MLflow writer leaves it
"""


@pytest.fixture(scope="module")
def _stored_home() -> Iterator[Path]:
    """A home with all three stores as sweeps leave them (WAL journals, closed): a queued sweep
    ``queued`` and a run sweep ``ran`` (its study and MLflow experiment, no trials yet)."""
    base = Path(tempfile.mkdtemp(prefix="adamtune-faults-"))
    home = base / "home"
    subprocess.run(
        [sys.executable, "-c", _MAKE_HOME, str(home)], check=True, capture_output=True, cwd=REPO, timeout=300
    )
    yield home
    shutil.rmtree(base)


@pytest.fixture
def place() -> Iterator[Path]:
    """An empty folder any user may read (the CLI may run as ``nobody``), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="adamtune-fault-"))
    folder.chmod(0o755)
    (folder / "spec.yaml").write_text(SPEC)
    (folder / "spec.yaml").chmod(0o644)
    yield folder
    for path in (folder, *folder.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


@pytest.fixture
def home(_stored_home: Path, place: Path) -> Path:
    """A copy of the stored home, for one test."""
    copy = place / "home"
    shutil.copytree(_stored_home, copy)
    return copy


def tuner(
    place: Path, command: str, *, home: Path, env: dict[str, str] | None = None, user: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``tuner <command>`` with ``TUNER_HOME=home`` (and ``env``) in ``place``, as ``user``."""
    args = [a.format(spec=place / "spec.yaml") for a in COMMANDS[command]]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    clean["PYTHONPATH"] = str(REPO)
    as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
    return subprocess.run(
        [*as_user, sys.executable, "-m", "tuner", *args],
        env={**clean, "TUNER_HOME": str(home), **(env or {})},
        cwd=place,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (``folder`` itself as ``"."``) with its bytes (``None`` for a folder)."""
    if not folder.exists():
        return {}
    if folder.is_file():
        return {".": folder.read_bytes()}
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in [folder, *folder.rglob("*")]}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one line of ``error: ...`` the command printed, after asserting exit 2 and nothing else
    (but the progress lines of waits already begun, e.g. "starting Ray…")."""
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert all(line.endswith("…") for line in result.stdout.splitlines()), result.stdout
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- corrupt SQLite files ----------------------------------------------------------------


@pytest.mark.parametrize("store", STORE_FILES)
def test_a_corrupt_sqlite_store_fails_every_command_in_one_line(store: str, home: Path, place: Path) -> None:
    (home / STORE_FILES[store]).write_bytes(os.urandom(8192))
    before = snapshot(home)
    for command in COMMANDS:
        line = one_line_error(tuner(place, command, home=home))
        assert f"the {store} store sqlite:///{home / STORE_FILES[store]} is corrupt or not a SQLite database" in line, (
            command
        )
        assert SETTINGS[store] in line and "restore it from a backup or move it away" in line
        assert snapshot(home) == before, command  # nothing written, no store or Ray folder created


def test_a_corrupt_store_is_not_retried_by_the_tracker(tmp_path: Path) -> None:
    """MLflow's file is corrupt: the tracker raises at once (with retries it would end in
    TrackingError after retry_seconds)."""
    from tuner.tracking import Tracker

    path = tmp_path / "mlflow.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="the MLflow store .* is corrupt"):
        Tracker(f"sqlite:///{path}", None, retry_seconds=1)
    assert path.read_bytes() == b"not a database" * 100


# -- a read-only home ----------------------------------------------------------------------


@pytest.fixture
def read_only_home(home: Path) -> Iterator[tuple[Path, int | None]]:
    """The stored home, read-only (folders and files) for the user the CLI runs as."""
    root = os.geteuid() == 0
    if root and shutil.which("setpriv") is None:
        pytest.skip("as root, a read-only home needs util-linux's setpriv to run the CLI as nobody")
    for path in (home, *home.rglob("*")):
        path.chmod(0o555 if path.is_dir() else 0o444)
    yield home, NOBODY if root else None


def test_reading_commands_work_on_a_read_only_home(read_only_home: tuple[Path, int | None], place: Path) -> None:
    home, user = read_only_home
    before = snapshot(home)
    listed = tuner(place, "sweep list", home=home, user=user)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "queued" in listed.stdout and "ran" in listed.stdout and "incomplete" in listed.stdout
    shown = tuner(place, "sweep show", home=home, user=user)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert shown.stdout.startswith("sweep ran: incomplete, workload digits_mlp") and shown.stderr == ""
    exported = tuner(place, "export", home=home, user=user)  # read; nothing to export yet
    assert one_line_error(exported) == "error: sweep 'ran' has no completed trial yet; `tuner sweep show ran` says why"
    assert snapshot(home) == before


@pytest.mark.parametrize("command", ["sweep run", "serve"])
def test_writing_commands_refuse_a_read_only_home_before_anything(
    command: str, read_only_home: tuple[Path, int | None], place: Path
) -> None:
    home, user = read_only_home
    before = snapshot(home)
    line = one_line_error(tuner(place, command, home=home, user=user))
    assert (
        line
        == f"error: TUNER_HOME {home} is read-only for this user; make it writable, or set TUNER_HOME to a writable folder"
    )
    assert snapshot(home) == before


# -- a TUNER_HOME that is not a folder -----------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_home_that_is_a_file_fails_in_one_line(command: str, place: Path) -> None:
    home = place / "tuner-data"
    home.write_text("a file\n")
    line = one_line_error(tuner(place, command, home=home))
    assert (
        line
        == f"error: TUNER_HOME {home} is a file, not a folder; set TUNER_HOME to a folder (it is created when missing)"
    )
    assert snapshot(home) == {".": b"a file\n"}


def test_a_home_under_a_file_fails_in_one_line(place: Path) -> None:
    blocker = place / "tuner-data"
    blocker.write_text("a file\n")
    line = one_line_error(tuner(place, "sweep run", home=blocker / "home"))
    assert f"TUNER_HOME {blocker / 'home'} is under the file {blocker}, not a folder" in line
    assert snapshot(blocker) == {".": b"a file\n"}


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.parametrize("store", SETTINGS)
@pytest.mark.parametrize("command", ["sweep list", "sweep run"])
def test_an_unreachable_postgresql_fails_in_one_line_without_its_password(
    store: str, command: str, place: Path
) -> None:
    port = closed_port()
    home = place / "tuner-data"
    url = f"postgresql://adamtune:s3cret@127.0.0.1:{port}/adamtune"
    line = one_line_error(tuner(place, command, home=home, env={SETTINGS[store]: url}))
    assert line.startswith(
        f"error: the {store} store postgresql://adamtune:***@127.0.0.1:{port}/adamtune cannot be reached: "
    )
    assert (
        "Connection refused" in line
        and f"start the database server, or fix the host and port in the URL, or set {SETTINGS[store]}" in line
    )
    assert "s3cret" not in line
    assert not home.exists()


def test_an_unreachable_mlflow_database_is_retried_by_the_tracker_only_as_long_as_told(tmp_path: Path) -> None:
    """Unreachable is transient: the tracker retries (not MLflow's own ~100 s of engine retries)
    for retry_seconds, then gives up with TrackingError."""
    from tuner.tracking import Tracker

    with pytest.raises(TrackingError, match=r"TUNER_MLFLOW_RETRY_SECONDS=0\.5\)"):
        Tracker(f"postgresql://adamtune:s3cret@127.0.0.1:{closed_port()}/adamtune", None, retry_seconds=0.5)


@pytest.mark.parametrize("store", SETTINGS)
def test_a_missing_postgresql_database_fails_in_one_line(store: str, place: Path, postgres_url_factory) -> None:
    existing = postgres_url_factory()  # the server is there (or the test skips by the PostgreSQL rule)
    url = existing.rsplit("/", 1)[0] + "/adamtune_no_such_database"
    line = one_line_error(tuner(place, "sweep run", home=place / "tuner-data", env={SETTINGS[store]: url}))
    assert f"the {store} store {url} refused the connection" in line
    assert 'database "adamtune_no_such_database" does not exist; create it, or fix the name in the URL' in line
    assert not (place / "tuner-data").exists()


def test_an_unknown_postgresql_role_fails_in_one_line(place: Path, postgres_url_factory) -> None:
    url = postgres_url_factory().replace("postgres@", "adamtune_no_such_role:s3cret@")
    line = one_line_error(tuner(place, "sweep list", home=place / "tuner-data", env={"TUNER_DB_URL": url}))
    assert 'role "adamtune_no_such_role" does not exist' in line and "s3cret" not in line and ":***@" in line


# -- admission -------------------------------------------------------------------------------


def _spec(cpu: float, gpu: float = 0.0):
    from tuner import parse_spec

    return parse_spec(
        {
            "name": "big",
            "workload": "digits_mlp",
            "search_space": "adam",
            "n_trials": 2,
            "max_epochs": 1,
            "resources_per_trial": {"cpu": cpu, "gpu": gpu},
        }
    )


NODES = [{"CPU": 8.0, "GPU": 0.0}, {"CPU": 16.0, "GPU": 1.0}, {"CPU": 4.0}]


@pytest.mark.parametrize(("cpu", "gpu"), [(64, 0), (1, 2), (17, 0.5)])
def test_a_trial_no_node_can_hold_is_refused(cpu: float, gpu: float) -> None:
    from tuner.executor import check_admission

    with pytest.raises(SpecError) as info:
        check_admission(_spec(cpu, gpu), NODES)
    assert str(info.value) == (
        f"invalid sweep spec: resources_per_trial: a trial asks for cpu={cpu:g}, gpu={gpu:g}, but no node of the Ray "
        "cluster has that (its largest has cpu=16, gpu=1); lower resources_per_trial, or add a node that large to the cluster"
    )


@pytest.mark.parametrize(("cpu", "gpu"), [(16, 1), (8, 0), (0.5, 0.25)])
def test_a_trial_one_node_can_hold_is_admitted(cpu: float, gpu: float) -> None:
    from tuner.executor import check_admission

    check_admission(_spec(cpu, gpu), NODES)


def test_resources_split_across_nodes_do_not_admit_a_trial() -> None:
    from tuner.executor import check_admission

    with pytest.raises(SpecError, match=r"cpu=2, gpu=1, but no node .* \(its largest has cpu=1, gpu=1\)"):
        check_admission(_spec(2, 1), [{"CPU": 4.0, "GPU": 0.0}, {"CPU": 1.0, "GPU": 1.0}])


@pytest.mark.slow
def test_sweep_run_refuses_a_trial_larger_than_local_ray_before_any_trial(place: Path) -> None:
    """Local Ray on this machine: 64 CPUs per trial fit no node; exit 2 naming resources_per_trial,
    and no trial in the study."""
    (place / "spec.yaml").write_text(SPEC + "resources_per_trial: {cpu: 64}\n")
    home = place / "tuner-data"
    line = one_line_error(tuner(place, "sweep run", home=home))
    assert line.startswith(
        "error: invalid sweep spec: resources_per_trial: a trial asks for cpu=64, gpu=0, but no node"
    )
    assert re.search(r"its largest has cpu=\d+, gpu=0\); lower resources_per_trial", line), line
    from tuner.study import StudyStore

    assert StudyStore(f"sqlite:///{home / 'optuna.db'}").names() == []
