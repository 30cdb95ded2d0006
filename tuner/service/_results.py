"""What a sweep's MLflow parent run records once its trials (and re-evaluations) are done."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner.review import analysis_files, analysis_metrics, analyze, compare

if TYPE_CHECKING:
    from tuner.records import SweepSummary
    from tuner.service._stores import Stores

__all__ = ["log_results"]


def log_results(stores: Stores, summary: SweepSummary, parent: str) -> None:
    """Log the sweep's analysis to its parent run: plots and importance (:func:`tuner.review.analyze`),
    the recommended config's values as ``best_<key>`` metrics, and the baseline comparison as
    ``baseline_<metric>`` and ``change_vs_baseline_percent``."""
    analysis = analyze(stores.studies.storage, summary.name)
    metrics = analysis_metrics(analysis)
    picked = summary.pick()
    if picked:
        config = picked[0].config
        metrics.update({f"best_{k}": v for k, v in config.items() if isinstance(v, float)})
        stats = summary.seed_stats(picked[0].number)
        if stats is not None:
            metric = summary.spec["metric"]
            metrics.update({f"reevaluated_{metric}_mean": stats.mean, f"reevaluated_{metric}_std": stats.std})
    comparison = compare(summary, picked[0] if picked else None)
    if comparison is not None:
        metrics[f"baseline_{comparison.metric}"] = comparison.baseline
        metrics["change_vs_baseline_percent"] = comparison.change * 100
    stores.tracker.log_sweep_results(parent, metrics=metrics, files=analysis_files(analysis))
