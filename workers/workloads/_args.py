"""The bounded ``Args`` models of the bundled workloads: what a spec's ``workload_args`` may hold.

A request's numbers reach a constructor only through these bounds, so no spec asks a
process for an arbitrarily large model or data set; the tuner then checks the model's
size itself (``tuner.workload``). Strict: ``"64"``, ``64.0`` and ``true`` are not ints,
and NaN or infinity are no numbers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MAX_BATCH", "WorkloadArgs"]

#: Largest training mini-batch any bundled workload takes, in samples.
MAX_BATCH = 65_536


class WorkloadArgs(BaseModel):
    """Arguments every bundled workload takes: bfloat16 autocast and gradient clipping."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    bf16: bool = Field(False, description="Train under bfloat16 autocast (see Workload.bf16).")
    grad_clip_norm: float | None = Field(
        None, gt=0, description="Clip each step's gradient norm to this; null: no clipping."
    )
