"""The MLflow writer process: trial events written in order, errors raised at flush, Ctrl-C ignored."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tuner import parse_spec
from tuner.errors import TrackingError
from tuner.records import Outcome
from tuner.tracking import Tracker, TrackingWriter

SPEC = parse_spec(
    {"name": "writer-test", "workload": "digits_mlp", "search_space": "adam", "n_trials": 3, "max_epochs": 4}
)
CONFIG = SPEC.search_space.to_adam_config({"lr": 1e-3, "one_minus_beta1": 0.1, "one_minus_beta2": 1e-3, "eps": 1e-8})


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Tracker, TrackingWriter, str]:
    uri, artifacts = f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri()
    tracker = Tracker(uri, artifacts)
    parent = tracker.start_sweep("writer-test", SPEC.model_dump(mode="json"))
    writer = TrackingWriter(uri, artifacts)
    yield tracker, writer, parent
    writer.close()


def test_events_become_child_runs_in_order(stores) -> None:
    from mlflow.tracking import MlflowClient

    tracker, writer, parent = stores
    events = writer.events("writer-test", parent)
    events.trial_started(0, CONFIG)
    events.trial_started(1, CONFIG)
    for epoch, loss in enumerate([0.9, 0.5, 0.4], start=1):
        events.epoch_reported(0, epoch, {"val_loss": loss})
    events.epoch_reported(1, 1, {"val_loss": 2.0})
    events.trial_finished(1, Outcome("early-stopped", 2.0, 1, "stopped by ASHA at epoch 1"))
    events.trial_finished(0, Outcome("completed", 0.4, 3))
    events.close()  # returns once everything above is written

    runs = tracker.trial_run_ids("writer-test")
    assert set(runs) == {0, 1}
    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    assert [m.value for m in client.get_metric_history(runs[0], "val_loss")] == [0.9, 0.5, 0.4]
    stopped = client.get_run(runs[1])
    assert stopped.data.tags["adamtune.state"] == "early-stopped" and stopped.info.status == "FINISHED"
    assert stopped.data.params["lr"] == "0.001" and stopped.data.tags["mlflow.parentRunId"] == parent
    # the runs table tells an early-stopped trial from a completed one; each run has a description
    assert stopped.info.run_name == "trial-0001 (early-stopped)"
    assert client.get_run(runs[0]).info.run_name == "trial-0000"
    note = stopped.data.tags["mlflow.note.content"]
    assert note.startswith("**early-stopped** · trial 1 · val_loss 2 at epoch 1 · stopped by ASHA at epoch 1")
    assert "lr 0.001, beta1 0.9 (1 − beta1 0.1), beta2 0.999 (1 − beta2 0.001), eps 1e-08" in note
    done = client.get_run(runs[0]).data
    assert done.tags["mlflow.note.content"].startswith("**completed** · trial 0 · val_loss 0.4 at epoch 3")
    assert (done.params["one_minus_beta1"], done.params["one_minus_beta2"]) == ("0.1", "0.001")  # for a log axis


def test_a_rerun_replaces_the_trials_earlier_run(stores) -> None:
    """A resumed sweep re-runs an interrupted trial: its old run goes, one run per trial stays."""
    tracker, writer, parent = stores
    old = tracker.start_trial("writer-test", parent, 0, CONFIG)
    events = writer.events("writer-test", parent)
    events.trial_started(0, CONFIG)
    events.trial_started(1, CONFIG)
    events.close()
    runs = tracker.trial_run_ids("writer-test")
    assert set(runs) == {0, 1} and runs[0] != old


def test_a_failed_write_is_raised_at_flush_and_skips_the_sweeps_rest(stores) -> None:
    tracker, writer, parent = stores
    events = writer.events("writer-test", parent)
    events.epoch_reported(7, 1, {"val_loss": 1.0})  # trial 7 never started: no run to log to
    events.trial_started(0, CONFIG)
    with pytest.raises(TrackingError, match="writer-test.*KeyError"):
        events.close()
    assert tracker.trial_run_ids("writer-test") == {}
    events.trial_started(0, CONFIG)  # the error is reported once; the next run of the sweep writes again
    events.close()
    assert set(tracker.trial_run_ids("writer-test")) == {0}


def test_the_writer_ignores_ctrl_c_and_reports_its_death(stores) -> None:
    tracker, writer, parent = stores
    writer.flush()  # up
    os.kill(writer.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the whole group
    writer.flush()
    assert writer.process.is_alive()
    os.kill(writer.process.pid, signal.SIGKILL)
    writer.process.join(timeout=30)
    with pytest.raises(TrackingError, match="exited with code -9"):
        writer.flush("writer-test")


def test_the_writer_runs_below_the_drivers_cpu_priority(stores) -> None:
    _, writer, _ = stores
    writer.flush()  # up: it lowered its priority once its store opened
    driver = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, writer.process.pid) == min(driver + 10, 19)


def test_its_tracker_runs_each_call_in_the_writer_after_the_events_before_it(stores) -> None:
    """A sweep's driver reaches MLflow only this way (tuner.service.Stores.tracker): results come
    back, errors keep their type and message, private names are not reachable."""
    _, writer, parent = stores
    remote = writer.tracker
    writer.events("writer-test", parent).trial_started(3, CONFIG)
    assert remote.trial_run_ids("writer-test").keys() == {3}  # the start event was written first
    assert remote.sweep_run_id("writer-test") == parent
    with pytest.raises(Exception, match="no-such-run") as raised:
        remote.end_trial("no-such-run", "completed")
    assert type(raised.value).__name__ == "MlflowException"
    with pytest.raises(AttributeError, match="public methods"):
        remote._client  # noqa: B018 - the attribute access is what is tested


def test_a_store_that_cannot_open_is_raised_at_the_first_flush(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    writer = TrackingWriter(f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}", None)
    with pytest.raises(OSError):
        writer.flush()
    with pytest.raises(OSError):  # and every later question, until it is closed
        writer.tracker.sweep_run_id("x")
    writer.close()
    assert writer.process.exitcode == 0


def test_close_ends_the_process(stores) -> None:
    _, writer, _ = stores
    writer.close()
    assert not writer.process.is_alive() and writer.process.exitcode == 0


def test_resume_ends_the_runs_a_crash_left_open(tmp_path: Path) -> None:
    """A crash after a trial was told to Optuna but before its MLflow run ended (or began):
    resuming ends the run from the study, so every finished trial has one ended run."""
    import optuna
    from mlflow.tracking import MlflowClient

    from tuner.service import SweepService
    from tuner.settings import Settings
    from tuner.study import distributions

    spec = SPEC.with_overrides(n_trials=2)
    service = SweepService(Settings(home=tmp_path))
    service.studies.create(spec)
    parent = service.tracker.start_sweep(spec.name, spec.model_dump(mode="json"))
    study = optuna.load_study(study_name=spec.name, storage=service.studies.storage)
    done, stopped = (study.ask(distributions(spec.search_space)) for _ in range(2))
    half_ended = service.tracker.start_trial(spec.name, parent, 0, CONFIG)
    # The crash came between the end's two writes: the state tag is there, the run still RUNNING.
    MlflowClient(tracking_uri=service.tracker.tracking_uri).set_tag(half_ended, "adamtune.state", "completed")
    done.report(0.3, 1)
    study.tell(done, 0.3)
    stopped.report(1.5, 1)  # no run at all: the crash came before its start was written
    study.tell(stopped, state=optuna.trial.TrialState.PRUNED)

    service.run(spec, resume=True)  # nothing left to train; the runs are settled

    client = MlflowClient(tracking_uri=service.tracker.tracking_uri)
    runs = service.tracker.trial_runs(spec.name)
    assert {n: state for n, (_, state) in runs.items()} == {0: "completed", 1: "early-stopped"}
    assert [m.value for m in client.get_metric_history(runs[1][0], "val_loss")] == [1.5]
    assert runs[0][0] == half_ended and client.get_run(half_ended).info.status == "FINISHED"


def test_a_running_trials_epochs_are_written_at_most_every_live_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    import queue

    from tuner.tracking import _writer as tracking_writer

    class FakeTracker:
        def __init__(self) -> None:
            self.writes: list[tuple[str, list, str | None]] = []

        def trial_run_ids(self, sweep: str) -> dict[int, str]:
            return {}

        def start_trial(self, sweep: str, parent: str, number: int, config: dict, *, replace: bool) -> str:
            return f"run-{number}"

        def log_trial(
            self, run_id: str, epochs: list, *, state: str | None, reason: str | None, node: str | None
        ) -> None:
            self.writes.append((run_id, list(epochs), state))

    clock = [100.0]
    monkeypatch.setattr(tracking_writer.time, "monotonic", lambda: clock[0])
    tracker = FakeTracker()
    runs = tracking_writer._Runs(tracker, queue.Queue())
    runs.take("start", "s", 0, "parent", {})
    runs.take("epoch", "s", 0, 1, {"val_loss": 0.5})
    runs.write()
    assert tracker.writes == []  # held: started less than _LIVE_S ago
    clock[0] += tracking_writer._LIVE_S
    runs.write()
    assert tracker.writes == [("run-0", [(1, {"val_loss": 0.5})], None)]
    runs.take("epoch", "s", 0, 2, {"val_loss": 0.4})
    runs.take("end", "s", 0, "completed", None, "node-1", None)
    runs.write()  # an end is written at once, with the epochs held before it
    assert tracker.writes[1:] == [("run-0", [(2, {"val_loss": 0.4})], "completed")]


# -- MLflow unreachable: retried within a bound, without writing twice ----------------------------


def _refused(url: str = "http://127.0.0.1:9/api/2.0/mlflow/runs/create") -> Exception:
    """What MLflow's HTTP client raises for a refused connection: an MlflowException raised while
    handling requests' ConnectionError (MLflow keeps the cause only as the context)."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as refused:
            raise requests.exceptions.ConnectionError(refused) from refused
    except requests.exceptions.ConnectionError:
        try:
            raise MlflowException(f"API request to {url} failed with exception Connection refused")
        except MlflowException as e:
            return e


def test_writes_survive_lost_answers_without_writing_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that goes away mid-call: a create_run whose run was made but whose answer was lost,
    and log_batch calls refused twice. Each is retried; the trial has one run with each epoch once."""
    import mlflow.tracking
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    calls = {"create_run": 0, "log_metrics": 0}

    class Flaky(MlflowClient):
        def create_run(self, *args, **kwargs):
            run = super().create_run(*args, **kwargs)
            calls["create_run"] += 1
            if calls["create_run"] == 2:  # the trial's run (the first is the parent's): made, answer lost
                raise _refused()
            return run

        def log_batch(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
            if metrics:
                calls["log_metrics"] += 1
                if calls["log_metrics"] in (1, 2):  # refused: nothing written
                    raise _refused()
                if calls["log_metrics"] == 4:  # written, answer lost
                    super().log_batch(run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous)
                    raise _refused()
            return super().log_batch(run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous)

    monkeypatch.setattr(mlflow.tracking, "MlflowClient", Flaky)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, (tmp_path / "artifacts").as_uri(), retry_seconds=30)
    parent = tracker.start_sweep("writer-test", SPEC.model_dump(mode="json"))
    run_id = tracker.start_trial("writer-test", parent, 0, CONFIG, replace=False)  # made, answer lost, found
    tracker.log_trial(run_id, [(1, {"val_loss": 0.9})])  # refused twice, then written
    tracker.log_trial(run_id, [(2, {"val_loss": 0.5})], state="completed")  # written, answer lost, written again
    assert calls == {"create_run": 2, "log_metrics": 5}

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [tracker.experiment_id("writer-test")], "tags.`adamtune.kind` = 'trial'", run_view_type=ViewType.ALL
    )
    assert [r.info.run_id for r in runs] == [run_id]  # one run, the one returned
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "val_loss")] == [(1, 0.9), (2, 0.5)]
    assert client.get_run(run_id).data.tags["adamtune.state"] == "completed"


def test_mlflow_unreachable_past_the_bound_raises_tracking_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import mlflow.tracking

    class Down:
        def __init__(self, tracking_uri: str) -> None:
            pass

        def get_experiment_by_name(self, name: str):
            raise _refused()

    monkeypatch.setattr(mlflow.tracking, "MlflowClient", Down)
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"):
        monkeypatch.setenv(name, "")  # so that the teardown restores what Tracker sets
        monkeypatch.delenv(name)
    tracker = Tracker("http://adamtune:s3cret@127.0.0.1:9", None, retry_seconds=1.0)
    began = time.monotonic()
    with pytest.raises(TrackingError) as read:
        tracker.experiment_id("writer-test")
    assert 1.0 <= time.monotonic() - began < 3.0
    message = str(read.value)
    assert "MLflow at http://adamtune:***@127.0.0.1:9 stayed unreachable" in message and "s3cret" not in message
    assert "TUNER_MLFLOW_RETRY_SECONDS=1" in message and "ConnectionRefusedError" in message
    assert "trials are kept in its Optuna study" in message and "--resume" in message
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # MLflow's own retries off: ours bound them


def test_a_wrong_call_is_raised_at_once(tmp_path: Path) -> None:
    """Only an unreachable MLflow is waited for: an error about the call itself is not retried."""
    import time

    from mlflow.exceptions import MlflowException

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri(), retry_seconds=60)
    began = time.monotonic()
    with pytest.raises(MlflowException, match="not found|does not exist"):
        tracker.last_metrics("0123456789abcdef0123456789abcdef")
    assert time.monotonic() - began < 5
