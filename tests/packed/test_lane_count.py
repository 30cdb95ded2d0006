"""How many packs run at once."""

from __future__ import annotations

import pytest

from tuner.executor import lane_count
from tuner.spec import parse_spec


def spec(**fields):
    return parse_spec({"name": "s", "workload": "digits_mlp", "search_space": "adam", "execution": "packed", **fields})


@pytest.mark.parametrize(
    ("fields", "n_trials", "available", "driver_cpus", "expected"),
    [
        ({"pack_size": 16}, 32, {"CPU": 2.0}, 1.0, 1),  # the driver keeps a CPU
        ({"pack_size": 16}, 32, {"CPU": 2.0}, 0.0, 2),
        ({"pack_size": 4}, 32, {"CPU": 16.0}, 1.0, 8),  # no more packs than trials fill
        ({"pack_size": 4}, 100, {"CPU": 16.0}, 1.0, 15),
        ({"pack_size": 4, "resources_per_trial": {"cpu": 2}}, 100, {"CPU": 16.0}, 0.0, 8),
        ({"pack_size": 4, "resources_per_trial": {"cpu": 1, "gpu": 0.5}}, 100, {"CPU": 16.0, "GPU": 1.0}, 1.0, 2),
        ({"pack_size": 4}, 100, {"CPU": 1.0}, 1.0, 1),  # always at least one
    ],
)
def test_lane_count(fields: dict, n_trials: int, available: dict, driver_cpus: float, expected: int) -> None:
    assert lane_count(spec(**fields), n_trials, available, driver_cpus=driver_cpus) == expected
