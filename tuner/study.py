"""The Optuna adapter: one study per sweep in an ``RDBStorage`` (``optuna.db``).

The study holds the sweep's spec (study user attribute ``spec``), the workload's
facts (``workload_facts``), re-evaluations of its top configs (``reevaluation``), its MLflow
ids (``mlflow``), and every trial's sampled values, Adam config (user attributes ``lr``,
``beta1``, …), state and reason, so a sweep can be listed, shown, exported and resumed from
the storage alone. Optuna objects stay in this module and in the executor; callers
get :class:`~tuner.records.SweepSummary`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from tuner.baseline import BASELINE_ATTR, baseline_config
from tuner.errors import SweepNotFoundError
from tuner.records import MlflowIds, SweepSummary, TrialRecord
from tuner.search_space import Choice, HyperparameterName, SearchSpace

if TYPE_CHECKING:
    import optuna

    from tuner.spec import SweepSpec

__all__ = [
    "CONFIG_ATTRS",
    "CONFIG_TEXT_ATTR",
    "CONTINUES_ATTR",
    "EPOCHS_ATTR",
    "REASON_ATTR",
    "VALUE_EPOCH_ATTR",
    "StudyStore",
    "config_text",
    "distributions",
    "journal_wal",
    "spec_note",
]

#: The study user attribute that holds the sweep's spec (JSON).
SPEC_ATTR = "spec"
#: Study user attribute: what the workload is (parameters, batch size, dtype, steps per epoch).
WORKLOAD_ATTR = "workload_facts"
#: Study user attribute: the lr range test's result (:attr:`tuner.records.SweepSummary.lr_range`), when the spec asked for one.
LR_RANGE_ATTR = "lr_range_test"
#: Study user attribute: re-evaluations, ``{"<trial number>": {"<seed>": value or None}}``.
REEVALUATION_ATTR = "reevaluation"
#: Study user attribute: the sweep's MLflow ids (:class:`tuner.records.MlflowIds`, as JSON).
MLFLOW_ATTR = "mlflow"
#: Trial user attributes this project writes.
REASON_ATTR = "reason"
EPOCHS_ATTR = "epochs"
#: Trial user attribute: the epoch its value was reported at, where not its last (``objective: best``).
VALUE_EPOCH_ATTR = "value_epoch"
#: Trial user attribute of a continuation: the number of the early-stopped trial whose config it
#: trains again to ``max_epochs`` (:class:`tuner.executor.SweepStudy`).
CONTINUES_ATTR = "continues"
#: A trial's config as it trained, one user attribute each (``beta1``, where the study's
#: params hold ``one_minus_beta1``), so optuna-dashboard and the ``optuna`` CLI show them.
CONFIG_ATTRS: tuple[str, ...] = get_args(HyperparameterName)
#: Trial user attribute for people only (optuna-dashboard): the config in one line, 4 significant
#: digits, 1-beta next to beta (:func:`config_text`). No code reads it back; the exact values
#: stay in :data:`CONFIG_ATTRS` and the params.
CONFIG_TEXT_ATTR = "adam_config"
#: optuna-dashboard's study note (Markdown), as ``optuna_dashboard.save_note`` stores it: a version
#: and the body in chunks of at most 2045 characters, study system attributes. Written here
#: directly because importing ``optuna_dashboard`` imports scikit-learn (~3 s); the tests read it
#: back with ``optuna_dashboard.get_note``.
_NOTE_VERSION_KEY = "dashboard:note_ver"
_NOTE_CHUNK_PREFIX = "dashboard:note_str:"
_NOTE_CHUNK = 2045


def config_text(config: Mapping[str, Any]) -> str:
    """A trial config in one line for people: 4 significant digits, ``1-beta`` in scientific
    notation next to each beta (0.9998 vs 0.9999 hides 2e-04 vs 1e-04), the schedule last."""
    parts = [] if config.get("algorithm", "adam") == "adam" else [str(config["algorithm"])]
    for key in ("lr", "beta1", "beta2", "eps", "weight_decay"):
        if key in config:
            value = float(config[key])
            parts.append(f"{key} {value:.4g}" + (f" (1-{key} {1 - value:.3e})" if key.startswith("beta") else ""))
    if "schedule" in config:
        warmup = float(config.get("warmup_fraction") or 0.0)
        parts.append(f"schedule {config['schedule']}" + (f" (warmup {warmup:.4g})" if warmup else ""))
    return ", ".join(parts)


def spec_note(spec: Mapping[str, Any]) -> str:
    """The study note optuna-dashboard shows: the sweep's spec as YAML (Markdown)."""
    import yaml

    head = f"## Sweep {spec['name']}\n\nworkload `{spec['workload']}`, {spec['metric']} ({spec['mode']}), {spec['n_trials']} trials"
    body = yaml.safe_dump(dict(spec), sort_keys=False, allow_unicode=True, width=100)
    return f"{head}\n\nThe spec (`tuner export {spec['name']}` prints the best config):\n\n```yaml\n{body}```\n"


def distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna distributions of a search space's searched entries, keyed as the study records them:
    a ``FloatDistribution`` per :class:`~tuner.search_space.Dimension`, a
    ``CategoricalDistribution`` per :class:`~tuner.search_space.Choice`."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    return {
        name: CategoricalDistribution(d.choices)
        if isinstance(d, Choice)
        else FloatDistribution(d.low, d.high, log=d.log)
        for name, d in space.searched().items()
    }


class StudyStore:
    """Sweeps' Optuna studies in one storage URL (SQLite file or PostgreSQL); a SQLite file this
    process may read but not write is opened read-only (:func:`tuner.storage.read_only_where_unwritable`)."""

    def __init__(self, url: str) -> None:
        import optuna

        from tuner.storage import read_only_where_unwritable

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if url.startswith("sqlite:///") and not read_only_where_unwritable(url):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        sqlite = url.startswith("sqlite")
        self.storage = optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": {"timeout": 30}} if sqlite else None
        )
        if sqlite:
            from sqlalchemy import event

            event.listen(self.storage.engine, "connect", journal_wal)
            self.storage.engine.dispose()  # Optuna connected while creating its tables: those pooled connections go

    def names(self) -> list[str]:
        """Names of the sweeps this storage holds, sorted.

        A study counts once its spec is recorded: Optuna creates a study and sets
        its user attributes in two transactions, and a reader in between (``tuner
        serve`` answering a status request) must not see a sweep without a spec.
        """
        return sorted(s.study_name for s in self.storage.get_all_studies() if SPEC_ATTR in s.user_attrs)

    def exists(self, name: str) -> bool:
        """Whether the sweep ``name`` is stored (its study exists and holds its spec)."""
        return name in self.names()

    def create(
        self,
        spec: SweepSpec,
        *,
        workload_facts: Mapping[str, Any] | None = None,
        lr_range: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the sweep's study and record its spec (JSON), the workload's facts
        (:attr:`tuner.workload.WorkloadInfo.facts`) and the lr range test's result
        (:attr:`tuner.records.SweepSummary.lr_range`) as user attributes.

        A study left without its spec (a crash between the two writes) is reused.
        """
        import optuna

        study = optuna.create_study(
            storage=self.storage,
            study_name=spec.name,
            direction="minimize" if spec.mode == "min" else "maximize",
            load_if_exists=True,
        )
        if workload_facts is not None:
            study.set_user_attr(WORKLOAD_ATTR, dict(workload_facts))
        if lr_range is not None:
            study.set_user_attr(LR_RANGE_ATTR, dict(lr_range))
        with warnings.catch_warnings():  # experimental since Optuna 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([spec.metric])  # optuna-dashboard's and the plots' axis name
        dumped = spec.model_dump(mode="json")
        self._save_note(self.storage.get_study_id_from_name(spec.name), spec_note(dumped))
        study.set_user_attr(SPEC_ATTR, dumped)  # last: the sweep exists once this is written

    def _save_note(self, study_id: int, body: str) -> None:
        """Store ``body`` as the study's optuna-dashboard note (see :data:`_NOTE_VERSION_KEY`)."""
        storage = self.storage
        stored = storage.get_study_system_attrs(study_id)
        storage.set_study_system_attr(study_id, _NOTE_VERSION_KEY, stored.get(_NOTE_VERSION_KEY, 0) + 1)
        chunks = [body[i : i + _NOTE_CHUNK] for i in range(0, len(body), _NOTE_CHUNK)]
        old = sum(key.startswith(_NOTE_CHUNK_PREFIX) for key in stored)
        for i in range(max(len(chunks), old)):  # an older, longer note's chunks are emptied
            storage.set_study_system_attr(study_id, f"{_NOTE_CHUNK_PREFIX}{i}", chunks[i] if i < len(chunks) else "")

    def set_workload_facts(self, name: str, facts: Mapping[str, Any]) -> None:
        """Record the workload's facts of a stored sweep (a resumed sweep made by an older adamtune has none)."""
        self.storage.set_study_user_attr(self.storage.get_study_id_from_name(name), WORKLOAD_ATTR, dict(facts))

    def record_reevaluation(self, name: str, number: int, seed: int, value: float | None) -> None:
        """Record a re-evaluation of trial ``number`` with ``seed``: its final value (``None``: it failed)."""
        study_id = self.storage.get_study_id_from_name(name)
        stored = self.storage.get_study_user_attrs(study_id).get(REEVALUATION_ATTR, {})
        stored.setdefault(str(number), {})[str(seed)] = value
        self.storage.set_study_user_attr(study_id, REEVALUATION_ATTR, stored)

    def record_mlflow(self, name: str, ids: MlflowIds) -> None:
        """Record the sweep's MLflow ids (:class:`~tuner.records.MlflowIds`), replacing those recorded
        before (as JSON: its trial numbers become string keys)."""
        study_id = self.storage.get_study_id_from_name(name)
        self.storage.set_study_user_attr(study_id, MLFLOW_ATTR, dataclasses.asdict(ids))

    def summary(self, name: str) -> SweepSummary:
        """The sweep's spec and trials.

        Raises:
            SweepNotFoundError: no study called ``name``.
        """
        import optuna

        try:
            study = optuna.load_study(study_name=name, storage=self.storage)
            spec = study.user_attrs[SPEC_ATTR]
        except KeyError:
            known = ", ".join(self.names()) or "none yet"
            raise SweepNotFoundError(f"no sweep named {name!r}; known sweeps: {known}") from None
        space = SearchSpace.model_validate(spec["search_space"])
        trials = tuple(_record(t, space) for t in study.get_trials(deepcopy=False))
        reevaluations = {
            int(number): {int(seed): value for seed, value in by_seed.items()}
            for number, by_seed in study.user_attrs.get(REEVALUATION_ATTR, {}).items()
        }
        return SweepSummary(
            name=name,
            spec=spec,
            trials=trials,
            reevaluations=reevaluations,
            workload_facts=study.user_attrs.get(WORKLOAD_ATTR, {}),
            lr_range=study.user_attrs.get(LR_RANGE_ATTR),
            mlflow=_mlflow_ids(study.user_attrs.get(MLFLOW_ATTR, {})),
        )


def _mlflow_ids(stored: Mapping[str, Any]) -> MlflowIds:
    """:class:`MlflowIds` from its JSON in the study (trial numbers are JSON's string keys)."""
    return MlflowIds(
        experiment_id=stored.get("experiment_id"),
        run_id=stored.get("run_id"),
        trial_runs={int(n): run for n, run in stored.get("trial_runs", {}).items()},
        diagnostics={int(n): dict(metrics) for n, metrics in stored.get("diagnostics", {}).items()},
    )


def journal_wal(dbapi_connection: Any, _record: Any = None) -> None:
    """SQLAlchemy ``connect`` listener: WAL journaling with ``synchronous=NORMAL`` for a
    SQLite connection; other drivers' connections are left as they are.

    Optuna and MLflow commit each report, attribute and state change on its own;
    SQLite's default rollback journal syncs the file several times per commit, which
    made those writes the bottleneck of a packed sweep (measured: an Optuna report
    2.2 -> 0.6 ms, a tell 6.9 -> 4.0 ms; MLflow's writes 20% faster). WAL also lets
    ``tuner serve`` read a study while a sweep writes it. A commit survives the process
    being killed; only an OS crash or power loss can drop the last few (SQLite's
    documented trade-off for ``NORMAL`` in WAL mode).
    """
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _record(trial: optuna.trial.FrozenTrial, space: SearchSpace) -> TrialRecord:
    from optuna.trial import TrialState

    state = {
        TrialState.COMPLETE: "completed",
        TrialState.PRUNED: "early-stopped",
        TrialState.FAIL: "failed",
    }.get(trial.state, "running")
    baseline = bool(trial.user_attrs.get(BASELINE_ATTR))
    if baseline:
        config = {k: v for k, v in baseline_config(space).items() if k != BASELINE_ATTR}
    elif space.searched().keys() <= trial.params.keys():
        config = space.to_adam_config(trial.params)
    else:  # a trial being asked gets its params one write at a time; a reader in between sees some
        config = {}
    intermediate = trial.intermediate_values
    value: Any = trial.value
    if value is None and intermediate and state != "failed":  # a running trial's latest; a failed one has none
        value = intermediate[max(intermediate)]
    epochs = trial.user_attrs.get(EPOCHS_ATTR, len(intermediate))
    return TrialRecord(
        number=trial.number,
        state=state,
        config=config,
        value=value,
        epochs=epochs,
        reason=trial.user_attrs.get(REASON_ATTR),
        baseline=baseline,
        continues=trial.user_attrs.get(CONTINUES_ATTR),
        value_epoch=None if value is None else trial.user_attrs.get(VALUE_EPOCH_ATTR, epochs),
    )
