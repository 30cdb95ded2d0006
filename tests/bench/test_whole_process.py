"""bench/whole_process.py finds each contender's result line in what it prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "whole_process.py"
spec = importlib.util.spec_from_file_location("bench_whole_process", SCRIPT)
wp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wp)


def test_the_result_line_is_adamtunes_best_config_or_the_scripts_best_value() -> None:
    assert wp.is_result("best config: trial 7, val_loss 0.090575\n")
    assert wp.is_result('best val_loss 0.097957: {"lr": 0.0056, "beta1": 0.82}\n')
    assert not wp.is_result("16/16 trials finished; best val_loss 0.098308 (trial 7)  [0:13]\n")
    assert not wp.is_result("[3/16] trial 2: completed after 8 epochs, val_loss=0.1019  [0:11]\n")
