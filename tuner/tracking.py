"""The MLflow adapter: one experiment per sweep, a parent run per sweep, a child run per trial.

Trials report to the driver through Ray; the driver writes a sweep's parent run
before its first trial event and after its last, and the trials' child runs go
through :mod:`tuner.tracking_writer`'s one process, in order, in between; so with
one sweep at a time a SQLite store never sees two writers at once. Tags this module
writes:

- ``adamtune.kind``: ``sweep`` (parent), ``trial`` (child) or ``reevaluation`` (child: a
  top trial's config re-trained with the new seed ``adamtune.seed``);
- ``adamtune.trial_number``: the study's trial number (child);
- ``adamtune.state``: ``completed`` / ``early-stopped`` / ``failed`` (child, at the end);
- ``adamtune.reason``: why a trial failed or stopped;
- ``adamtune.baseline``: ``true`` on the baseline trial's run (torch's default Adam, :mod:`tuner.baseline`).

The experiment is tagged ``mlflow.experimentKind = custom_model_development`` (what
MLflow's UI records for a training experiment); a fresh browser still opens MLflow
3.17's GenAI overview unless the link says ``?workflowType=machine_learning``, so the
links adamtune prints do (:func:`tuner.cli._ui.experiment_url`). The
parent run's metrics, logged when the sweep finishes: ``best_<metric>`` (the best
completed trial's value of the sweep's metric, e.g. ``best_val_loss``) and
``trials_completed``, ``trials_early_stopped``, ``trials_failed``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, get_args

from tuner.search_space import HyperparameterName

if TYPE_CHECKING:
    from tuner.records import SweepSummary

__all__ = ["Tracker", "TRIAL_PARAMS"]

#: Child-run params, in the names ``torch.optim.Adam`` users know, then the lr schedule's.
TRIAL_PARAMS: tuple[str, ...] = get_args(HyperparameterName)

_MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch
#: The experiment tag MLflow's UI reads to pick its view; this value opens on the runs.
_EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


class Tracker:
    """Writes sweeps and trials to MLflow on a SQL store.

    Args:
        tracking_uri: SQLAlchemy URL of the MLflow backend store (``sqlite:///…/mlflow.db``).
        artifact_root: URI under which new experiments store artifacts (``None``:
            the tracking server's default).
    """

    def __init__(self, tracking_uri: str, artifact_root: str | None) -> None:
        from mlflow.tracking import MlflowClient

        for noisy in ("alembic", "mlflow"):  # after the import: mlflow sets its own levels then
            logging.getLogger(noisy).setLevel(logging.WARNING)

        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = tracking_uri
        self._artifact_root = artifact_root.rstrip("/") if artifact_root else None
        self._client = MlflowClient(tracking_uri=tracking_uri)
        self._experiment_ids: dict[str, str] = {}  # sweep -> id; looked up once, not per trial
        self._tagged: set[str] = set()  # sweeps whose experiment carries _EXPERIMENT_KIND

    def experiment_id(self, sweep: str, *, create: bool = False) -> str | None:
        """The id of the sweep's experiment; with ``create``, created if absent and tagged
        ``mlflow.experimentKind`` (also one an older adamtune made without the tag)."""
        if create and sweep not in self._tagged:
            self._experiment_ids[sweep] = self._training_experiment(sweep)
            self._tagged.add(sweep)
        elif sweep not in self._experiment_ids:
            experiment = self._client.get_experiment_by_name(sweep)
            if experiment is not None:
                self._experiment_ids[sweep] = experiment.experiment_id
        return self._experiment_ids.get(sweep)

    def _training_experiment(self, sweep: str) -> str:
        key, kind = _EXPERIMENT_KIND
        experiment = self._client.get_experiment_by_name(sweep)
        if experiment is None:
            location = f"{self._artifact_root}/{sweep}" if self._artifact_root else None
            return self._client.create_experiment(sweep, artifact_location=location, tags={key: kind})
        if experiment.tags.get(key) != kind:
            self._client.set_experiment_tag(experiment.experiment_id, key, kind)
        return experiment.experiment_id

    def sweep_experiments(self) -> list[tuple[str, str]]:
        """``(name, experiment id)`` of each experiment tagged as a training experiment
        (``mlflow.experimentKind``; every sweep's), by name."""
        key, kind = _EXPERIMENT_KIND
        found = self._client.search_experiments(filter_string=f"tags.`{key}` = '{kind}'", max_results=10_000)
        return sorted((e.name, e.experiment_id) for e in found)

    def start_sweep(self, sweep: str, spec: Mapping[str, Any], *, data: Mapping[str, str] | None = None) -> str:
        """Create the sweep's parent run with the spec as params (``workload_args`` as
        ``workload_args.<key>``) and ``spec.json``, and the workload's data fingerprint as
        tags ``adamtune.data.<key>``; returns its run id."""
        experiment_id = self.experiment_id(sweep, create=True)
        tags = {"adamtune.kind": "sweep", **{f"adamtune.data.{k}": str(v) for k, v in (data or {}).items()}}
        run = self._client.create_run(experiment_id, run_name=sweep, tags=tags)
        run_id = run.info.run_id
        flat = {k: v for k, v in spec.items() if not isinstance(v, Mapping)}
        flat["search_space"] = spec["search_space"]["name"]
        flat.update({f"workload_args.{k}": v for k, v in spec.get("workload_args", {}).items()})
        self._log_params(run_id, flat)
        self._client.log_dict(run_id, dict(spec), "spec.json")
        return run_id

    def sweep_run_id(self, sweep: str) -> str | None:
        """The newest parent run of the sweep, if any."""
        runs = self._search(sweep, "tags.`adamtune.kind` = 'sweep'", max_results=1)
        return runs[0].info.run_id if runs else None

    def finish_sweep(
        self, run_id: str, summary: SweepSummary, best: list[dict[str, Any]], *, status: str = "FINISHED"
    ) -> None:
        """Log the sweep's result as the parent run's metrics (see the module docstring), attach
        the best configs (``best_config.json``, best first) and end the parent run."""
        from mlflow.entities import Metric

        values = {f"trials_{state.replace('-', '_')}": summary.count(state) for state in ("completed", "early-stopped", "failed")}
        top = summary.best()
        if top:
            values[f"best_{summary.spec['metric']}"] = top[0].value
        now = int(time.time() * 1000)
        self._client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()], synchronous=True)
        if best:
            self._client.log_dict(run_id, {"best": best}, "best_config.json")
        self._client.set_terminated(run_id, status=status)

    def log_sweep_results(
        self, run_id: str, *, metrics: Mapping[str, float] | None = None, files: Mapping[str, bytes] | None = None
    ) -> None:
        """Attach results to a sweep's parent run: ``metrics`` as metrics (step 0) and ``files``
        as artifacts (path under the run's artifact root -> bytes, e.g. ``analysis/slice.png``)."""
        import tempfile

        from mlflow.entities import Metric

        if metrics:
            now = int(time.time() * 1000)
            batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
            for i in range(0, len(batch), _MAX_METRICS_PER_BATCH):
                self._client.log_batch(run_id, metrics=batch[i : i + _MAX_METRICS_PER_BATCH], synchronous=True)
        if files:
            with tempfile.TemporaryDirectory() as tmp:
                for name, data in files.items():
                    path = Path(tmp, name)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                self._client.log_artifacts(run_id, tmp)

    def start_trial(
        self, sweep: str, parent_run_id: str, number: int, config: Mapping[str, Any], *, replace: bool = True
    ) -> str:
        """Create a trial's child run with its Adam hyperparameters and lr schedule as params; returns its run id.

        A ``config`` with ``baseline: True`` tags the run ``adamtune.baseline = true``.

        With ``replace``, a run left by an earlier attempt at the same trial (a crashed
        driver, a retried worker) is deleted first, so each trial has exactly one child
        run; pass ``False`` for a trial known to have none (it saves a search).
        """
        if replace:
            for run in self._search(sweep, f"tags.`adamtune.trial_number` = '{number}'", max_results=100):
                self._client.delete_run(run.info.run_id)
        tags = {"adamtune.kind": "trial", **({"adamtune.baseline": "true"} if config.get("baseline") else {})}
        return self._child_run(sweep, parent_run_id, f"trial-{number:04d}", number, config, tags)

    def start_reevaluation(
        self, sweep: str, parent_run_id: str, number: int, seed: int, config: Mapping[str, Any]
    ) -> str:
        """Create the child run of trial ``number``'s re-evaluation with ``seed``, tagged
        ``adamtune.kind = reevaluation``, ``adamtune.trial_number`` and ``adamtune.seed``; returns its id."""
        tags = {"adamtune.kind": "reevaluation", "adamtune.seed": str(seed)}
        return self._child_run(sweep, parent_run_id, f"trial-{number:04d}-seed-{seed}", number, config, tags, seed=seed)

    def _child_run(
        self, sweep: str, parent_run_id: str, name: str, number: int, config: Mapping[str, Any],
        tags: Mapping[str, str], **extra_params: Any,
    ) -> str:
        """A child run of the parent with trial ``number``'s config as params (+ ``extra_params``); returns its id."""
        run = self._client.create_run(
            self.experiment_id(sweep, create=True),
            run_name=name,
            tags={"mlflow.parentRunId": parent_run_id, "adamtune.trial_number": str(number), **tags},
        )
        params = {k: config[k] for k in TRIAL_PARAMS}
        params.update(amsgrad=config["amsgrad"], decoupled_weight_decay=config["decoupled_weight_decay"], **extra_params)
        self._log_params(run.info.run_id, params)
        return run.info.run_id

    def last_metrics(self, run_id: str, prefix: str = "") -> dict[str, float]:
        """A run's metrics at their last logged step, those whose name starts with ``prefix``."""
        metrics = self._client.get_run(run_id).data.metrics
        return {k: v for k, v in sorted(metrics.items()) if k.startswith(prefix)}

    def log_epoch(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        """Log one epoch's numeric metrics at ``step`` (the epoch, 1-based)."""
        self.log_trial(run_id, [(step, metrics)])

    def end_trial(self, run_id: str, state: str, reason: str | None = None) -> None:
        """Tag the trial's final state (and reason) and end its run."""
        self.log_trial(run_id, state=state, reason=reason)

    def log_trial(
        self,
        run_id: str,
        epochs: Sequence[tuple[int, Mapping[str, float]]] = (),
        *,
        state: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Log several epochs' metrics (``(step, metrics)`` pairs) and, with ``state``, end the run.

        One MLflow write per 1,000 metric values (MLflow's limit per batch) instead of
        one per epoch; ending adds the state tags to the last write and marks the run
        ``FAILED`` (state ``failed``) or ``FINISHED``.
        """
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for step, values in epochs for k, v in values.items()]
        tags = []
        if state is not None:
            tags = [RunTag("adamtune.state", state)] + ([RunTag("adamtune.reason", reason[:5000])] if reason else [])
        chunks = [metrics[i : i + _MAX_METRICS_PER_BATCH] for i in range(0, len(metrics), _MAX_METRICS_PER_BATCH)] or [[]]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if chunk or (last and tags):
                self._client.log_batch(run_id, metrics=chunk, tags=tags if last else [], synchronous=True)
        if state is not None:
            self._client.set_terminated(run_id, status="FAILED" if state == "failed" else "FINISHED")

    def trial_run_ids(self, sweep: str) -> dict[int, str]:
        """Child run id per trial number (the newest run where a trial has several)."""
        return {number: run_id for number, (run_id, _) in self.trial_runs(sweep).items()}

    def trial_runs(self, sweep: str) -> dict[int, tuple[str, str | None]]:
        """Per trial number, its newest child run's id and ``adamtune.state`` tag (``None``: not ended)."""
        runs = self._search(sweep, "tags.`adamtune.kind` = 'trial'", max_results=10_000)
        found: dict[int, tuple[str, str | None]] = {}
        for run in reversed(runs):  # oldest first, so the newest wins
            found[int(run.data.tags["adamtune.trial_number"])] = (run.info.run_id, run.data.tags.get("adamtune.state"))
        return found

    def _search(self, sweep: str, filter_string: str, *, max_results: int) -> list:
        experiment_id = self.experiment_id(sweep)
        if experiment_id is None:
            return []
        return list(
            self._client.search_runs(
                [experiment_id], filter_string, max_results=max_results, order_by=["attributes.start_time DESC"]
            )
        )

    def _log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        self._client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()], synchronous=True)
