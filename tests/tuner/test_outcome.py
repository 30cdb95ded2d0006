"""One rule classifies every finished trial: completed, early-stopped or failed (with a reason)."""

from __future__ import annotations

import math

from tuner.executor import classify


def test_full_run_is_completed() -> None:
    out = classify({"epoch": 8, "val_loss": 0.2}, metric="val_loss", max_epochs=8)
    assert (out.state, out.value, out.epochs, out.reason) == ("completed", 0.2, 8, None)


def test_short_run_was_stopped_by_the_scheduler() -> None:
    out = classify({"epoch": 2, "val_loss": 1.5}, metric="val_loss", max_epochs=8)
    assert out.state == "early-stopped" and out.value == 1.5 and "epoch 2" in out.reason


def test_divergence_error_and_nan_fail_with_a_reason() -> None:
    diverged = classify(
        {"epoch": 3, "val_loss": math.nan, "diverged": True, "reason": "train_loss became nan"},
        metric="val_loss",
        max_epochs=8,
    )
    assert diverged.state == "failed" and diverged.reason == "train_loss became nan" and diverged.value is None
    raised = classify(
        {"epoch": 0, "val_loss": math.nan, "error": "RuntimeError: boom"}, metric="val_loss", max_epochs=8
    )
    assert raised.state == "failed" and raised.reason == "RuntimeError: boom"
    nan = classify({"epoch": 8, "val_loss": math.inf}, metric="val_loss", max_epochs=8)
    assert nan.state == "failed" and "inf" in nan.reason
    worker = classify(None, metric="val_loss", max_epochs=8, error="worker died")
    assert worker.state == "failed" and worker.reason == "worker died"
