"""The Triton kernels' arithmetic, checked on CPU by Triton's interpreter.

``TRITON_INTERPRET=1`` must be set before the kernels are defined (when
`workers.optim._triton_adam` is first imported), so the parity suite's "cpu-triton"
cases run in a child pytest started with it; there `available_backends("cpu")` lists
"triton". The interpreter runs each program in numpy (~1 ms), so the child runs a
selection that covers every configuration of the issue on the small harness shapes,
`adam_cases.INTERPRETER_STEPS` steps each (40, where the compiled backends take 120-200), one
child per test module. Run everything with ``TRITON_INTERPRET=1 pytest tests/optim -k triton``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from adam_cases import DEVICE_ENV, devices_under_test

HERE = Path(__file__).parent
MODULES = [
    "test_fused_adam_parity.py",
    "test_packed_adam_parity.py",
    "test_mixed_precision.py",
    "test_nadam_adamax_parity.py",
    "test_triton_launch.py",
]
SELECTION = (
    "cpu-triton and ("
    "test_matches_torch_adam and noncontig"  # FusedAdam, every config
    " or test_rows_match and noncontig and (maximize or amsgrad or decoupled)"  # K-trial kernel
    " or frozen"  # active mask, frozen from step 0
    " or test_params_without_grad_are_skipped and weight_decay+amsgrad and not adamw"
    " or test_packed_adam_bf16 or mixed_dtypes"  # bf16 rounding, float64 params
    # NAdam / AdaMax (test_nadam_adamax_parity.py): single and K-trial kernels, every config
    " or test_fused_matches_torch and noncontig"
    " or test_packed_rows_match_separate_torch_optimizers and noncontig"
    " or test_params_without_grad_are_skipped and (nadam or adamax)"
    " or test_checkpoint_round_trip and (nadam or adamax)"
    " or test_a_row_looped_over_few_programs)"  # launch shapes: rows looped over few programs
)


@pytest.mark.slow  # ~70 s in all here
@pytest.mark.parametrize("module", MODULES)  # one child each
def test_parity_suite_under_the_triton_interpreter(module: str) -> None:
    pytest.importorskip("triton", reason="Triton is the optional extra: pip install -e '.[triton]'")
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("this session already interprets Triton: its cpu-triton cases ran directly")
    if "cpu" not in devices_under_test():
        pytest.skip(f"{DEVICE_ENV}={os.environ[DEVICE_ENV]}: the interpreter's CPU cases are not under test")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        SELECTION,
        str(HERE / module),
    ]
    env = {**os.environ, "TRITON_INTERPRET": "1", DEVICE_ENV: "cpu"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary, summary
