"""Reviewing a sweep: what it found, against what, and in which form to take it away.

- :func:`analyze` reads a sweep's study and returns an :class:`Analysis`: PNG plots drawn with
  Optuna's matplotlib visualizations and the importance of each searched hyperparameter
  (fANOVA), over every trial that trained; what cannot be computed is skipped with a note, never raised.
  :func:`analysis_metrics` and :func:`analysis_files` turn it into what the sweep's MLflow
  parent run logs; :func:`warm_analysis` pays its one-time imports ahead (beside the trials).
- :func:`compare`: the recommended trial against the baseline, torch's default Adam
  (:mod:`tuner.baseline`), as a :class:`Comparison`.
- :func:`config_card` and :func:`render`: the best configs as JSON, YAML or Python
  (``tuner export``); :func:`adam_card`: the Adam config card with its context;
  :func:`sqrt_scaling` moves a config to another batch size.
- :func:`render_report`: the self-contained HTML report page (``tuner report``).

Everything here reads the frozen records (:mod:`tuner.records`) or the study; nothing
writes a store. matplotlib, Optuna and Jinja2 load on first use.
"""

from tuner.review._analysis import Analysis, analysis_files, analysis_metrics, analyze, warm_analysis
from tuner.review._card import adam_card, sqrt_scaling
from tuner.review._compare import Comparison, compare
from tuner.review._export import ExportFormat, config_card, render
from tuner.review._plots import PARAM_LABELS, PLOT_TITLES
from tuner.review._report import render_report

__all__ = [
    "Analysis",
    "Comparison",
    "ExportFormat",
    "PARAM_LABELS",
    "PLOT_TITLES",
    "adam_card",
    "analysis_files",
    "analysis_metrics",
    "analyze",
    "compare",
    "config_card",
    "render",
    "render_report",
    "sqrt_scaling",
    "warm_analysis",
]
