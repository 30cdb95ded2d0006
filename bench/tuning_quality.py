"""Tuning quality: how good are the Adam configs each contender finds for a given budget.

For each workload, budget ``B`` (trials) and search seed, every contender searches,
picks its best trial by its own search-time final metric, and that one config is
re-trained for ``max_epochs`` with fresh seeds (``10_000 + k``, never a search seed);
the contender's score is the mean re-trained metric. One lucky search run is not
rewarded: a config is scored by runs that played no part in choosing it (unless the
workload seeds itself: ``examples/own_model`` calls ``torch.manual_seed(0)``, so its
re-trained value is its search value).

Workloads: anything a spec's ``workload:`` takes (``--workload REF [--workload-args JSON]``:
a registered name, ``package.module:attr`` or ``path/to/file.py:attr``; a Workload class or
a function ``train(trial)``), resolved and checked with ``tuner.workload`` (``normalize``,
``parse_ref``, ``check_workload``). Every contender trains the same code:

- a Workload class that can pack: the in-process contenders (random, algoperf-5, the
  re-training) train it packed (``workers.packed.train_packed``, one torch thread); the
  Ray Tune contender's trainable runs ``workers.training.train`` (FusedAdam, the loop the
  workload comes with) and calls ``tune.report`` per epoch;
- a function ``train(trial)`` (or a Workload that cannot pack): the in-process contenders
  train one config at a time with ``workers.trainable.train_trial`` (what an adamtune trial
  runs: torch, numpy and ``random`` seeded, a ``workers.Trial``, one thread); the Ray Tune
  contender calls the function with a trial of its own (:func:`tune_trial`): a
  ``workers.Trial`` whose ``optimizer`` builds ``torch.optim.Adam`` (AdamW when decoupled)
  and whose ``report`` calls ``tune.report``, as a Ray Tune user's loop would. adamtune's
  packed execution does not take such a workload: ``adamtune-packed`` sits it out.

Contenders:

- ``torch-default``: torch's default Adam (lr 1e-3, betas (0.9, 0.999), eps 1e-8),
  untuned: the floor. No search.
- ``random``: random search on adamtune's ``adam`` space (``search_spaces/adam.yaml``,
  Optuna's ``RandomSampler(seed)``), every trial trained to ``max_epochs``, no early
  stopping; trained in-process (packs of 8 in trial order where the workload packs), no Ray.
- ``raytune-optuna-asha``: Ray Tune as a typical user writes it, without adamtune's
  tuner package: ``tune.Tuner`` + ``OptunaSearch(seed)`` (Optuna's TPE, its first 10 trials
  random) + ``ASHAScheduler(max_t, grace_period=1)`` (its default reduction_factor 4),
  ``reuse_actors=True``, space lr loguniform [1e-4, 1e-1], beta1 uniform [0.8, 0.99], beta2
  uniform [0.9, 0.9999], eps loguniform [1e-10, 1e-6]; ``tune.report`` per epoch. It picks as
  ``ResultGrid.get_best_result(scope="last")`` does: the best last reported value of any
  trial, early-stopped ones included.
- ``algoperf-5``: AlgoPerf's AdamW paper baseline as its users run it (external tuning):
  5 quasi-random trials (scrambled Halton, ``scipy.stats.qmc``) from its paper space
  (lr log-uniform [1e-4, 1e-2], 1 - beta1 log-uniform [0.02, 0.5], beta2 0.999, eps
  1e-8, decoupled weight_decay log-uniform [5e-3, 1], linear warm-up 5 % then cosine),
  each trained fully in-process; 5 trials whatever ``B`` is. Label smoothing and
  dropout (part of AlgoPerf's space) are left out: these workloads have neither.
- ``algoperf-self-tuning``: AlgoPerf's self-tuning baseline's one fixed point (lr
  0.00175, beta1 0.93266, beta2 0.99552, decoupled weight_decay 0.0812, warm-up 2 %
  then cosine; AdamW here, NAdamW there). No search.
- ``adamtune`` / ``adamtune-packed``: adamtune with its defaults through
  ``SweepService.run`` in this process (one shared Ray, a temporary ``TUNER_HOME``), execution
  ``standard`` / ``packed``: the spec sets only the workload, ``search_space: auto`` (``lr``
  alone under 10 trials; from 10 ``lr`` and both betas, ``eps`` at 1e-8), ``n_trials: B``, ``max_epochs``,
  metric, mode and seed; ``sampler`` (auto: a Sobol design of max(3, B // 4) configs, then
  multivariate TPE), ``asha`` (fitted to ``B`` and ``max_epochs``) and ``lr_range_test``
  (off) are left unset, so
  the torch-default baseline is trial 0 and early-stopped trials that lead at their rung
  are continued to ``max_epochs`` in the last max(1, B // 8) trials. Picks as
  ``SweepSummary.pick()`` (no re-evaluation in the spec: the best completed trial). The
  former ``adamtune-auto`` (packed with ``search_space: auto``) is ``adamtune-packed`` now
  that ``auto`` is the default. A warm-start variant (AlgoPerf's self-tuning point enqueued
  after the baseline) ran once and was dropped: docs/tuning-quality.md.

- ``adamtune-lrt``: ``adamtune`` with ``lr_range_test: auto`` (under 32 trials, for a Workload
  class, the lr range test first), to measure what the range test buys (it was the default until
  2026-12-05, when 10 seeds showed no gain); Workload classes only (for a ``train(trial)`` function
  it is ``adamtune``). Its range-test steps (at most one epoch) count in its trial-epochs.

Budgets: every adamtune default (the ``auto`` space, the Sobol design's size, ASHA's fit,
the continuations) depends on ``n_trials``, so ``adamtune`` and ``adamtune-packed`` run
once per ``B`` (:data:`PER_BUDGET`); the baseline trial and the continuations are part of
their ``B``. ``random`` and ``raytune-optuna-asha`` do not depend on ``B`` (:data:`PREFIX_SCORED`):
they run once per seed at the largest ``B``, and a smaller ``B`` is scored on the prefix of
the first ``B`` trials by trial number (for ASHA an approximation: those trials' rungs also
saw later trials).

Per workload and budget the table shows, per contender: the median over search seeds of
the score; the median over seeds of its rank among the contenders for that seed (1 =
best, ties share the mean rank); the median trial-epochs spent in search (epochs
trained, summed over the scored trials; early-stopped trials count the epochs they
trained); the median wall time of the search (0 for no search; for a prefix, the time
the last of its trials finished plus the run's fixed tail after its last trial, so an
estimate; in-process runs have no Ray or store overhead).

Trial-epochs ratio (printed under each table): for a peer P, ``E_adamtune(P)`` is, per
seed, the cumulative trial-epochs of adamtune's (standard) ``B``-trial run, in
trial-number order, at which the best-so-far search-time final metric (completed trials)
first reaches P's median re-trained metric; the median over seeds of it ("not reached"
seeds count as infinite, so the median is "not reached" when half or more never reach
it) divided by P's median trial-epochs in search. Below 1: adamtune needed fewer
trial-epochs to find a config as good as P's. A search-time value is one seed's and the
best of several, so it reaches a target more easily than a re-trained mean would.

Verdicts (printed under each table): adamtune (standard) against each peer is ``ahead``,
``behind``, or a ``tie`` when the two medians differ by no more than the seeds' spread (twice the
standard error of the difference of the medians, each estimated from its scores' interquartile
range over the search seeds), with on how many search seeds its score was better and worse. ``--from-json`` prints a results file's tables
again, computing the verdicts for a file written before they existed.

    python bench/tuning_quality.py                  # 3 workloads x budgets 8/16/32 x 5 seeds
    python bench/tuning_quality.py --quick          # digits_mlp + own_model, budgets 8/16, 2 seeds
    python bench/tuning_quality.py --workloads char_lm --budgets 8 --seeds 1 --contenders random adamtune
    python bench/tuning_quality.py --workload path/to/train.py:train --max-epochs 10 --metric val_loss
    python bench/tuning_quality.py --workload my_pkg.tasks:Net --workload-args '{"width": 64}'
    python bench/tuning_quality.py --json /tmp/tuning_quality.json
    python bench/tuning_quality.py --from-json /tmp/tuning_quality.json   # the tables again, running nothing

Bundled workloads (``--workloads``; ``max_epochs``, metric): digits_mlp (6, val_loss),
char_lm (4, val_bpc; a small preset, :data:`CHAR_LM_ARGS`, ~0.2 s an epoch on one core),
own_model (``examples/own_model/train.py:train``, a ``train(trial)`` function on
scikit-learn's breast-cancer data; 20, val_loss: the epochs the function reports).
diabetes_mlp left the default table: no contender separated from torch's defaults on it
(89 validation rows). Each picked config is re-trained with 3 seeds (``--retrain-seeds``).
Not yet timed at the default size with this protocol (the previous one, with diabetes_mlp,
took 20.7 min on 2 cores, ``--quick`` 2 min).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

CHAR_LM_ARGS: dict[str, Any] = {
    "n_layer": 1,
    "d_model": 32,
    "n_head": 2,
    "context": 32,
    "batch_size": 32,
    "steps_per_epoch": 50,
    "max_chars": 200_000,
}


#: The repository's root: the bundled workloads' file paths are relative to it.
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WorkloadSetup:
    """One workload as this benchmark runs it.

    Attributes:
        name: its label (tables, the re-train cache's key).
        ref: what a spec's ``workload:`` takes: a registered name, ``package.module:attr``
            or ``path/to/file.py:attr`` (after :func:`resolve_workload`, as ``normalize``
            stores it: file paths absolute).
        args: its ``workload_args``.
        metric, mode: what the search optimizes.
        max_epochs: epochs per trial.
        can_pack: a Workload class that packs (``check_workload``); trained packed in-process.
        function: a function ``train(trial)`` (else a Workload class).
    """

    name: str
    ref: str
    args: dict[str, Any]
    metric: str
    mode: str
    max_epochs: int
    can_pack: bool = True
    function: bool = False


#: The bundled workloads (``--workloads``), unresolved: :func:`resolve_workload` checks them.
WORKLOADS: dict[str, WorkloadSetup] = {
    "digits_mlp": WorkloadSetup("digits_mlp", "digits_mlp", {}, "val_loss", "min", 6),
    "char_lm": WorkloadSetup("char_lm", "char_lm", CHAR_LM_ARGS, "val_bpc", "min", 4),
    "own_model": WorkloadSetup("own_model", "examples/own_model/train.py:train", {}, "val_loss", "min", 20),
}

CONTENDERS = (
    "torch-default",
    "random",
    "raytune-optuna-asha",
    "algoperf-5",
    "algoperf-self-tuning",
    "adamtune",
    "adamtune-packed",
    "adamtune-lrt",
)
#: Contenders that run once per seed at the largest budget; smaller budgets score prefixes.
PREFIX_SCORED = frozenset({"random", "raytune-optuna-asha"})
#: Contenders that run once per seed and budget (adamtune's defaults depend on n_trials).
PER_BUDGET = frozenset({"adamtune", "adamtune-packed", "adamtune-lrt"})
#: Contenders with one fixed config and no search.
NO_SEARCH = frozenset({"torch-default", "algoperf-self-tuning"})
#: Contenders that need a Workload that packs (the others train any workload).
NEEDS_PACKING = frozenset({"adamtune-packed"})
#: Contenders that differ from ``adamtune`` only for a Workload class (the lr range test's).
NEEDS_WORKLOAD_CLASS = frozenset({"adamtune-lrt"})
#: The adamtune run the trial-epochs ratio is measured from.
REFERENCE = "adamtune"
RETRAIN_SEED_BASE = 10_000
DEFAULT_MAX_EPOCHS = 6  # --workload's max_epochs unless --max-epochs says
RANDOM_PACK = 8  # random search trains its trials in packs of this many, in trial order
ALGOPERF_TRIALS = 5

SELF_TUNING: dict[str, Any] = {
    "lr": 0.0017486387539278373,
    "beta1": 1 - 0.06733926164,
    "beta2": 0.9955159689799007,
    "eps": 1e-8,
    "weight_decay": 0.08121616522670176,
    "decoupled_weight_decay": True,
    "schedule": "cosine",
    "warmup_fraction": 0.02,
}

NOTES = (
    "random and algoperf-5 are trained in-process (packed with train_packed where the workload packs, else one "
    "config at a time with workers.trainable.train_trial; one torch thread, no Ray, no stores); "
    "the Ray Tune and adamtune contenders run on one shared local Ray (1 CPU per trial or pack).",
    "algoperf-5 and algoperf-self-tuning leave out label smoothing and dropout (these workloads have neither) and "
    "use AdamW where AlgoPerf's self-tuning baseline uses NAdamW.",
    "raytune-optuna-asha picks as ResultGrid.get_best_result(scope='last'): early-stopped trials count with "
    "their last value; the adamtune contenders pick completed trials only (SweepSummary.pick()).",
    "adamtune and adamtune-packed run with adamtune's defaults (search_space auto, sampler auto, ASHA fitted to "
    "the budget, continuations), once per budget; random and raytune-optuna-asha run at the largest budget and "
    "smaller budgets score their first trials.",
    "for a train(trial) function, raytune-optuna-asha's trial builds torch.optim.Adam and reports with tune.report; "
    "adamtune-packed sits out workloads that cannot pack.",
)

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
    in, numbers made floats (:meth:`workers.config.AdamConfig.from_config`, which raises
    ``KeyError`` for a missing and ``ValueError`` for a bad value), and
    ``decoupled_weight_decay`` set false at weight_decay 0 (Adam and AdamW are the same
    update then), so configs that train alike key alike.
    """
    from workers.config import AdamConfig

    out = AdamConfig.from_config(config).to_config()
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
        return [
            {"workload": w, "config": dict(c), "values": {str(s): v for s, v in vals.items()}}
            for (w, c), vals in self._values.items()
        ]


def worst(mode: str) -> float:
    """The worst possible value in ``mode``: +inf for min, -inf for max."""
    return math.inf if mode == "min" else -math.inf


def better(a: float, b: float, mode: str) -> bool:
    """Whether ``a`` is strictly better than ``b``."""
    return a < b if mode == "min" else a > b


def tie_band(ours: Sequence[float | None], theirs: Sequence[float | None]) -> float | None:
    """The seeds' spread between two contenders: twice the standard error of the difference of
    their medians over search seeds, each median's estimated from its own scores (sigma from the
    interquartile range, IQR / 1.349; a median's standard error 1.2533 sigma / sqrt(n), the normal
    approximation). Two medians closer than this tie inside the seeds' spread. ``None`` when a
    side has fewer than 2 finite scores."""
    errors = []
    for scores in (ours, theirs):
        finite = [v for v in scores if v is not None and math.isfinite(v)]
        if len(finite) < 2:
            return None
        q1, _, q3 = statistics.quantiles(finite, n=4, method="inclusive")
        errors.append(1.2533 * (q3 - q1) / 1.349 / math.sqrt(len(finite)))
    return 2 * math.hypot(*errors)


def verdicts(rows: Mapping[str, Mapping[str, Any]], mode: str) -> list[dict[str, Any]]:
    """:data:`REFERENCE` against every other contender of a table: ``ahead``, ``behind``, or
    ``tie`` when the medians differ by no more than the seeds' spread (:func:`tie_band`); with the
    difference of medians (reference minus peer), the band, and on how many seeds the reference's
    score was better and worse."""
    if REFERENCE not in rows:
        return []
    ours = rows[REFERENCE]
    mine = [x["score"] for x in ours["per_seed"]]
    out = []
    for peer, row in rows.items():
        if peer == REFERENCE:
            continue
        theirs = [y["score"] for y in row["per_seed"]]
        a, b = _or_worst(ours["median_score"], mode), _or_worst(row["median_score"], mode)
        pairs = [(_or_worst(x, mode), _or_worst(y, mode)) for x, y in zip(mine, theirs, strict=True)]
        delta = a - b if math.isfinite(a) and math.isfinite(b) else None
        band = tie_band(mine, theirs)
        if a == b or (delta is not None and band is not None and abs(delta) <= band):
            verdict = "tie"
        else:
            verdict = "ahead" if better(a, b, mode) else "behind"
        out.append(
            {
                "peer": peer,
                "verdict": verdict,
                "delta": delta,
                "band": band,
                "seeds_better": sum(better(x, y, mode) for x, y in pairs),
                "seeds_worse": sum(better(y, x, mode) for x, y in pairs),
                "seeds": len(pairs),
            }
        )
    return out


def _or_worst(value: float | None, mode: str) -> float:
    """A score, or the worst one for ``None`` (a diverged pick, as the JSON stores it)."""
    return worst(mode) if value is None else value


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


def final_outcome(last: Mapping[str, Any] | None, metric: str, max_epochs: int) -> tuple[float | None, int]:
    """A trial's search-time final value and the epochs it trained, from its last reported row.

    The value is ``None`` unless the trial reached ``max_epochs`` without an error or
    divergence and with a finite ``metric``; ``epochs`` is the row's epoch either way
    (0 for no row).
    """
    if last is None:
        return None, 0
    epochs = int(last.get("epoch", 0))
    value = last.get(metric)
    ok = (
        not last.get("diverged")
        and not last.get("error")
        and epochs == max_epochs
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
    return (float(value) if ok else None), epochs


# -- workloads --------------------------------------------------------------------------------


def resolve_workload(setup: WorkloadSetup, *, base_dir: Path | None = None) -> WorkloadSetup:
    """``setup`` with its ``ref`` as a spec stores it, checked, and how it trains.

    The ref is resolved as ``tuner sweep run`` resolves a spec's ``workload:``
    (``tuner.workload.normalize``: a file path against ``base_dir``, else the current
    folder), then imported and checked (``tuner.workload.check_workload``: the args fit, a
    Workload class declares the metric and is built, so its data are read), which says
    whether it packs; a function is what has no model facts.

    Raises:
        ValueError: it names nothing that trains, or its args or metric do not fit (one line).
    """
    from tuner.errors import SpecError
    from tuner.workload import check_workload, normalize

    try:
        text = normalize(setup.ref, base_dir=base_dir, allow_code=True)
        info = check_workload(text, setup.args, metric=setup.metric)
    except SpecError as e:
        raise ValueError(str(e).removeprefix("invalid sweep spec: ")) from None
    return replace(setup, ref=text, can_pack=info.can_pack, function=not info.facts)


def slug(name: str) -> str:
    """A workload's label as part of a sweep's or Ray experiment's name: letters, digits,
    ``_ . -`` only, at most 32 characters (a sweep name's limit is 64)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[-32:].lstrip("-.") or "workload"


def worker_import(ref: str) -> tuple[str, Path | None]:
    """What a Ray worker imports for a resolved ``ref`` (``WorkloadRef.worker_target``) and
    the folder it imports it from (``None``: an installed module): a file workload's own
    folder (its ``working_dir`` on a worker), the current folder for ``module:attr``
    (``tuner.workload`` looks there too)."""
    from tuner.workload import parse_ref

    parsed = parse_ref(ref)
    folder = parsed.path.parent if parsed.kind == "file" else Path.cwd() if parsed.kind == "module" else None
    return parsed.worker_target, folder


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
    overhead_epochs: float = 0.0  # epochs trained outside trials (the lr range test)

    def view(self, budget: int, mode: str) -> tuple[dict[str, Any] | None, int, float]:
        """The picked config, trial-epochs and wall time when scored at ``budget`` trials."""
        if self.fixed is not None:
            return self.fixed, 0, 0.0
        chosen = prefix(self.trials, budget)
        best = pick(chosen, mode, completed_only=self.completed_only)
        epochs = sum(t.epochs for t in chosen) + self.overhead_epochs
        return (best.config if best else None), epochs, prefix_wall(self.trials, budget, self.wall_s)


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
        self._failed: set[str] = set()  # workloads whose in-process failure was printed

    # -- setup ---------------------------------------------------------------------------

    def needs_ray(self, contenders: Sequence[str]) -> bool:
        return any(c.startswith("adamtune") or c.startswith("raytune") for c in contenders)

    def open(self, contenders: Sequence[str]) -> None:
        if not self.needs_ray(contenders):
            return
        from tuner.executor import start_local_ray
        from tuner.service import SweepService
        from tuner.settings import Settings
        from tuner.workload import runtime_env

        start_local_ray(runtime_env(self.setups[0].ref))  # one local Ray; a workload with other code restarts it
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

    def importable(self, setup: WorkloadSetup) -> str:
        """The workload's worker target, importable in this process as on a Ray worker (its
        folder on ``sys.path``, as a worker's ``working_dir`` is)."""
        target, folder = worker_import(setup.ref)
        if folder is not None and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        return target

    def workload(self, setup: WorkloadSetup) -> Any:
        """The built Workload (one that packs), its data loaded untimed."""
        if setup.name not in self._workloads:
            from workers.workloads import load_workload

            w = load_workload(self.importable(setup), setup.args)
            next(iter(w.train_batches(1, 0)))  # loads and caches the data untimed
            self._workloads[setup.name] = w
        return self._workloads[setup.name]

    # -- in-process training -------------------------------------------------------------

    def train_configs(
        self, setup: WorkloadSetup, configs: Sequence[Mapping[str, Any]], seed: int
    ) -> list[tuple[float | None, int]]:
        """Each config's final metric (``None``: failed or diverged) and epochs, trained in this
        process: as one pack where the workload packs, else one after the other (:meth:`train_one`)."""
        if not setup.can_pack:
            return [self.train_one(setup, config, seed) for config in configs]
        from workers.packed import train_packed

        last: list[dict[str, Any] | None] = [None] * len(configs)
        for rows in train_packed(
            list(configs), workload=self.workload(setup), max_epochs=setup.max_epochs, seed=seed, num_threads=1
        ):
            for i, row in enumerate(rows):
                if row is not None:
                    last[i] = row
        return [final_outcome(row, setup.metric, setup.max_epochs) for row in last]

    def train_one(self, setup: WorkloadSetup, config: Mapping[str, Any], seed: int) -> tuple[float | None, int]:
        """One config's final metric and epochs, trained as an adamtune trial trains it
        (``workers.trainable.train_trial``: a Workload's loop, or ``train(trial)`` with torch,
        numpy and ``random`` seeded), on one thread, in this process."""
        from workers.trainable import train_trial

        rows: list[dict[str, Any]] = []
        train_trial(
            dict(config),
            workload=self.importable(setup),
            workload_args=setup.args,
            max_epochs=setup.max_epochs,
            seed=seed,
            metric=setup.metric,
            threads=1,
            device="cpu",
            report=rows.append,
        )
        last = rows[-1] if rows else None
        if last is not None and last.get("error") and setup.name not in self._failed:
            self._failed.add(setup.name)
            print(f"  note: a {setup.name} trial failed in-process: {last['error']}", flush=True)
        return final_outcome(last, setup.metric, setup.max_epochs)

    def retrain(self, setup: WorkloadSetup, cache: RetrainCache, configs: Iterable[Mapping[str, Any]]) -> int:
        """Re-train the configs the cache lacks (packed by update rule where the workload packs);
        returns how many."""
        todo = cache.missing(setup.name, configs)
        if not setup.can_pack:
            for seed in cache.seeds:
                for config in todo:
                    cache.put(setup.name, config, seed, self.train_one(setup, config, seed)[0])
            return len(todo)
        groups: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
        for config in todo:
            groups.setdefault((config["amsgrad"], config["decoupled_weight_decay"]), []).append(config)
        chunk = 8 if setup.name == "char_lm" else 64
        for seed in cache.seeds:
            for group in groups.values():
                for i in range(0, len(group), chunk):
                    part = group[i : i + chunk]
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
            part = configs[i : i + RANDOM_PACK]
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
                "lr": log_uniform(p[0], 1e-4, 1e-2),
                "beta1": 1.0 - log_uniform(p[1], 0.02, 0.5),
                "beta2": 0.999,
                "eps": 1e-8,
                "weight_decay": log_uniform(p[2], 5e-3, 1.0),
                "decoupled_weight_decay": True,
                "amsgrad": False,
                "schedule": "cosine",
                "warmup_fraction": 0.05,
            }
            for p in points
        ]
        start = time.perf_counter()
        results = self.train_configs(setup, configs, seed)
        wall = time.perf_counter() - start
        trials = [TrialResult(i, c, v, e, v is not None, wall) for i, (c, (v, e)) in enumerate(zip(configs, results))]
        return SearchRun("algoperf-5", setup.name, seed, ALGOPERF_TRIALS, trials, wall)

    def run_raytune(self, setup: WorkloadSetup, seed: int, budget: int) -> SearchRun:
        from tuner.executor import start_local_ray
        from tuner.workload import runtime_env

        start_local_ray(runtime_env(setup.ref))  # the job ships the workload's code (kept if it already does)
        start = time.perf_counter()
        clock = _ray_finish_clock(start)
        results = raytune_optuna_asha(
            worker_import(setup.ref)[0],
            setup.args,
            function=setup.function,
            metric=setup.metric,
            mode=setup.mode,
            max_epochs=setup.max_epochs,
            seed=seed,
            num_samples=budget,
            storage_path=str(self.home / "ray-results"),
            name=f"raytune-{slug(setup.name)}-s{seed}-b{budget}",
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
            trials.append(
                TrialResult(
                    clock.numbers[trial_id],
                    dict(result.config),
                    float(value) if ok else None,
                    epochs,
                    ok and epochs == setup.max_epochs,
                    clock.finished.get(trial_id),
                )
            )
        return SearchRun("raytune-optuna-asha", setup.name, seed, budget, trials, wall, completed_only=False)

    def run_adamtune(self, contender: str, setup: WorkloadSetup, seed: int, budget: int) -> SearchRun:
        from tuner.spec import parse_spec

        spec = parse_spec(
            {
                "name": f"{contender}-{slug(setup.name)}-b{budget}-s{seed}",
                **adamtune_spec(contender, setup, seed, budget),
            }
        )
        start = time.perf_counter()
        clock = _FinishClock(start)
        summary = self.service.run(spec, progress=lambda _spec, _done: clock)
        wall = time.perf_counter() - start
        trials = [
            TrialResult(
                t.number,
                dict(t.config),
                t.value if t.state in ("completed", "early-stopped") else None,
                t.epochs,
                t.state == "completed",
                clock.finished.get(t.number),
            )
            for t in summary.trials
        ]
        picked = summary.pick()
        mine = pick(trials, setup.mode)
        if picked and mine and picked[0].number != mine.number and picked[0].value != mine.value:
            print(
                f"  note: SweepSummary.pick() chose trial {picked[0].number}, the bench's rule {mine.number}",
                flush=True,
            )
        overhead = summary.lr_range["epochs"] if summary.lr_range else 0.0
        return SearchRun(contender, setup.name, seed, budget, trials, wall, overhead_epochs=overhead)


#: An adamtune contender's execution.
EXECUTION = {"adamtune": "standard", "adamtune-packed": "packed", "adamtune-lrt": "standard"}


def adamtune_spec(contender: str, setup: WorkloadSetup, seed: int, budget: int) -> dict[str, Any]:
    """The spec keys (all but ``name``) of an adamtune contender: adamtune's defaults
    (``search_space: auto``, the one key without a default; ``sampler`` and ``asha`` unset,
    so ``auto`` and fitted to ``budget``) but the workload, budget, epochs, metric, mode and
    seed; the execution (:data:`EXECUTION`)."""
    return {
        "workload": setup.ref,
        "workload_args": dict(setup.args),
        "search_space": "auto",
        "n_trials": budget,
        "max_epochs": setup.max_epochs,
        "metric": setup.metric,
        "mode": setup.mode,
        "seed": seed,
        "execution": EXECUTION[contender],
        **({"lr_range_test": "auto"} if contender == "adamtune-lrt" else {}),
    }


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


def tune_trial(
    config: Mapping[str, Any],
    *,
    max_epochs: int,
    seed: int,
    workload_args: Mapping[str, Any] | None,
    metric: str | None,
    report: Callable[[dict[str, Any]], None],
) -> Any:
    """The trial a Ray Tune user's loop hands a ``train(trial)`` function: a ``workers.Trial``
    (so the function runs unchanged: ``config``, ``device``, ``lr_scheduler``, ...) whose
    ``optimizer`` builds ``torch.optim.Adam`` (``AdamW`` with decoupled weight decay) and whose
    ``report`` passes ``{"epoch": n, **metrics}`` to ``report`` (``tune.report`` in the
    trainable) with no diagnostics or divergence check; a report past ``max_epochs`` raises
    ``workers.trial.StopTrial``, as a sweep's trial does.

    Built here because ``workers.trainable.run_function`` makes its own ``Trial`` (FusedAdam):
    a ``trial_factory`` seam there would let this reuse it.
    """
    from workers.trial import StopTrial, Trial

    class TuneTrial(Trial):
        def __init__(self) -> None:
            super().__init__(
                config=config,
                number=int(config.get("trial_number", 0)),
                seed=seed,
                max_epochs=max_epochs,
                device="cpu",
                workload_args=workload_args,
                metric=metric,
                reporter=report,
            )
            self._tune_epochs = 0

        def optimizer(self, params: Iterable[Any]) -> Any:
            import torch

            c = self.config
            cls = torch.optim.AdamW if c["decoupled_weight_decay"] else torch.optim.Adam
            return cls(
                params, lr=c["lr"], betas=c["betas"], eps=c["eps"], weight_decay=c["weight_decay"], amsgrad=c["amsgrad"]
            )

        def report(self, **metrics: Any) -> None:
            self._tune_epochs += 1
            if self._tune_epochs > self.max_epochs:
                raise StopTrial(f"reported more than max_epochs={self.max_epochs} epochs")
            values = {k: float(v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
            report({"epoch": self._tune_epochs, **values})

        @property
        def epochs_reported(self) -> int:
            return self._tune_epochs

    return TuneTrial()


def _raytune_trainable(
    config: dict[str, Any],
    *,
    workload: str,
    workload_args: dict[str, Any],
    function: bool,
    max_epochs: int,
    seed: int,
    metric: str,
) -> None:
    """A Ray Tune user's trainable: a Workload trains with ``workers.training.train``; a
    ``train(trial)`` function is called, torch, numpy and ``random`` seeded as an adamtune
    trial's are, with :func:`tune_trial`; each epoch goes to ``tune.report``."""
    from ray import tune

    from workers.workloads import load_workload

    loaded = load_workload(workload, workload_args)
    if not function:
        from workers.training import train

        for row in train(config, workload=loaded, max_epochs=max_epochs, seed=seed):
            tune.report(dict(row))
        return
    import random

    import numpy as np
    import torch

    from workers.trial import StopTrial

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    trial = tune_trial(
        config,
        max_epochs=max_epochs,
        seed=seed,
        workload_args=workload_args,
        metric=metric,
        report=lambda row: tune.report(dict(row)),
    )
    try:
        loaded(trial)
    except StopTrial:
        return


def raytune_optuna_asha(
    workload: str,
    workload_args: dict[str, Any],
    *,
    function: bool,
    metric: str,
    mode: str,
    max_epochs: int,
    seed: int,
    num_samples: int,
    storage_path: str,
    name: str,
    callbacks: list[Any],
) -> Any:
    """A typical Ray Tune user's sweep: OptunaSearch + ASHA over lr, betas and eps; returns the ResultGrid.

    ``workload``: what a worker imports (``WorkloadRef.worker_target``; the job's
    ``runtime_env`` ships its code); ``function``: it is a ``train(trial)`` function.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    param_space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "beta1": tune.uniform(0.8, 0.99),
        "beta2": tune.uniform(0.9, 0.9999),
        "eps": tune.loguniform(1e-10, 1e-6),
    }
    trainable = tune.with_parameters(
        _raytune_trainable,
        workload=workload,
        workload_args=workload_args,
        function=function,
        max_epochs=max_epochs,
        seed=seed,
        metric=metric,
    )
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
    args = parse_args(argv)
    if args.from_json is not None:
        return rerender(Path(args.from_json), args.json)
    total_start = time.perf_counter()
    warnings.filterwarnings("ignore", category=UserWarning)  # vmap/attention performance notes of CPU packs
    setups = _setups(args)
    budgets = sorted(set(args.budgets))
    seeds = list(range(args.seeds))
    retrain_seeds = [RETRAIN_SEED_BASE + k for k in range(args.retrain_seeds)]
    contenders = [c for c in CONTENDERS if c in args.contenders]

    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, ray {info.get('ray')}, optuna {info.get('optuna')}",
        flush=True,
    )
    print(
        f"workloads {', '.join(s.name for s in setups)}; budgets {budgets}; seeds {seeds}; re-train seeds {retrain_seeds}; "
        f"contenders {', '.join(contenders)}",
        flush=True,
    )

    bench = Bench(args, setups)
    results: dict[str, Any] = {
        "machine": info,
        "settings": {
            "workloads": {s.name: asdict(s) for s in setups},
            "budgets": budgets,
            "seeds": seeds,
            "retrain_seeds": retrain_seeds,
            "contenders": contenders,
        },
        "notes": list(NOTES),
        "runs": [],
        "tables": [],
    }
    try:
        bench.open(contenders)
        caches: dict[str, RetrainCache] = {}
        runs: list[SearchRun] = []
        for setup in setups:
            cache = caches[setup.name] = RetrainCache(retrain_seeds, setup.mode)
            plan = plan_runs(contenders, budgets, seeds, can_pack=setup.can_pack, function=setup.function)
            left_out = [c for c in contenders if c in NEEDS_PACKING and not setup.can_pack]
            if setup.function and any(c in NEEDS_WORKLOAD_CLASS for c in contenders):
                print(
                    f"[{setup.name}] {', '.join(sorted(NEEDS_WORKLOAD_CLASS & set(contenders)))} left out: "
                    "a train(trial) function has no lr range test (it is adamtune there)",
                    flush=True,
                )
            if left_out:
                print(
                    f"[{setup.name}] {', '.join(left_out)} left out: the workload cannot pack "
                    f"({'a train(trial) function' if setup.function else 'its can_pack is False'})",
                    flush=True,
                )
            for i, (seed, contender, budget) in enumerate(plan, 1):
                run = _search(bench, contender, setup, seed, budget)
                runs.append(run)
                epochs = sum(t.epochs for t in run.trials)
                print(
                    f"[{setup.name} {i}/{len(plan)}] seed {seed} {contender}"
                    f"{f' B={budget}' if run.fixed is None else ''}: {run.wall_s:.1f} s, {epochs} trial-epochs "
                    f"({time.perf_counter() - total_start:.0f} s so far)",
                    flush=True,
                )
            picks = [
                run.view(b, setup.mode)[0]
                for run in runs
                if run.workload == setup.name
                for b in budgets
                if run.contender not in PER_BUDGET or b == run.budget
            ]
            start = time.perf_counter()
            n = bench.retrain(setup, cache, [p for p in picks if p is not None])
            print(
                f"[{setup.name}] re-trained {n} distinct picked configs x {len(retrain_seeds)} seeds in "
                f"{time.perf_counter() - start:.1f} s ({time.perf_counter() - total_start:.0f} s so far)",
                flush=True,
            )
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


def rerender(path: Path, out: str | None) -> int:
    """Print the tables of a results file written by ``--json`` again, with the verdicts
    (:func:`verdicts`) computed from its scores (a file from before they existed gains them); with
    ``out``, write the results with them there."""
    results = json.loads(path.read_text())
    settings = results["settings"]
    setups = {name: WorkloadSetup(**fields) for name, fields in settings["workloads"].items()}
    info = results["machine"]
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} (from {path})")
    for table in results["tables"]:
        setup = setups[table["workload"]]
        table["verdicts"] = verdicts({row["contender"]: row for row in table["rows"]}, setup.mode)
        _print_table(table, setup, table["budget"], len(settings["retrain_seeds"]), max(settings["budgets"]))
    if out:
        Path(out).write_text(json.dumps(_finite(results), indent=2))
        print(f"wrote {out}")
    return 0


def _setups(args: argparse.Namespace) -> list[WorkloadSetup]:
    """The workloads to run, resolved (:func:`resolve_workload`): ``--workload`` (relative to
    the current folder) and the bundled ``--workloads`` (relative to the repository)."""
    chosen: list[tuple[WorkloadSetup, Path | None]] = []
    if args.workload is not None:
        chosen.append(
            (
                WorkloadSetup(
                    args.workload,
                    args.workload,
                    args.workload_args,
                    args.metric,
                    args.mode,
                    args.max_epochs or DEFAULT_MAX_EPOCHS,
                ),
                None,
            )
        )
    for name in args.workloads:
        setup = WORKLOADS[name]
        if args.max_epochs is not None:
            setup = replace(setup, max_epochs=args.max_epochs)
        chosen.append((setup, REPO))
    names = [setup.name for setup, _ in chosen]
    if len(set(names)) < len(names):
        raise SystemExit(f"tuning_quality.py: a workload is named twice: {names}")
    out = []
    for setup, base_dir in chosen:
        try:
            out.append(resolve_workload(setup, base_dir=base_dir))
        except ValueError as e:
            raise SystemExit(f"tuning_quality.py: {setup.name}: {e}") from None
    return out


def plan_runs(
    contenders: Sequence[str],
    budgets: Sequence[int],
    seeds: Sequence[int],
    *,
    can_pack: bool = True,
    function: bool = False,
) -> list[tuple[int, str, int]]:
    """(seed, contender, budget) of every search, seed by seed (contenders interleaved against
    drift): :data:`PER_BUDGET` contenders once per budget, the others once at the largest
    (prefixes score the smaller ones; no-search and algoperf-5 ignore the budget);
    :data:`NEEDS_PACKING` contenders only where the workload packs, :data:`NEEDS_WORKLOAD_CLASS`
    ones only for a Workload class (not a ``function``)."""
    plan = []
    for seed in seeds:
        for contender in contenders:
            if (contender in NEEDS_PACKING and not can_pack) or (contender in NEEDS_WORKLOAD_CLASS and function):
                continue
            if contender in PER_BUDGET:
                plan += [(seed, contender, b) for b in budgets]
            else:
                plan.append((seed, contender, max(budgets)))
    return plan


def _search(bench: Bench, contender: str, setup: WorkloadSetup, seed: int, budget: int) -> SearchRun:
    if contender == "torch-default":
        from workers.config import AdamConfig

        return SearchRun(contender, setup.name, seed, 0, [], 0.0, fixed=AdamConfig().to_config())
    if contender == "algoperf-self-tuning":
        return SearchRun(contender, setup.name, seed, 0, [], 0.0, fixed=dict(SELF_TUNING))
    if contender == "random":
        return bench.run_random(setup, seed, budget)
    if contender == "algoperf-5":
        return bench.run_algoperf(setup, seed)
    if contender == "raytune-optuna-asha":
        return bench.run_raytune(setup, seed, budget)
    return bench.run_adamtune(contender, setup, seed, budget)


def runs_for(runs: Sequence[SearchRun], contender: str, workload: str, budget: int) -> dict[int, SearchRun]:
    """Per seed, the run that scores ``contender`` at ``budget``."""
    out = {}
    for run in runs:
        if run.contender == contender and run.workload == workload:
            if contender in PER_BUDGET and run.budget != budget:
                continue
            out[run.seed] = run
    return out


def _table(
    setup: WorkloadSetup,
    budget: int,
    contenders: Sequence[str],
    seeds: Sequence[int],
    runs: Sequence[SearchRun],
    cache: RetrainCache,
) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    scores: dict[str, list[float]] = {}
    for contender in contenders:
        by_seed = runs_for(runs, contender, setup.name, budget)
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
        reference = runs_for(runs, REFERENCE, setup.name, budget)
        for peer, row in rows.items():
            if peer == REFERENCE:
                continue
            reach = [
                epochs_to_reach(prefix(reference[s].trials, budget), row["median_score"], setup.mode) for s in seeds
            ]
            ratios.append(
                {
                    "peer": peer,
                    "peer_median_score": row["median_score"],
                    "peer_trial_epochs": row["trial_epochs"],
                    "reach_per_seed": reach,
                    "reach_median": median_or_none(reach),
                    "ratio": reach_ratio(reach, row["trial_epochs"]),
                }
            )
    return {
        "workload": setup.name,
        "metric": setup.metric,
        "mode": setup.mode,
        "max_epochs": setup.max_epochs,
        "budget": budget,
        "rows": list(rows.values()),
        "verdicts": verdicts(rows, setup.mode),
        "ratios": ratios,
    }


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "diverged" if value > 0 else "-inf"
    return format(value, spec)


def _print_table(table: dict[str, Any], setup: WorkloadSetup, budget: int, n_retrain: int, largest: int) -> None:
    where = "" if _short_ref(setup.ref) == setup.name else f" ({_short_ref(setup.ref)})"
    print(
        f"\n### {setup.name}{where}, budget {budget} trials ({setup.metric}, {setup.mode}, {setup.max_epochs} epochs per trial)\n"
    )
    print(
        f"| contender | median re-trained {setup.metric} | median rank | trial-epochs (median) | wall time (median, s) |"
    )
    print("|---|---:|---:|---:|---:|")
    for row in sorted(table["rows"], key=lambda r: (r["median_rank"], r["contender"])):
        print(
            f"| {row['contender']} | {_fmt(row['median_score'], '.4f')} | {row['median_rank']:.1f} | "
            f"{row['trial_epochs']:.0f} | {row['wall_s']:.1f} |"
        )
    print(
        f"\nScore: the picked config re-trained with {n_retrain} fresh seeds, mean; median over search seeds. "
        f"random and algoperf-5 trained in-process (no Ray); "
        f"{f'first {budget} trials of a {largest}-trial run' if budget < largest else 'full run'} for random and raytune "
        f"(for ASHA a prefix is an approximation); adamtune and adamtune-packed ran with {budget} trials; "
        f"algoperf-5 always 5 trials."
    )
    if table.get("verdicts"):
        print(
            f"\n{REFERENCE} against each peer: its median minus the peer's, a tie when within the seeds' spread "
            "(twice the standard error of the difference of the two medians, from each one's interquartile "
            "range over the search seeds); then on how many search seeds its score was better / worse\n"
        )
        for v in table["verdicts"]:
            delta = "n/a" if v["delta"] is None else f"{v['delta']:+.4f}"
            band = "" if v["band"] is None else f" (spread ±{v['band']:.4f})"
            print(
                f"- {v['peer']}: **{v['verdict']}**, {delta}{band}; seeds {v['seeds_better']} better / "
                f"{v['seeds_worse']} worse of {v['seeds']}"
            )
    if table["ratios"]:
        print(
            f"\nadamtune (standard) trial-epochs to reach each peer's median re-trained {setup.metric}, within {budget} trials:\n"
        )
        print(
            "| peer | peer's median | peer's trial-epochs | adamtune's trial-epochs to reach (median) | seeds reached | ratio |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for r in table["ratios"]:
            reached = sum(x is not None for x in r["reach_per_seed"])
            ratio = (
                "not reached"
                if r["ratio"] is None
                else ("peer spends 0" if math.isinf(r["ratio"]) else f"{r['ratio']:.2f}")
            )
            reach = "not reached" if r["reach_median"] is None else f"{r['reach_median']:.0f}"
            print(
                f"| {r['peer']} | {_fmt(r['peer_median_score'], '.4f')} | {r['peer_trial_epochs']:.0f} | {reach} | "
                f"{reached}/{len(r['reach_per_seed'])} | {ratio} |"
            )
        print(
            "\nratio = median over seeds of the cumulative trial-epochs (adamtune's trials in trial-number order) at which "
            "its best-so-far search-time value (completed trials) first reaches the peer's median re-trained metric "
            "(never: infinite), divided by the peer's median trial-epochs in search; < 1: adamtune needed fewer. "
            "Search-time values are single-seed bests, so they reach a target more easily than re-trained means."
        )


def _short_ref(ref: str) -> str:
    """A resolved ref as printed: a file path relative to the current folder or the repository when under one."""
    location, sep, attr = ref.rpartition(":")
    if not location.endswith(".py"):
        return ref
    for base in (Path.cwd(), REPO):
        with contextlib.suppress(ValueError):
            return f"{Path(location).relative_to(base)}{sep}{attr}"
    return ref


def _run_json(run: SearchRun) -> dict[str, Any]:
    return {
        "contender": run.contender,
        "workload": run.workload,
        "seed": run.seed,
        "budget": run.budget,
        "wall_s": run.wall_s,
        "fixed": run.fixed,
        "trials": [asdict(t) for t in run.trials],
    }


def _finite(value: Any) -> Any:
    """JSON-safe: infinities and NaN become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="digits_mlp + own_model, budgets 8 16, 2 seeds (a few minutes)"
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=list(WORKLOADS),
        default=None,
        help=f"bundled workloads (default: all of {', '.join(WORKLOADS)}; none when --workload is given)",
    )
    parser.add_argument(
        "--workload",
        default=None,
        metavar="REF",
        help="a workload as a spec's workload: takes it: a registered name, package.module:attr or "
        "path/to/file.py:attr (relative to the current folder); a Workload class or train(trial)",
    )
    parser.add_argument(
        "--workload-args",
        type=_json_object,
        default={},
        metavar="JSON",
        help="--workload's workload_args, a JSON object",
    )
    parser.add_argument("--metric", default="val_loss", help="--workload's metric (default val_loss)")
    parser.add_argument("--mode", choices=("min", "max"), default="min", help="--workload's mode (default min)")
    parser.add_argument("--budgets", nargs="+", type=int, default=None, help="trial budgets (default 8 16 32)")
    parser.add_argument("--seeds", type=int, default=None, help="search seeds 0..N-1 (default 5)")
    parser.add_argument(
        "--retrain-seeds", type=int, default=3, help="fresh seeds each picked config is re-trained with"
    )
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help=f"override every workload's max_epochs (--workload's default: {DEFAULT_MAX_EPOCHS})",
    )
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument(
        "--from-json",
        default=None,
        metavar="PATH",
        help="print the tables of a --json results file again (with the verdicts), running nothing",
    )
    parser.add_argument(
        "--home", default=None, help="parent folder of the temporary TUNER_HOME (default: the temp dir)"
    )
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary TUNER_HOME (stores, MLflow runs)")
    args = parser.parse_args(argv)
    quick = {"workloads": ["digits_mlp", "own_model"], "budgets": [8, 16], "seeds": 2}
    full = {"workloads": list(WORKLOADS), "budgets": [8, 16, 32], "seeds": 5}
    if args.workload is not None:
        quick["workloads"] = full["workloads"] = []  # --workload alone unless --workloads adds bundled ones
    elif args.workload_args:
        parser.error("--workload-args needs --workload")
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.budgets) < 1 or args.seeds < 1 or args.retrain_seeds < 1:
        parser.error("budgets, --seeds and --retrain-seeds must be >= 1")
    if args.max_epochs is not None and args.max_epochs < 1:
        parser.error("--max-epochs must be >= 1")
    return args


def _json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"a JSON object is needed, got {type(value).__name__}")
    return value


if __name__ == "__main__":
    sys.exit(main())
