"""The curated public API of the control plane is pinned; every name resolves."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "tuner": {
        "Choice",
        "Dimension",
        "SearchSpace",
        "Settings",
        "SpecError",
        "StoreError",
        "SweepExistsError",
        "SweepInterruptedError",
        "SweepFailedError",
        "SweepNotFoundError",
        "SweepService",
        "SweepSpec",
        "SweepStateError",
        "SweepStatus",
        "SweepSummary",
        "TrackingError",
        "TrialRecord",
        "TunerError",
        "UserInputError",
        "load_spec",
        "parse_spec",
        "SweepResult",
        "sweep",
    },
    "tuner.api": {"MAX_BODY_BYTES", "create_app"},
    "tuner.executor": {
        "Asked",
        "Cancel",
        "Observers",
        "Rerun",
        "StudyScheduler",
        "StudySearcher",
        "SweepObserver",
        "SweepStudy",
        "check_admission",
        "classify",
        "connect",
        "disconnect",
        "execute",
        "lane_count",
        "lr_range",
        "lr_range_here",
        "range_test_kwargs",
        "rerun",
        "run_standard",
        "start_local_ray",
        "trial_kwargs",
    },
    "tuner.records": {"MlflowIds", "Outcome", "SeedStats", "SweepStatus", "SweepSummary", "TrialRecord", "TrialState"},
    "tuner.review": {
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
    },
    "tuner.service": {
        "Executor",
        "PhaseCallback",
        "ProgressFactory",
        "QueueRunner",
        "Reevaluation",
        "ReevaluationCallback",
        "ResultCallback",
        "Stores",
        "SweepQueries",
        "SweepQueue",
        "SweepRunner",
        "SweepService",
    },
    "tuner.store": {"SweepStore", "Sweep", "SweepState", "TERMINAL_STATES"},
    "tuner.tracking": {"Tracker", "TrackingWriter", "TrialEvents", "WriterTracker"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert getattr(mod, name) is not None


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ({}, {"RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}),
        ({"RAY_USAGE_STATS_ENABLED": "1"}, {"RAY_USAGE_STATS_ENABLED": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}),
    ],
)
def test_importing_tuner_turns_vendor_telemetry_off_unless_set(
    preset: dict[str, str], expected: dict[str, str]
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_USAGE_STATS_ENABLED", "MLFLOW_DISABLE_TELEMETRY")}
    code = "import os, tuner; print(os.environ['RAY_USAGE_STATS_ENABLED'], os.environ['MLFLOW_DISABLE_TELEMETRY'])"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, **preset}, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [expected["RAY_USAGE_STATS_ENABLED"], expected["MLFLOW_DISABLE_TELEMETRY"]]
