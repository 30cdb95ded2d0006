"""`workers.training.train(diagnostics=True)` adds the optimizer diagnostics to each epoch."""

from __future__ import annotations

import math

from workers.training import train

CONFIG = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
KEYS = {"adam_eps_dominated_frac", "adam_update_rms_ratio", "adam_nonfinite"}


def test_each_epoch_carries_plain_float_diagnostics():
    rows = list(train(CONFIG, workload="digits_mlp", max_epochs=2, diagnostics=True))
    for row in rows:
        assert KEYS <= set(row)
        assert all(type(row[k]) is float and math.isfinite(row[k]) for k in KEYS)
        assert row["adam_nonfinite"] == 0.0 and 0.0 < row["adam_update_rms_ratio"] < 1.0
    assert KEYS.isdisjoint(next(train(CONFIG, workload="digits_mlp", max_epochs=1)))


def test_a_too_large_eps_shows():
    small = next(train(CONFIG, workload="digits_mlp", max_epochs=1, diagnostics=True))
    large = next(train({**CONFIG, "eps": 1.0}, workload="digits_mlp", max_epochs=1, diagnostics=True))
    assert small["adam_eps_dominated_frac"] < 0.5 < large["adam_eps_dominated_frac"]
