"""Sweep analysis from the sweep's Optuna study: plots and hyperparameter importance.

:func:`analyze` reads a study and returns an :class:`Analysis`: PNG plots drawn with
Optuna's matplotlib visualizations (optimization history, intermediate values, parallel
coordinates, slices, a contour of ``lr`` × ``one_minus_beta2``, an importance bar chart)
and the importance of each searched hyperparameter by PED-ANOVA and fANOVA. What cannot
be computed (too few trials, a single searched hyperparameter) is skipped with a note,
never raised. :func:`analysis_metrics` and :func:`analysis_files` turn it into what the
sweep's MLflow parent run logs.
"""

from tuner.analysis._analyze import Analysis, analysis_files, analysis_metrics, analyze
from tuner.analysis._plots import PARAM_LABELS, PLOT_TITLES

__all__ = ["Analysis", "PARAM_LABELS", "PLOT_TITLES", "analysis_files", "analysis_metrics", "analyze"]
