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


def test_each_target_line_names_the_exit_it_asks_for_and_its_floors() -> None:
    exits = {
        wp.RAY_TUNE: 12.0,
        wp.FLOOR_TUNE: 10.0,
        wp.FLOOR_ACTOR: 8.0,
        "adamtune, standard": 12.0,
        "adamtune, packed K=16": 10.0,
    }
    standard, packed = wp.target_lines(exits, 12.0, function=False)
    assert standard.startswith("target adamtune, standard: >= 1.5x, an exit by 8.0 s; it exits at 12.0 s (1.00x)")
    assert standard.endswith(f"its floor ({wp.FLOOR_TUNE}) at 10.0 s (1.20x)")
    assert packed.startswith("target adamtune, packed K=16: >= 2.5x, an exit by 4.8 s")
    assert packed.endswith(f"its floor ({wp.FLOOR_ACTOR}) at 8.0 s (1.50x)")
    (function,) = wp.target_lines(
        {wp.RAY_TUNE: 12.0, wp.FLOOR_TUNE: 10.0, "adamtune, standard": 13.0}, 12.0, function=True
    )
    assert function.startswith("target adamtune, standard: >= 1.0x, an exit by 12.0 s; it exits at 13.0 s (0.92x)")
