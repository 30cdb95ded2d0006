"""The MLflow adapter: one experiment per sweep, a parent run per sweep, a child run per trial.

Trials report to the driver through Ray; the driver writes a sweep's parent run
before its first trial event and after its last, and the trials' child runs go
through :class:`tuner.tracking.TrackingWriter`'s one process, in order, in between; so with
one sweep at a time a SQLite store never sees two writers at once. Tags this module
writes:

- ``adamtune.kind``: ``sweep`` (parent), ``trial`` (child) or ``reevaluation`` (child: a
  top trial's config re-trained with the new seed ``adamtune.seed``);
- ``adamtune.trial_number``: the study's trial number (child);
- ``adamtune.state``: ``completed`` / ``early-stopped`` / ``failed`` (child, at the end);
- ``adamtune.reason``: why a trial failed or stopped;
- ``adamtune.ray_node``: the id of the Ray node the trial last trained on (child, at the end);
- ``adamtune.baseline``: ``true`` on the baseline trial's run (torch's default Adam, :mod:`tuner.baseline`);
- ``adamtune.files_left_out``: how many of a trial's files were not logged, and their size (child,
  past :data:`tuner.tracking._files.MAX_FILES` or ``MAX_BYTES``);
- ``mlflow.note.content``: the run's description in MLflow's UI (child): its state, the sweep
  metric's last value and epoch, the reason, and the Adam config (4 significant digits).

A child run's params are its Adam hyperparameters as ``torch.optim.Adam`` names them plus
``one_minus_beta1`` and ``one_minus_beta2`` (compare them on a log axis). A trial that did not
complete is renamed with its state, ``trial-0003 (early-stopped)``, so the runs table tells it
from a completed one at a glance (MLflow's status says ``Finished`` for both). Its artifacts,
under ``trial_dir/``, are the files the trial wrote in its own folder (:mod:`tuner.tracking._files`).

The parent run's description (``mlflow.note.content``, written when the sweep finishes) leads
with the answer: the recommended trial, its value and config, the change against the baseline,
the trial counts; then the analysis plots logged under ``analysis/`` (learning curves first),
embedded as images the MLflow UI fetches from its own server (``get-artifact?path=…&run_uuid=…``,
relative: they load under a ``--static-prefix`` too).

The experiment is tagged ``mlflow.experimentKind = custom_model_development`` (what
MLflow's UI records for a training experiment); a fresh browser still opens MLflow
3.17's GenAI overview unless the link says ``?workflowType=machine_learning``, so the
links adamtune prints do (:func:`tuner.cli._ui.experiment_url`). The
parent run's metrics, logged when the sweep finishes: ``best_<metric>`` (the best
completed trial's value of the sweep's metric, e.g. ``best_val_loss``) and
``trials_completed``, ``trials_early_stopped``, ``trials_failed``.

Every MLflow call is retried while MLflow cannot be reached (a tracking server
restarting, its database or ours going away): exponential backoff from 0.25 s to 2 s
apart, for at most ``retry_seconds`` (``TUNER_MLFLOW_RETRY_SECONDS``, 60 s by
default); then :class:`tuner.errors.TrackingError`. Errors that say the call itself
was wrong, and store faults that waiting does not fix (a read-only or corrupt SQLite file, a
refused login, a missing database: :func:`tuner.storage.permanent`), are raised at once. MLflow
opens its database when its client is built, with retries of its own (10 attempts over about
100 s: ``MAX_RETRY_COUNT`` of ``mlflow.store.db.utils``, which no setting changes; the
``MLFLOW_SQLALCHEMYSTORE_*`` variables size its pool only), so before that the database is
reached once by :func:`tuner.storage.check_store`, within these retries: MLflow's then connect
at their first attempt. A retried write is harmless when the first attempt
did reach the server: metrics (same key, step, timestamp and value), params, tags,
artifacts and run ends are written again as they were; a retried ``create_run``
first looks for the run the lost attempt made (same experiment, name, tags and
start time, which the client chooses) and a retried ``create_experiment`` for the
experiment. For an HTTP tracking URI, MLflow's own HTTP retries are turned off
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`` unless set) so that the bound is this one:
MLflow's counts attempts (7, 2 s doubling: about 4 minutes) and retries a
``create_run`` whose answer was lost into a second run. A request that hangs
rather than fails is cut by MLflow after ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (120 s).
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from tuner.errors import StoreError, TrackingError
from tuner.search_space import HyperparameterName
from tuner.storage import check_store, exception_chain, permanent, read_only_where_unwritable
from tuner.tracking._files import ARTIFACT_PATH, MAX_BYTES, MAX_FILES, trial_files

if TYPE_CHECKING:
    from tuner.records import SweepSummary

__all__ = ["Tracker", "TRIAL_PARAMS"]

#: Child-run params, in the names ``torch.optim.Adam`` users know, then the lr schedule's.
TRIAL_PARAMS: tuple[str, ...] = get_args(HyperparameterName)

_MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch
#: The experiment tag MLflow's UI reads to pick its view; this value opens on the runs.
_EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
_FIRST_BACKOFF_S, _MAX_BACKOFF_S = 0.25, 2.0  # waits between attempts: 0.25, 0.5, 1, 2, 2, ... s
#: HTTP statuses that ask the client to come back later (MLflow's own retry list).
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_logger = logging.getLogger(__name__)
_T = TypeVar("_T")
#: The tag MLflow's UI shows as a run's description.
_NOTE = "mlflow.note.content"


def one_minus(config: Mapping[str, Any]) -> dict[str, float]:
    """``one_minus_beta1`` and ``one_minus_beta2`` of an Adam config (12 significant digits: no ``0.0010000000000000009``)."""
    return {f"one_minus_{b}": float(f"{1 - float(config[b]):.12g}") for b in ("beta1", "beta2") if b in config}


def config_text(config: Mapping[str, Any]) -> str:
    """An Adam config in one line, 4 significant digits, 1 − beta next to beta."""
    parts = []
    for key in ("lr", "beta1", "beta2", "eps", "weight_decay", "schedule", "warmup_fraction"):
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, float):
            text = f"{value:.4g}" + (f" (1 − {key} {1 - value:.4g})" if key in ("beta1", "beta2") else "")
        else:
            text = str(value)
        parts.append(f"{key} {text}")
    return ", ".join(parts)


def _sweep_note(summary: SweepSummary, run_id: str, plots: Sequence[str], *, best_file: bool) -> str:
    """The parent run's description (Markdown): the answer first, then the ``plots`` (artifact
    paths such as ``analysis/slice.png``) as images, the learning curves first; ``best_file``:
    whether the run has ``best_config.json``."""
    from urllib.parse import urlencode

    from tuner.review import PLOT_TITLES, compare

    metric = summary.spec.get("metric", "value")
    states = ("completed", "early-stopped", "failed")
    counts = ", ".join(f"{summary.count(s)} {s}" for s in states if summary.count(s))
    lines = []
    picked = summary.pick()
    if picked:
        best = picked[0]
        who = "torch's defaults (the baseline)" if best.baseline else "a tuned config"
        stats = summary.seed_stats(best.number)
        if stats is not None:  # re-evaluated: ranked by its mean over the new seeds
            value = f" · {metric} {stats.mean:.4g}, the mean over {len(stats.values)} new seeds"
        else:
            value = f" · {metric} {best.value:.4g}" if best.value is not None else ""
        lines.append(f"**Recommended: trial {best.number}**, {who}{value}")
        lines.append(config_text(best.config))
        comparison = compare(summary, best)
        if comparison is not None:
            lines.append(f"Against the baseline: {comparison}")
    else:
        lines.append("**No trial completed**: no recommendation.")
    files = " · the best configs: `best_config.json`" if best_file else ""
    counted = f" ({counts})" if counts else ""
    lines.append(f"{len(summary.trials)} trials{counted}{files} · the full report: `tuner report {summary.name}`")
    order = ["intermediate_values", *(name for name in PLOT_TITLES if name != "intermediate_values")]
    by_name = {Path(path).stem: path for path in plots}
    for name in [*(n for n in order if n in by_name), *sorted(set(by_name) - set(order))]:
        title = PLOT_TITLES.get(name, name)
        query = urlencode({"path": by_name[name], "run_uuid": run_id})
        lines.append(f"#### {title}\n\n![{title}](get-artifact?{query})")
    return "\n\n".join(lines)


class Tracker:
    """Writes sweeps and trials to MLflow on a SQL store or a tracking server.

    Args:
        tracking_uri: SQLAlchemy URL of the MLflow backend store (``sqlite:///…/mlflow.db``)
            or an MLflow tracking server's URL (``http://host:5000``).
        artifact_root: URI under which new experiments store artifacts (``None``:
            the tracking server's default).
        retry_seconds: how long a call is retried while MLflow is unreachable (see the
            module docstring); ``None``: ``TUNER_MLFLOW_RETRY_SECONDS`` (60 s by default).

    Raises (from any method):
        TrackingError: MLflow stayed unreachable for ``retry_seconds``.
        StoreError: MLflow's database is corrupt or read-only, or refused the login (not retried).
    """

    def __init__(self, tracking_uri: str, artifact_root: str | None, *, retry_seconds: float | None = None) -> None:
        from mlflow.tracking import MlflowClient

        for noisy in ("alembic", "mlflow"):  # after the import: mlflow sets its own levels then
            logging.getLogger(noisy).setLevel(logging.WARNING)

        if tracking_uri.startswith("sqlite:///") and not read_only_where_unwritable(tracking_uri):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if tracking_uri.startswith(("http://", "https://")):
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # ours bound the retries (module docstring)
            # Not two "View run … at" lines on stdout (and a get_run) per ended run: the CLI prints the links
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        if retry_seconds is None:
            from tuner.settings import Settings

            retry_seconds = Settings().mlflow_retry_seconds
        self.tracking_uri = tracking_uri
        self.retry_seconds = retry_seconds
        self._artifact_root = artifact_root.rstrip("/") if artifact_root else None
        self._client = _RetryingClient(lambda: MlflowClient(tracking_uri=tracking_uri), tracking_uri, retry_seconds)
        self._metric_of: dict[str, str | None] = {}  # a parent run's sweep metric (its param ``metric``)
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
        """Log the sweep's result as the parent run's metrics and description (see the module
        docstring), attach the best configs (``best_config.json``, best first) and end the parent run.

        The description embeds the plots already logged under ``analysis/``
        (:meth:`log_sweep_results`), so log those first."""
        from mlflow.entities import Metric, RunTag

        values = {
            f"trials_{state.replace('-', '_')}": summary.count(state)
            for state in ("completed", "early-stopped", "failed")
        }
        top = summary.best()
        if top:
            values[f"best_{summary.spec['metric']}"] = top[0].value
        now = int(time.time() * 1000)
        self._client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in values.items()],
            tags=[RunTag(_NOTE, self._sweep_note(run_id, summary, best_file=bool(best)))],
            synchronous=True,
        )
        if best:
            self._client.log_dict(run_id, {"best": best}, "best_config.json")
        self._client.set_terminated(run_id, status=status)

    def describe_sweep(self, run_id: str, summary: SweepSummary, *, best_file: bool = True) -> None:
        """Rewrite the parent run's description for ``summary`` (as :meth:`finish_sweep` writes it),
        e.g. after ``tuner reevaluate`` changed the recommendation; the run's state is kept."""
        self._client.set_tag(run_id, _NOTE, self._sweep_note(run_id, summary, best_file=best_file))

    def _sweep_note(self, run_id: str, summary: SweepSummary, *, best_file: bool) -> str:
        plots = [info.path for info in self._client.list_artifacts(run_id, "analysis") if info.path.endswith(".png")]
        return _sweep_note(summary, run_id, plots, best_file=best_file)

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
        self,
        sweep: str,
        parent_run_id: str,
        name: str,
        number: int,
        config: Mapping[str, Any],
        tags: Mapping[str, str],
        **extra_params: Any,
    ) -> str:
        """A child run of the parent with trial ``number``'s config as params (+ ``extra_params``); returns its id."""
        note = f"**running** · trial {number}\n\n{config_text(config)}"
        run = self._client.create_run(
            self.experiment_id(sweep, create=True),
            run_name=name,
            tags={"mlflow.parentRunId": parent_run_id, "adamtune.trial_number": str(number), **tags, _NOTE: note},
        )
        params = {k: config[k] for k in TRIAL_PARAMS if k in config}  # algorithm: NAdam and AdaMax trials only
        params.update(one_minus(config))
        params.update(
            amsgrad=config["amsgrad"], decoupled_weight_decay=config["decoupled_weight_decay"], **extra_params
        )
        params.update({k: config[k] for k in ("momentum_decay",) if k in config})  # NAdam only
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
        node: str | None = None,
    ) -> None:
        """Log several epochs' metrics (``(step, metrics)`` pairs) and, with ``state``, end the run.

        One MLflow write per 1,000 metric values (MLflow's limit per batch) instead of
        one per epoch; ending adds the state tags (and ``adamtune.ray_node`` with ``node``) to
        the last write and marks the run ``FAILED`` (state ``failed``) or ``FINISHED``.
        """
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for step, values in epochs for k, v in values.items()]
        tags = []
        if state is not None:
            tags = [RunTag("adamtune.state", state)] + ([RunTag("adamtune.reason", reason[:5000])] if reason else [])
            tags += [RunTag("adamtune.ray_node", node)] if node else []
            tags += self._ending(run_id, epochs, state, reason)
        chunks = [metrics[i : i + _MAX_METRICS_PER_BATCH] for i in range(0, len(metrics), _MAX_METRICS_PER_BATCH)] or [
            []
        ]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if chunk or (last and tags):
                self._client.log_batch(run_id, metrics=chunk, tags=tags if last else [], synchronous=True)
        if state is not None:
            self._client.set_terminated(run_id, status="FAILED" if state == "failed" else "FINISHED")

    def _ending(
        self, run_id: str, epochs: Sequence[tuple[int, Mapping[str, float]]], state: str, reason: str | None
    ) -> list:
        """The ending run's description tag (state, value, reason, config); a run that did not
        complete is renamed ``<name> (<state>)`` here too."""
        from mlflow.entities import RunTag

        run = self._client.get_run(run_id)
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent is not None and parent not in self._metric_of:
            self._metric_of[parent] = self._client.get_run(parent).data.params.get("metric")
        metric = self._metric_of.get(parent)
        value, epoch = None, None
        if metric is not None:
            logged = [(step, values[metric]) for step, values in epochs if metric in values]
            if logged:
                epoch, value = max(logged, key=lambda pair: pair[0])
            elif metric in run.data.metrics:
                value = run.data.metrics[metric]
                history = self._client.get_metric_history(run_id, metric)
                epoch = max((m.step for m in history), default=None)
        config = dict(run.data.params)
        for key in ("lr", "beta1", "beta2", "eps", "weight_decay", "warmup_fraction"):
            try:
                config[key] = float(config[key])
            except (KeyError, ValueError):
                pass
        head = f"**{state}** · trial {run.data.tags.get('adamtune.trial_number', '?')}"
        if value is not None:
            head += f" · {metric} {value:.4g}" + (f" at epoch {epoch}" if epoch is not None else "")
        if reason:
            head += f" · {reason[:500]}"
        name = re.sub(r" \((?:completed|early-stopped|failed)\)$", "", run.info.run_name or "")
        if state != "completed" and name:
            self._client.update_run(run_id, name=f"{name} ({state})")
        return [RunTag(_NOTE, f"{head}\n\n{config_text(config)}")]

    def log_trial_files(self, run_id: str, folder: str | os.PathLike[str]) -> list[Path]:
        """Log the files of a trial's own folder (:func:`tuner.tracking._files.trial_files`: no
        links, at most ``MAX_FILES`` files and ``MAX_BYTES`` bytes) as the run's artifacts under
        ``trial_dir/``, keeping their relative paths; returns those logged, relative to ``folder``.

        A folder that is not on this machine logs nothing; a file gone meanwhile is skipped (a
        stopped trial's script may still be unwinding); files left out are counted in the tag
        ``adamtune.files_left_out``.
        """
        files = trial_files(folder)
        logged = []
        for path in files.chosen:
            parent = path.parent.as_posix()
            try:
                self._client.log_artifact(
                    run_id, str(files.folder / path), ARTIFACT_PATH if parent == "." else f"{ARTIFACT_PATH}/{parent}"
                )
            except FileNotFoundError:
                continue
            logged.append(path)
        if files.left_out:
            self._client.set_tag(
                run_id,
                "adamtune.files_left_out",
                f"{files.left_out} files, {files.left_out_bytes} bytes "
                f"(a trial logs at most {MAX_FILES} files and {MAX_BYTES} bytes)",
            )
        return logged

    def download_trial_files(self, run_id: str, dest: str | os.PathLike[str]) -> list[Path]:
        """Copy the files a trial's run holds under ``trial_dir/`` (:meth:`log_trial_files`) into
        ``dest`` (made if missing; a file of the same name is replaced), keeping their relative
        paths; returns them relative to ``dest``, by path (none: the run has no files)."""
        import tempfile

        if not self._client.list_artifacts(run_id, ARTIFACT_PATH):
            return []
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        copied = []
        with tempfile.TemporaryDirectory(dir=dest, prefix=".adamtune-download-") as tmp:  # then moved, not copied
            local = Path(self._client.download_artifacts(run_id, ARTIFACT_PATH, tmp))
            for file in sorted(p for p in local.rglob("*") if p.is_file()):
                path = file.relative_to(local)
                (dest / path).parent.mkdir(parents=True, exist_ok=True)
                os.replace(file, dest / path)
                copied.append(path)
        return copied

    def trial_run_ids(self, sweep: str) -> dict[int, str]:
        """Child run id per trial number (the newest run where a trial has several)."""
        return {number: run_id for number, (run_id, _) in self.trial_runs(sweep).items()}

    def trial_runs(self, sweep: str) -> dict[int, tuple[str, str | None]]:
        """Per trial number, its newest child run's id and ``adamtune.state`` tag (``None``: not ended;
        also when a crash came between tagging the state and ending the run, which are two writes)."""
        runs = self._search(sweep, "tags.`adamtune.kind` = 'trial'", max_results=10_000)
        found: dict[int, tuple[str, str | None]] = {}
        for run in reversed(runs):  # oldest first, so the newest wins
            state = run.data.tags.get("adamtune.state") if run.info.status != "RUNNING" else None
            found[int(run.data.tags["adamtune.trial_number"])] = (run.info.run_id, state)
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


class _RetryingClient:
    """An ``MlflowClient`` whose calls are retried while MLflow is unreachable, for at most
    ``seconds`` each, and whose creating calls do not create twice (see the module docstring).

    ``make_client`` builds the client (MLflow opens its store then) once the database was
    reached, within the same retries."""

    def __init__(self, make_client: Callable[[], Any], tracking_uri: str, seconds: float) -> None:
        self._uri, self._seconds = _without_password(tracking_uri), seconds

        def connect(_retry: bool) -> Any:
            check_store("MLflow", tracking_uri, write=False)
            return make_client()

        self._client = self._retry("connecting", connect)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle ask for these before __init__ ran
            raise AttributeError(name)
        method = getattr(self._client, name)
        if not callable(method):
            return method
        return lambda *args, **kwargs: self._retry(name, lambda _: method(*args, **kwargs))

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        def attempt(retry: bool) -> str:
            if retry:  # the lost attempt may have created it
                found = self._client.get_experiment_by_name(name)
                if found is not None:
                    return found.experiment_id
            return self._client.create_experiment(name, artifact_location=artifact_location, tags=tags)

        return self._retry("create_experiment", attempt)

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
    ) -> Any:
        start_time = (
            int(time.time() * 1000) if start_time is None else start_time
        )  # the client's choice: it marks this run

        def attempt(retry: bool) -> Any:
            if retry:  # the lost attempt may have created it
                for run in self._client.search_runs(
                    [experiment_id], f"attributes.start_time = {start_time}", max_results=1000
                ):
                    if run.info.run_name == run_name and all(
                        run.data.tags.get(k) == v for k, v in (tags or {}).items()
                    ):
                        return run
            return self._client.create_run(experiment_id, start_time=start_time, tags=tags, run_name=run_name)

        return self._retry("create_run", attempt)

    def _retry(self, what: str, attempt: Callable[[bool], _T]) -> _T:
        """``attempt(retry)`` until it returns, raises a non-transient error, or ``seconds`` have passed."""
        began = time.monotonic()
        delay, failures = _FIRST_BACKOFF_S, 0
        while True:
            try:
                result = attempt(failures > 0)
            except Exception as e:
                if not _transient(e):
                    raise
                waited = time.monotonic() - began
                if waited >= self._seconds:
                    raise TrackingError(self._gave_up(what, waited, e)) from e
                if failures == 0:
                    _logger.warning(
                        "MLflow at %s is unreachable (%s); retrying %s for up to %g s",
                        self._uri,
                        _root(e),
                        what,
                        self._seconds,
                    )
                failures += 1
                time.sleep(min(delay * random.uniform(0.75, 1.0), self._seconds - waited))
                delay = min(2 * delay, _MAX_BACKOFF_S)
                continue
            if failures:
                _logger.warning(
                    "MLflow at %s answered %s again after %.1f s", self._uri, what, time.monotonic() - began
                )
            return result

    def _gave_up(self, what: str, waited: float, error: BaseException) -> str:
        return (
            f"MLflow at {self._uri} stayed unreachable for {waited:.1f} s of retries of {what} "
            f"(TUNER_MLFLOW_RETRY_SECONDS={self._seconds:g}): {_root(error)}; the sweep's trials are kept "
            "in its Optuna study, and `tuner sweep run SPEC --resume` writes their missing MLflow runs once MLflow answers"
        )


def _transient(error: BaseException) -> bool:
    """Whether ``error`` says MLflow could not be reached or asked to be called again later
    (rather than that the call was wrong): a refused, reset or timed-out connection, an HTTP
    status in ``_TRANSIENT_STATUS``, or a database error MLflow calls temporary
    (``OperationalError``: a lost connection, a locked SQLite file), but not a store fault that
    waiting does not fix (:func:`tuner.storage.permanent`)."""
    import requests
    from mlflow.exceptions import MlflowException, RestException
    from sqlalchemy.exc import OperationalError

    if permanent(error):
        return False
    for e in exception_chain(error):
        if isinstance(e, StoreError):
            return e.transient
        if isinstance(e, requests.exceptions.SSLError):
            return False  # a certificate problem does not heal by waiting
        if isinstance(e, (ConnectionError, TimeoutError, OperationalError)):
            return True
        if isinstance(
            e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
        ):
            return True
        if (
            isinstance(e, requests.exceptions.HTTPError) and e.response is not None
        ):  # the server answered: its status decides
            return e.response.status_code in _TRANSIENT_STATUS
        if isinstance(e, RestException):
            return e.get_http_status_code() in _TRANSIENT_STATUS
        if isinstance(e, MlflowException) and e.error_code == "TEMPORARILY_UNAVAILABLE":
            return True
    return False


def _root(error: BaseException) -> str:
    """The innermost cause of ``error`` in one line (``ConnectionRefusedError: [Errno 111] Connection refused``)."""
    *_, root = exception_chain(error)
    text = " ".join(str(root).split())
    return f"{type(root).__name__}: {text[:300]}"


def _without_password(uri: str) -> str:
    """``uri`` with the password of its ``user:password@`` part replaced by ``***``."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", uri)
