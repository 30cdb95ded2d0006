"""Tuning quality: how good are the Adam configs each contender finds for a given budget.

For each workload, budget ``B`` (trials) and search seed, every contender searches,
picks its best trial by its own search-time final metric, and that one config is
re-trained for ``max_epochs`` with fresh seeds (``10_000 + k``, never a search seed);
the contender's score is the mean re-trained metric. One lucky search run is not
rewarded: a config is scored by runs that played no part in choosing it.

Contenders:

- ``torch-default``: torch's default Adam (lr 1e-3, betas (0.9, 0.999), eps 1e-8),
  untuned: the floor. No search.
- ``random``: random search on adamtune's ``adam`` space (``search_spaces/adam.yaml``,
  Optuna's ``RandomSampler(seed)``), every trial trained to ``max_epochs``, no early
  stopping; trained packed in-process (``workers.packed.train_packed``, packs of 8 in
  trial order, one torch thread), no Ray.
- ``raytune-optuna-asha``: Ray Tune as a typical user writes it, without adamtune's
  tuner package: ``tune.Tuner`` + ``OptunaSearch(seed)`` + ``ASHAScheduler(max_t,
  grace_period=1)`` (its default reduction_factor 4), ``reuse_actors=True``, space lr
  loguniform [1e-4, 1e-1], beta1 uniform [0.8, 0.99], beta2 uniform [0.9, 0.9999], eps
  loguniform [1e-10, 1e-6]; the trainable calls ``workers.training.train`` and
  ``tune.report`` per epoch. It picks as ``ResultGrid.get_best_result(scope="last")``
  does: the best last reported value of any trial, early-stopped ones included.
- ``algoperf-5``: AlgoPerf's AdamW paper baseline as its users run it (external tuning):
  5 quasi-random trials (scrambled Halton, ``scipy.stats.qmc``) from its paper space
  (lr log-uniform [1e-4, 1e-2], 1 - beta1 log-uniform [0.02, 0.5], beta2 0.999, eps
  1e-8, decoupled weight_decay log-uniform [5e-3, 1], linear warm-up 5 % then cosine),
  each trained fully, packed in-process; 5 trials whatever ``B`` is. Label smoothing and
  dropout (part of AlgoPerf's space) are left out: these workloads have neither.
- ``algoperf-self-tuning``: AlgoPerf's self-tuning baseline's one fixed point (lr
  0.00175, beta1 0.93266, beta2 0.99552, decoupled weight_decay 0.0812, warm-up 2 %
  then cosine; AdamW here, NAdamW there). No search.
- ``adamtune`` / ``adamtune-packed``: adamtune with its defaults through
  ``SweepService.run`` in this process (one shared Ray, a temporary ``TUNER_HOME``):
  ``search_space: adam``, ``n_trials: B``, execution ``standard`` / ``packed``,
  everything else default (TPE, ASHA, the torch-default baseline as trial 0). Picks as
  ``SweepSummary.pick()`` (no re-evaluation in the spec: the best completed trial).
- ``adamtune-auto``: ``adamtune-packed`` with ``search_space: auto`` (``lr`` alone under 10
  trials, the whole ``adam`` space from 10: ``tuner/search_space.py``), the examples' default.
  A warm-start variant (AlgoPerf's self-tuning point enqueued after the baseline) ran here
  once and was dropped: README "How good are the configs it finds".

adamtune's ``TPESampler(seed)`` draws its first 10 (startup) trials with
``RandomSampler(seed)``, the sampler ``random`` uses: after adamtune's baseline trial the
two propose the same configs until TPE takes over, so at small budgets their difference
is the baseline trial and ASHA (common random numbers, not a coincidence).

Budgets: contenders whose behaviour does not depend on ``B`` (random, raytune,
adamtune, adamtune-packed) run once per seed at the largest ``B``; a
smaller ``B`` is scored on the prefix of the first ``B`` trials by trial number (for
ASHA a prefix is an approximation: those trials' rungs also saw later trials).
``adamtune-auto`` depends on ``B``: it runs once per ``B``. The baseline trial is part
of adamtune's ``B``.

Per workload and budget the table shows, per contender: the median over search seeds of
the score; the median over seeds of its rank among the contenders for that seed (1 =
best, ties share the mean rank); the median trial-epochs spent in search (epochs
trained, summed over the scored trials; early-stopped trials count the epochs they
trained); the median wall time of the search (0 for no search; for a prefix, the time
the last of its trials finished plus the run's fixed tail after its last trial, so an
estimate; in-process packed runs have no Ray or store overhead).

Trial-epochs ratio (printed under each table): for a peer P, ``E_adamtune(P)`` is, per
seed, the cumulative trial-epochs of adamtune's (standard) trials, in trial-number order
within the budget, at which the best-so-far search-time final metric (completed trials)
first reaches P's median re-trained metric; the median over seeds of it ("not reached"
seeds count as infinite, so the median is "not reached" when half or more never reach
it) divided by P's median trial-epochs in search. Below 1: adamtune needed fewer
trial-epochs to find a config as good as P's. A search-time value is one seed's and the
best of several, so it reaches a target more easily than a re-trained mean would.

    python bench/tuning_quality.py                  # 3 workloads x budgets 8/16/32 x 5 seeds (21 min on 2 cores)
    python bench/tuning_quality.py --quick          # digits_mlp + diabetes_mlp, budgets 8/16, 2 seeds (2 min)
    python bench/tuning_quality.py --workloads char_lm --budgets 8 --seeds 1 --contenders random adamtune
    python bench/tuning_quality.py --json /tmp/tuning_quality.json

Workloads (``max_epochs``, metric): digits_mlp (6, val_loss), diabetes_mlp (6,
val_loss), char_lm (4, val_bpc; a small preset, :data:`CHAR_LM_ARGS`, ~0.2 s an epoch
on one core). Measured on 2 cores (AMD EPYC, torch 2.13 CPU, Ray 2.60): the default
size took 1243 s (20.7 min; char_lm ~900 s of it, its re-training ~210 s), ``--quick``
118 s; each picked config is re-trained with 3 seeds (``--retrain-seeds``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHAR_LM_ARGS: dict[str, Any] = {
    "n_layer": 1, "d_model": 32, "n_head": 2, "context": 32, "batch_size": 32, "steps_per_epoch": 50, "max_chars": 200_000,
}


@dataclass(frozen=True)
class WorkloadSetup:
    """One workload as this benchmark runs it."""

    name: str
    args: dict[str, Any]
    metric: str
    mode: str
    max_epochs: int


WORKLOADS: dict[str, WorkloadSetup] = {
    "digits_mlp": WorkloadSetup("digits_mlp", {}, "val_loss", "min", 6),
    "diabetes_mlp": WorkloadSetup("diabetes_mlp", {}, "val_loss", "min", 6),
    "char_lm": WorkloadSetup("char_lm", CHAR_LM_ARGS, "val_bpc", "min", 4),
}

CONTENDERS = (
    "torch-default", "random", "raytune-optuna-asha", "algoperf-5", "algoperf-self-tuning",
    "adamtune", "adamtune-packed", "adamtune-auto",
)
#: Contenders that run once per seed at the largest budget; smaller budgets score prefixes.
PREFIX_SCORED = frozenset({"random", "raytune-optuna-asha", "adamtune", "adamtune-packed"})
#: Contenders with one fixed config and no search.
NO_SEARCH = frozenset({"torch-default", "algoperf-self-tuning"})
#: The adamtune run the trial-epochs ratio is measured from.
REFERENCE = "adamtune"
RETRAIN_SEED_BASE = 10_000
RANDOM_PACK = 8  # random search trains its trials in packs of this many, in trial order
ALGOPERF_TRIALS = 5

SELF_TUNING: dict[str, Any] = {
    "lr": 0.0017486387539278373, "beta1": 1 - 0.06733926164, "beta2": 0.9955159689799007, "eps": 1e-8,
    "weight_decay": 0.08121616522670176, "decoupled_weight_decay": True, "schedule": "cosine", "warmup_fraction": 0.02,
}

NOTES = (
    "random and algoperf-5 are trained packed in-process (train_packed, one torch thread, no Ray, no stores); "
    "the Ray Tune and adamtune contenders run on one shared local Ray (1 CPU per trial or pack).",
    "algoperf-5 and algoperf-self-tuning leave out label smoothing and dropout (these workloads have neither) and "
    "use AdamW where AlgoPerf's self-tuning baseline uses NAdamW.",
    "raytune-optuna-asha picks as ResultGrid.get_best_result(scope='last'): early-stopped trials count with "
    "their last value; the adamtune contenders pick completed trials only (SweepSummary.pick()).",
    "adamtune's TPESampler(seed) draws its first 10 (startup) trials with RandomSampler(seed), the random "
    "contender's sampler: after the baseline trial the two propose the same configs until TPE takes over.",
)

# Keys (and defaults) of a config that change training: workers.training.CONFIG_KEYS.
_CONFIG_DEFAULTS: dict[str, Any] = {
    "weight_decay": 0.0, "decoupled_weight_decay": False, "amsgrad": False, "schedule": "constant", "warmup_fraction": 0.0,
}
_REQUIRED = ("lr", "beta1", "beta2", "eps")


# -- pure helpers (unit-tested, no torch, no Ray) ------------------------------------------


@dataclass(frozen=True)
class TrialResult:
    """One search trial.

    Attributes:
        number: its trial number (0-based, the order prefixes follow).
        config: the Adam config it trained with (``workers.training.train``'s keys).
        value: its search-time final metric (last reported epoch); ``None``: failed or diverged.
        epochs: epochs it trained.
        completed: whether it trained to ``max_epochs`` without failing.
        finished_s: seconds from the run's start to its end (``None``: unknown).
    """

    number: int
    config: dict[str, Any]
    value: float | None
    epochs: int
    completed: bool = True
    finished_s: float | None = None


def canonical_config(config: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The training-relevant content of a config as a hashable, order-free key.

    Bookkeeping keys (``trial_number``, ``baseline``, ...) are dropped, defaults filled
    in, numbers made floats, and ``decoupled_weight_decay`` set false at weight_decay 0
    (Adam and AdamW are the same update then), so configs that train alike key alike.
    """
    full = {**_CONFIG_DEFAULTS, **{k: v for k, v in config.items() if k in _CONFIG_DEFAULTS or k in _REQUIRED}}
    missing = [k for k in _REQUIRED if k not in full]
    if missing:
        raise KeyError(f"config is missing {missing}: {dict(config)}")
    out: dict[str, Any] = {}
    for key, value in full.items():
        if key in ("decoupled_weight_decay", "amsgrad"):
            out[key] = bool(value)
        elif key == "schedule":
            out[key] = str(value)
        else:
            out[key] = float(value)
    if out["weight_decay"] == 0.0:
        out["decoupled_weight_decay"] = False
    return tuple(sorted(out.items()))


def retrain_key(workload: str, config: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The re-train cache key: the workload and the config's :func:`canonical_config`."""
    return workload, canonical_config(config)


class RetrainCache:
    """Re-trained final metrics per (workload, config) and re-train seed: each pair trains once."""

    def __init__(self, seeds: Sequence[int], mode: str) -> None:
        self.seeds = tuple(seeds)
        self.mode = mode
        self._values: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[int, float | None]] = {}

    def missing(self, workload: str, configs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The configs (one per key, first seen) that still lack a value for some seed."""
        out: dict[Any, dict[str, Any]] = {}
        for config in configs:
            key = retrain_key(workload, config)
            done = self._values.get(key, {})
            if key not in out and any(seed not in done for seed in self.seeds):
                out[key] = dict(key[1])
        return list(out.values())

    def put(self, workload: str, config: Mapping[str, Any], seed: int, value: float | None) -> None:
        self._values.setdefault(retrain_key(workload, config), {})[seed] = value

    def values(self, workload: str, config: Mapping[str, Any]) -> dict[int, float | None]:
        return dict(self._values.get(retrain_key(workload, config), {}))

    def score(self, workload: str, config: Mapping[str, Any]) -> float:
        """Mean re-trained metric over the seeds; the worst value (inf for min) if any run diverged.

        Raises:
            KeyError: the config was not re-trained with every seed.
        """
        values = self._values.get(retrain_key(workload, config), {})
        if any(seed not in values for seed in self.seeds):
            raise KeyError(f"{workload} config not re-trained for every seed: {dict(config)}")
        finite = [values[s] for s in self.seeds if values[s] is not None and math.isfinite(values[s])]
        if len(finite) < len(self.seeds):
            return worst(self.mode)
        return statistics.fmean(finite)

    def entries(self) -> list[dict[str, Any]]:
        return [{"workload": w, "config": dict(c), "values": {str(s): v for s, v in vals.items()}}
                for (w, c), vals in self._values.items()]


def worst(mode: str) -> float:
    """The worst possible value in ``mode``: +inf for min, -inf for max."""
    return math.inf if mode == "min" else -math.inf


def better(a: float, b: float, mode: str) -> bool:
    """Whether ``a`` is strictly better than ``b``."""
    return a < b if mode == "min" else a > b


def prefix(trials: Sequence[TrialResult], budget: int) -> list[TrialResult]:
    """The first ``budget`` trials by trial number."""
    return sorted(trials, key=lambda t: t.number)[:budget]


def pick(trials: Sequence[TrialResult], mode: str, *, completed_only: bool = True) -> TrialResult | None:
    """The best trial by its search-time final value (finite values only; ties: lowest number).

    ``completed_only``: only trials trained to ``max_epochs`` (adamtune's ``SweepSummary.best``);
    false: any trial's last value (Ray Tune's ``get_best_result(scope="last")``).
    """
    best: TrialResult | None = None
    for t in sorted(trials, key=lambda t: t.number):
        if t.value is None or not math.isfinite(t.value) or (completed_only and not t.completed):
            continue
        if best is None or better(t.value, best.value, mode):
            best = t
    return best


def rank(values: Sequence[float], mode: str) -> list[float]:
    """1-based ranks (1 = best in ``mode``); equal values share the mean of their ranks; NaN counts as worst."""
    from scipy.stats import rankdata

    keyed = [worst(mode) if v is None or math.isnan(v) else v for v in values]
    return [float(r) for r in rankdata(keyed if mode == "min" else [-v for v in keyed], method="average")]


def median_ranks(scores: Mapping[str, Sequence[float]], mode: str) -> dict[str, float]:
    """Per contender, the median over seeds of its rank among the contenders for that seed.

    Args:
        scores: contender -> one score per seed (the same seeds, in the same order, for all).
    """
    names = list(scores)
    n_seeds = {len(v) for v in scores.values()}
    if len(n_seeds) > 1:
        raise ValueError(f"every contender needs one score per seed, but got lengths {sorted(n_seeds)}")
    per_seed = [rank([scores[name][s] for name in names], mode) for s in range(n_seeds.pop() if n_seeds else 0)]
    return {name: statistics.median(r[i] for r in per_seed) if per_seed else math.nan for i, name in enumerate(names)}


def epochs_to_reach(trials: Sequence[TrialResult], target: float, mode: str) -> int | None:
    """Cumulative trial-epochs, in trial-number order, at which the best-so-far completed
    trial's search-time value first reaches ``target`` (``<=`` for min, ``>=`` for max);
    ``None``: never reached."""
    spent = 0
    for t in sorted(trials, key=lambda t: t.number):
        spent += t.epochs
        if t.completed and t.value is not None and math.isfinite(t.value):
            if t.value == target or better(t.value, target, mode):
                return spent
    return None


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median where ``None`` counts as +infinity; ``None`` if the median is infinite (or no values)."""
    if not values:
        return None
    median = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(median) else median


def reach_ratio(reach: Sequence[int | None], peer_epochs: float) -> float | None:
    """Median epochs-to-reach over seeds (:func:`median_or_none`) divided by the peer's median
    trial-epochs; ``None`` if not reached; ``inf`` if the peer spent none but it was reached
    after some, ``0`` if it was reached at 0 too."""
    median = median_or_none(reach)
    if median is None:
        return None
    if peer_epochs <= 0:
        return 0.0 if median == 0 else math.inf
    return median / peer_epochs


def prefix_wall(trials: Sequence[TrialResult], budget: int, wall: float) -> float:
    """Wall time of a run scored on its first ``budget`` trials: the whole run's when that is
    all of it or a finish time is unknown, else when the last prefix trial finished plus the
    run's tail (its wall time after its last trial finished)."""
    chosen = prefix(trials, budget)
    if len(chosen) >= len(trials) or any(t.finished_s is None for t in trials):
        return wall
    tail = max(0.0, wall - max(t.finished_s for t in trials))
    return max(t.finished_s for t in chosen) + tail


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else math.nan


# -- runs -----------------------------------------------------------------------------------


@dataclass
class SearchRun:
    """One search of one contender for one workload and seed, at ``budget`` trials."""

    contender: str
    workload: str
    seed: int
    budget: int
    trials: list[TrialResult]
    wall_s: float
    completed_only: bool = True  # the pick rule (see :func:`pick`)
    fixed: dict[str, Any] | None = None  # the one config of a no-search contender

    def view(self, budget: int, mode: str) -> tuple[dict[str, Any] | None, int, float]:
        """The picked config, trial-epochs and wall time when scored at ``budget`` trials."""
        if self.fixed is not None:
            return self.fixed, 0, 0.0
        chosen = prefix(self.trials, budget)
        best = pick(chosen, mode, completed_only=self.completed_only)
        return (best.config if best else None), sum(t.epochs for t in chosen), prefix_wall(self.trials, budget, self.wall_s)


class _FinishClock:
    """A SweepObserver (as ``SweepService.run``'s progress) that notes when each trial ends."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.finished: dict[int, float] = {}

    def __enter__(self) -> _FinishClock:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def trial_started(self, number: int, config: Mapping[str, Any]) -> None:
        pass

    def epoch_reported(self, number: int, epoch: int, metrics: Mapping[str, float]) -> None:
        pass

    def trial_finished(self, number: int, outcome: Any) -> None:
        self.finished[number] = time.perf_counter() - self.start


class Bench:
    """The shared Ray, the sweep service (temporary ``TUNER_HOME``) and the built workloads of one benchmark run."""

    def __init__(self, args: argparse.Namespace, setups: list[WorkloadSetup]) -> None:
        self.args = args
        self.setups = setups
        self.home: Path | None = None
        self.service: Any = None
        self._workloads: dict[str, Any] = {}

    # -- setup ---------------------------------------------------------------------------

    def needs_ray(self, contenders: Sequence[str]) -> bool:
        return any(c.startswith("adamtune") or c.startswith("raytune") for c in contenders)

    def open(self, contenders: Sequence[str]) -> None:
        if not self.needs_ray(contenders):
            return
        from tuner.executor._ray import init_ray, sweep_runtime_env
        from tuner.settings import Settings
        from tuner.spec import parse_spec
        from tuner.sweeps import SweepService

        probe = parse_spec({"name": "probe", "workload": self.setups[0].name, "search_space": "adam"})
        init_ray(None, sweep_runtime_env(probe))  # one local Ray for every run (registered workloads share its env)
        self.home = Path(tempfile.mkdtemp(prefix="tuning-quality-", dir=self.args.home))
        self.service = SweepService(Settings(home=self.home))
        self.service.open()

    def close(self) -> None:
        if self.service is not None:  # opened: its writer runs
            self.service.writer.close()
        with contextlib.suppress(Exception):
            import ray

            if ray.is_initialized():
                ray.shutdown()  # the local Ray this process started
        if self.home is not None and not self.args.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def workload(self, setup: WorkloadSetup) -> Any:
        if setup.name not in self._workloads:
            from workers import get_workload

            w = get_workload(setup.name, setup.args)
            next(iter(w.train_batches(1, 0)))  # loads and caches the data untimed
            self._workloads[setup.name] = w
        return self._workloads[setup.name]

    # -- in-process training -------------------------------------------------------------

    def train_configs(self, setup: WorkloadSetup, configs: Sequence[Mapping[str, Any]], seed: int) -> list[tuple[float | None, int]]:
        """Each config's final metric (``None``: diverged) and epochs, trained as one pack in this process."""
        from workers.packed import train_packed

        last: list[dict[str, Any] | None] = [None] * len(configs)
        for rows in train_packed(list(configs), workload=self.workload(setup), max_epochs=setup.max_epochs, seed=seed, num_threads=1):
            for i, row in enumerate(rows):
                if row is not None:
                    last[i] = row
        out: list[tuple[float | None, int]] = []
        for row in last:
            if row is None:
                out.append((None, 0))
                continue
            value = row.get(setup.metric)
            ok = not row.get("diverged") and row["epoch"] == setup.max_epochs and value is not None and math.isfinite(value)
            out.append((float(value) if ok else None, int(row["epoch"])))
        return out

    def retrain(self, setup: WorkloadSetup, cache: RetrainCache, configs: Iterable[Mapping[str, Any]]) -> int:
        """Re-train the configs the cache lacks, packed by update rule; returns how many."""
        todo = cache.missing(setup.name, configs)
        groups: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
        for config in todo:
            groups.setdefault((config["amsgrad"], config["decoupled_weight_decay"]), []).append(config)
        chunk = 8 if setup.name == "char_lm" else 64
        for seed in cache.seeds:
            for group in groups.values():
                for i in range(0, len(group), chunk):
                    part = group[i:i + chunk]
                    for config, (value, _) in zip(part, self.train_configs(setup, part, seed)):
                        cache.put(setup.name, config, seed, value)
        return len(todo)

    # -- contenders ----------------------------------------------------------------------

    def run_random(self, setup: WorkloadSetup, seed: int, budget: int) -> SearchRun:
        import optuna

        from tuner.search_space import SearchSpace, load_search_space
        from tuner.study import distributions

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        space = SearchSpace.model_validate(load_search_space("adam"))
        dists = distributions(space)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        configs = [space.to_adam_config(study.ask(dists).params) for _ in range(budget)]
        trials: list[TrialResult] = []
        start = time.perf_counter()
        for i in range(0, budget, RANDOM_PACK):
            part = configs[i:i + RANDOM_PACK]
            results = self.train_configs(setup, part, seed)
            done = time.perf_counter() - start
            for k, (config, (value, epochs)) in enumerate(zip(part, results)):
                trials.append(TrialResult(i + k, config, value, epochs, value is not None, done))
        return SearchRun("random", setup.name, seed, budget, trials, time.perf_counter() - start)

    def run_algoperf(self, setup: WorkloadSetup, seed: int) -> SearchRun:
        from scipy.stats import qmc

        points = qmc.Halton(d=3, scramble=True, seed=seed).random(ALGOPERF_TRIALS)  # (5, 3) in [0, 1)

        def log_uniform(u: float, low: float, high: float) -> float:
            return float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))

        configs = [
            {
                "lr": log_uniform(p[0], 1e-4, 1e-2), "beta1": 1.0 - log_uniform(p[1], 0.02, 0.5), "beta2": 0.999, "eps": 1e-8,
                "weight_decay": log_uniform(p[2], 5e-3, 1.0), "decoupled_weight_decay": True, "amsgrad": False,
                "schedule": "cosine", "warmup_fraction": 0.05,
            }
            for p in points
        ]
        start = time.perf_counter()
        results = self.train_configs(setup, configs, seed)
        wall = time.perf_counter() - start
        trials = [TrialResult(i, c, v, e, v is not None, wall) for i, (c, (v, e)) in enumerate(zip(configs, results))]
        return SearchRun("algoperf-5", setup.name, seed, ALGOPERF_TRIALS, trials, wall)

    def run_raytune(self, setup: WorkloadSetup, seed: int, budget: int) -> SearchRun:
        start = time.perf_counter()
        clock = _ray_finish_clock(start)
        results = raytune_optuna_asha(
            setup.name, setup.args, metric=setup.metric, mode=setup.mode, max_epochs=setup.max_epochs, seed=seed,
            num_samples=budget, storage_path=str(self.home / "ray-results"), name=f"raytune-{setup.name}-s{seed}-b{budget}",
            callbacks=[clock],
        )
        wall = time.perf_counter() - start
        trials = []
        for result in results:
            metrics = result.metrics or {}
            trial_id = str(metrics.get("trial_id") or Path(result.path).name.split("_")[-2])
            value = metrics.get(setup.metric)
            epochs = int(metrics.get("training_iteration", 0))
            ok = result.error is None and value is not None and math.isfinite(value)
            trials.append(TrialResult(clock.numbers[trial_id], dict(result.config), float(value) if ok else None, epochs,
                                      ok and epochs == setup.max_epochs, clock.finished.get(trial_id)))
        return SearchRun("raytune-optuna-asha", setup.name, seed, budget, trials, wall, completed_only=False)

    def run_adamtune(self, contender: str, setup: WorkloadSetup, seed: int, budget: int) -> SearchRun:
        from tuner.spec import parse_spec

        spec = parse_spec({"name": f"{contender}-{setup.name}-b{budget}-s{seed}", **adamtune_spec(contender, setup, seed, budget)})
        start = time.perf_counter()
        clock = _FinishClock(start)
        summary = self.service.run(spec, progress=lambda _spec, _done: clock)
        wall = time.perf_counter() - start
        trials = [
            TrialResult(t.number, dict(t.config), t.value if t.state in ("completed", "early-stopped") else None, t.epochs,
                        t.state == "completed", clock.finished.get(t.number))
            for t in summary.trials
        ]
        picked = summary.pick()
        mine = pick(trials, setup.mode)
        if picked and mine and picked[0].number != mine.number and picked[0].value != mine.value:
            print(f"  note: SweepSummary.pick() chose trial {picked[0].number}, the bench's rule {mine.number}", flush=True)
        return SearchRun(contender, setup.name, seed, budget, trials, wall)


def adamtune_spec(contender: str, setup: WorkloadSetup, seed: int, budget: int) -> dict[str, Any]:
    """The spec keys (all but ``name``) of an adamtune contender: defaults but the workload,
    space, budget, epochs, metric and seed; execution."""
    spec: dict[str, Any] = {
        "workload": setup.name, "workload_args": setup.args, "search_space": "adam", "n_trials": budget,
        "max_epochs": setup.max_epochs, "metric": setup.metric, "mode": setup.mode, "seed": seed,
        "execution": "standard" if contender == "adamtune" else "packed",
    }
    if contender == "adamtune-auto":
        spec["search_space"] = "auto"
    return spec


def _ray_finish_clock(start: float) -> Any:
    """A Ray Tune callback noting, per trial id, when it ended (seconds since ``start``) in
    ``finished`` and its place in the experiment's trial list (creation order: the order the
    searcher suggested it in) in ``numbers``."""
    from ray import tune

    class Clock(tune.Callback):
        def __init__(self) -> None:
            self.finished: dict[str, float] = {}
            self.numbers: dict[str, int] = {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.numbers[trial.trial_id] = trials.index(trial)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.finished[trial.trial_id] = time.perf_counter() - start

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.finished[trial.trial_id] = time.perf_counter() - start

    return Clock()


# -- Ray Tune as a user writes it (no adamtune tuner code) ----------------------------------


def _raytune_trainable(config: dict[str, Any], *, workload_name: str, workload_args: dict[str, Any], max_epochs: int,
                       seed: int) -> None:
    from ray import tune

    from workers import get_workload
    from workers.training import train

    workload = get_workload(workload_name, workload_args)
    for row in train(config, workload=workload, max_epochs=max_epochs, seed=seed):
        tune.report(dict(row))


def raytune_optuna_asha(workload_name: str, workload_args: dict[str, Any], *, metric: str, mode: str, max_epochs: int,
                        seed: int, num_samples: int, storage_path: str, name: str, callbacks: list[Any]) -> Any:
    """A typical Ray Tune user's sweep: OptunaSearch + ASHA over lr, betas and eps; returns the ResultGrid."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    param_space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "beta1": tune.uniform(0.8, 0.99),
        "beta2": tune.uniform(0.9, 0.9999),
        "eps": tune.loguniform(1e-10, 1e-6),
    }
    trainable = tune.with_parameters(_raytune_trainable, workload_name=workload_name, workload_args=workload_args,
                                     max_epochs=max_epochs, seed=seed)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearch(seed=seed),
            scheduler=ASHAScheduler(max_t=max_epochs, grace_period=1),
            num_samples=num_samples,
            metric=metric,
            mode=mode,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0, callbacks=callbacks),
    )
    return tuner.fit()


# -- the benchmark --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("ray", "optuna", "scipy"):
        with contextlib.suppress(ImportError):
            versions[module] = __import__(module).__version__
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": affinity, "os": platform.platform(), **versions}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    total_start = time.perf_counter()
    warnings.filterwarnings("ignore", category=UserWarning)  # vmap/attention performance notes of CPU packs
    setups = [_setup(name, args) for name in args.workloads]
    budgets = sorted(set(args.budgets))
    seeds = list(range(args.seeds))
    retrain_seeds = [RETRAIN_SEED_BASE + k for k in range(args.retrain_seeds)]
    contenders = [c for c in CONTENDERS if c in args.contenders]

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, ray {info.get('ray')}, optuna {info.get('optuna')}", flush=True)
    print(f"workloads {', '.join(s.name for s in setups)}; budgets {budgets}; seeds {seeds}; re-train seeds {retrain_seeds}; "
          f"contenders {', '.join(contenders)}", flush=True)

    bench = Bench(args, setups)
    results: dict[str, Any] = {"machine": info, "settings": {
        "workloads": {s.name: asdict(s) for s in setups}, "budgets": budgets, "seeds": seeds, "retrain_seeds": retrain_seeds,
        "contenders": contenders}, "notes": list(NOTES), "runs": [], "tables": []}
    try:
        bench.open(contenders)
        caches: dict[str, RetrainCache] = {}
        runs: list[SearchRun] = []
        for setup in setups:
            cache = caches[setup.name] = RetrainCache(retrain_seeds, setup.mode)
            plan = _plan(contenders, budgets, seeds)
            for i, (seed, contender, budget) in enumerate(plan, 1):
                run = _search(bench, contender, setup, seed, budget)
                runs.append(run)
                epochs = sum(t.epochs for t in run.trials)
                print(f"[{setup.name} {i}/{len(plan)}] seed {seed} {contender}"
                      f"{f' B={budget}' if run.fixed is None else ''}: {run.wall_s:.1f} s, {epochs} trial-epochs "
                      f"({time.perf_counter() - total_start:.0f} s so far)", flush=True)
            picks = [run.view(b, setup.mode)[0] for run in runs if run.workload == setup.name for b in budgets]
            start = time.perf_counter()
            n = bench.retrain(setup, cache, [p for p in picks if p is not None])
            print(f"[{setup.name}] re-trained {n} distinct picked configs x {len(retrain_seeds)} seeds in "
                  f"{time.perf_counter() - start:.1f} s ({time.perf_counter() - total_start:.0f} s so far)", flush=True)
        results["runs"] = [_run_json(r) for r in runs]
        results["retrained"] = [e for c in caches.values() for e in c.entries()]
    finally:
        bench.close()

    print()
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}")
    for setup in setups:
        for budget in budgets:
            table = _table(setup, budget, contenders, seeds, runs, caches[setup.name])
            results["tables"].append(table)
            _print_table(table, setup, budget, len(retrain_seeds), max(budgets))
    total = time.perf_counter() - total_start
    results["total_wall_s"] = total
    print()
    for note in NOTES:
        print(f"note: {note}")
    print(f"\ntotal wall time: {total:.0f} s ({total / 60:.1f} min)")
    if args.json:
        Path(args.json).write_text(json.dumps(_finite(results), indent=2))
        print(f"wrote {args.json}")
    return 0


def _setup(name: str, args: argparse.Namespace) -> WorkloadSetup:
    if name not in WORKLOADS:
        raise SystemExit(f"unknown workload {name!r}: use one of {', '.join(WORKLOADS)}")
    setup = WORKLOADS[name]
    if args.max_epochs is not None:
        setup = WorkloadSetup(setup.name, setup.args, setup.metric, setup.mode, args.max_epochs)
    return setup


def _plan(contenders: Sequence[str], budgets: Sequence[int], seeds: Sequence[int]) -> list[tuple[int, str, int]]:
    """(seed, contender, budget) of every search, seed by seed (contenders interleaved against drift)."""
    plan = []
    for seed in seeds:
        for contender in contenders:
            if contender in NO_SEARCH or contender == "algoperf-5" or contender in PREFIX_SCORED:
                plan.append((seed, contender, max(budgets)))
            else:  # adamtune-auto: one run per budget
                plan += [(seed, contender, b) for b in budgets]
    return plan


def _search(bench: Bench, contender: str, setup: WorkloadSetup, seed: int, budget: int) -> SearchRun:
    if contender == "torch-default":
        from workers.trial import TORCH_DEFAULTS

        return SearchRun(contender, setup.name, seed, 0, [], 0.0, fixed=dict(TORCH_DEFAULTS))
    if contender == "algoperf-self-tuning":
        return SearchRun(contender, setup.name, seed, 0, [], 0.0, fixed=dict(SELF_TUNING))
    if contender == "random":
        return bench.run_random(setup, seed, budget)
    if contender == "algoperf-5":
        return bench.run_algoperf(setup, seed)
    if contender == "raytune-optuna-asha":
        return bench.run_raytune(setup, seed, budget)
    return bench.run_adamtune(contender, setup, seed, budget)


def _runs_for(runs: Sequence[SearchRun], contender: str, workload: str, budget: int) -> dict[int, SearchRun]:
    """Per seed, the run that scores ``contender`` at ``budget``."""
    out = {}
    for run in runs:
        if run.contender == contender and run.workload == workload:
            if contender == "adamtune-auto" and run.budget != budget:
                continue
            out[run.seed] = run
    return out


def _table(setup: WorkloadSetup, budget: int, contenders: Sequence[str], seeds: Sequence[int], runs: Sequence[SearchRun],
           cache: RetrainCache) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    scores: dict[str, list[float]] = {}
    for contender in contenders:
        by_seed = _runs_for(runs, contender, setup.name, budget)
        if any(s not in by_seed for s in seeds):
            continue
        per_seed = []
        for s in seeds:
            config, epochs, wall = by_seed[s].view(budget, setup.mode)
            score = worst(setup.mode) if config is None else cache.score(setup.name, config)
            per_seed.append({"seed": s, "config": config, "score": score, "trial_epochs": epochs, "wall_s": wall})
        scores[contender] = [p["score"] for p in per_seed]
        rows[contender] = {
            "contender": contender,
            "median_score": median(scores[contender]),
            "trial_epochs": median(p["trial_epochs"] for p in per_seed),
            "wall_s": median(p["wall_s"] for p in per_seed),
            "per_seed": per_seed,
        }
    for contender, r in median_ranks(scores, setup.mode).items():
        rows[contender]["median_rank"] = r
    ratios = []
    if REFERENCE in rows:
        reference = _runs_for(runs, REFERENCE, setup.name, budget)
        for peer, row in rows.items():
            if peer == REFERENCE:
                continue
            reach = [epochs_to_reach(prefix(reference[s].trials, budget), row["median_score"], setup.mode) for s in seeds]
            ratios.append({"peer": peer, "peer_median_score": row["median_score"], "peer_trial_epochs": row["trial_epochs"],
                           "reach_per_seed": reach, "reach_median": median_or_none(reach),
                           "ratio": reach_ratio(reach, row["trial_epochs"])})
    return {"workload": setup.name, "metric": setup.metric, "mode": setup.mode, "max_epochs": setup.max_epochs,
            "budget": budget, "rows": list(rows.values()), "ratios": ratios}


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "diverged" if value > 0 else "-inf"
    return format(value, spec)


def _print_table(table: dict[str, Any], setup: WorkloadSetup, budget: int, n_retrain: int, largest: int) -> None:
    print(f"\n### {setup.name}, budget {budget} trials ({setup.metric}, {setup.mode}, {setup.max_epochs} epochs per trial)\n")
    print(f"| contender | median re-trained {setup.metric} | median rank | trial-epochs (median) | wall time (median, s) |")
    print("|---|---:|---:|---:|---:|")
    for row in sorted(table["rows"], key=lambda r: (r["median_rank"], r["contender"])):
        print(f"| {row['contender']} | {_fmt(row['median_score'], '.4f')} | {row['median_rank']:.1f} | "
              f"{row['trial_epochs']:.0f} | {row['wall_s']:.1f} |")
    print(f"\nScore: the picked config re-trained with {n_retrain} fresh seeds, mean; median over search seeds. "
          f"random and algoperf-5 trained packed in-process (no Ray); "
          f"{f'first {budget} trials of a {largest}-trial run' if budget < largest else 'full run'} for random, raytune, adamtune, adamtune-packed "
          f"(for ASHA a prefix is an approximation); algoperf-5 always 5 trials.")
    if table["ratios"]:
        print(f"\nadamtune (standard) trial-epochs to reach each peer's median re-trained {setup.metric}, within {budget} trials:\n")
        print("| peer | peer's median | peer's trial-epochs | adamtune's trial-epochs to reach (median) | seeds reached | ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in table["ratios"]:
            reached = sum(x is not None for x in r["reach_per_seed"])
            ratio = "not reached" if r["ratio"] is None else ("peer spends 0" if math.isinf(r["ratio"]) else f"{r['ratio']:.2f}")
            reach = "not reached" if r["reach_median"] is None else f"{r['reach_median']:.0f}"
            print(f"| {r['peer']} | {_fmt(r['peer_median_score'], '.4f')} | {r['peer_trial_epochs']:.0f} | {reach} | "
                  f"{reached}/{len(r['reach_per_seed'])} | {ratio} |")
        print("\nratio = median over seeds of the cumulative trial-epochs (adamtune's trials in trial-number order) at which "
              "its best-so-far search-time value (completed trials) first reaches the peer's median re-trained metric "
              "(never: infinite), divided by the peer's median trial-epochs in search; < 1: adamtune needed fewer. "
              "Search-time values are single-seed bests, so they reach a target more easily than re-trained means.")


def _run_json(run: SearchRun) -> dict[str, Any]:
    return {"contender": run.contender, "workload": run.workload, "seed": run.seed, "budget": run.budget, "wall_s": run.wall_s,
            "fixed": run.fixed, "trials": [asdict(t) for t in run.trials]}


def _finite(value: Any) -> Any:
    """JSON-safe: infinities and NaN become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits_mlp + diabetes_mlp, budgets 8 16, 2 seeds (a few minutes)")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=None)
    parser.add_argument("--budgets", nargs="+", type=int, default=None, help="trial budgets (default 8 16 32)")
    parser.add_argument("--seeds", type=int, default=None, help="search seeds 0..N-1 (default 5)")
    parser.add_argument("--retrain-seeds", type=int, default=3, help="fresh seeds each picked config is re-trained with")
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--max-epochs", type=int, default=None, help="override every workload's max_epochs")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--home", default=None, help="parent folder of the temporary TUNER_HOME (default: the temp dir)")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary TUNER_HOME (stores, MLflow runs)")
    args = parser.parse_args(argv)
    quick = {"workloads": ["digits_mlp", "diabetes_mlp"], "budgets": [8, 16], "seeds": 2}
    full = {"workloads": list(WORKLOADS), "budgets": [8, 16, 32], "seeds": 5}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.budgets) < 1 or args.seeds < 1 or args.retrain_seeds < 1:
        parser.error("budgets, --seeds and --retrain-seeds must be >= 1")
    return args


if __name__ == "__main__":
    sys.exit(main())
