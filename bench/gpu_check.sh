#!/usr/bin/env bash
# GPU readiness check: run on a CUDA machine before trusting adamtune's GPU path.
#
#   bench/gpu_check.sh            (from anywhere; PYTHON=/path/to/python to pick the interpreter,
#                                  default .venv/bin/python, else python3)
#
# In under 10 minutes (each step has a time limit; they add up to 9.5 min):
#   1. tests   tests/optim on the GPU (ADAMTUNE_TEST_DEVICE=cuda): FusedAdam/PackedAdam parity
#              with torch.optim.Adam and the Triton kernels ("cuda-triton" cases), compiled for
#              the GPU (TRITON_INTERPRET unset); and the packing tests of real models (their
#              CUDA case: a char_lm pack on the GPU);
#   2. bench   bench/adam_step.py --device cuda: GB/s of each backend as a fraction of a
#              copy_ of the same bytes on this GPU, measured in the same run;
#   3. packed  bench/packed_parity.py --device cuda: 8 configs trained as one pack and one by
#              one on the GPU, digits_mlp (packed) and a 2-block char_lm transformer (packed-lm,
#              vmap + attention); the median config within 1e-3 of its alone curve;
#   4. sweep   examples/digits-packed.yaml, 8 trials x 2 epochs, resources_per_trial.gpu=1,
#              on a fresh local Ray and throwaway stores (a temp TUNER_HOME). SKIP, said in
#              the summary, where the control plane (ray, optuna, mlflow) is not installed,
#              as on a bare GPU node that only has the workers' needs.
# Then a summary; exit 0 only if every step that ran passed. Exit 2, before running anything, where
# there is no NVIDIA GPU, no CUDA build of torch or no Triton.
#
# After a pass, the Triton kernel may become FusedAdam's backend="auto" on CUDA: see
# TRITON_VERIFIED_ON_GPU in workers/optim/_backends.py (flip it only if the bench shows
# triton at least as fast as torch_fused) and put the figures in docs/cluster.md ("GPU readiness").
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || PY=$(command -v python3 || true)

refuse() {
  echo "gpu_check: $1" >&2
  echo "gpu_check: nothing was run (exit 2)" >&2
  exit 2
}

# ---- preflight: refuse (exit 2) where the check cannot mean anything ----------------------
command -v nvidia-smi >/dev/null 2>&1 \
  || refuse "no NVIDIA GPU here: nvidia-smi is not installed"
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1) \
  || refuse "no NVIDIA GPU here: nvidia-smi fails ($(nvidia-smi 2>&1 | head -n 1))"
[[ -n $GPU ]] || refuse "no NVIDIA GPU here: nvidia-smi lists none"
[[ -n $PY ]] || refuse "no python: set PYTHON or run make install"
TORCH=$("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda or "no-cuda", torch.cuda.is_available())' 2>/dev/null) \
  || refuse "$PY cannot import torch (run make install)"
read -r TORCH_VERSION TORCH_CUDA CUDA_OK <<<"$TORCH"
[[ $CUDA_OK == True ]] \
  || refuse "torch $TORCH_VERSION (CUDA: $TORCH_CUDA) sees no CUDA device; install a CUDA build: make install TORCH=\"torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128\""
TRITON=$("$PY" -c 'import triton; print(triton.__version__)' 2>/dev/null) \
  || refuse "Triton is not installed: pip install -e '.[triton]'"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/adamtune-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
unset TRITON_INTERPRET  # the kernels must be compiled for the GPU, not interpreted
START=$SECONDS
STEPS=() RESULTS=() FAILED=0

# step NAME LIMIT_S COMMAND...: run it under a time limit, log to $WORK/NAME.log, record the outcome.
step() {
  local name=$1 limit=$2 rc=0 began=$SECONDS
  shift 2
  echo
  echo "==== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$WORK/$name.log" || rc=$?
  local took=$((SECONDS - began)) outcome=PASS
  if ((rc == 124 || rc == 137)); then
    outcome="FAIL (over ${limit}s)"
  elif ((rc != 0)); then
    outcome="FAIL (exit $rc)"
  fi
  [[ $outcome == PASS ]] || FAILED=1
  STEPS+=("$name") RESULTS+=("$(printf '%-22s %4ss' "$outcome" "$took")")
}

echo "gpu_check: $GPU; torch $TORCH_VERSION (CUDA $TORCH_CUDA); triton $TRITON; python $PY"

# 1. the optimizer tests on the GPU (the backend cases on cuda only; CPU-only tests run too)
step tests 240 env ADAMTUNE_TEST_DEVICE=cuda "$PY" -m pytest tests/optim tests/workers/test_packing_real_models.py \
  -q -rs -p no:cacheprovider \
  --junitxml="$WORK/optim.xml"
TESTS_LINE=$("$PY" - "$WORK/optim.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET

try:
    cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
except (OSError, ET.ParseError):
    print("no test report"); sys.exit(1)
counts = {}
for case in cases:
    name = case.get("name", "")
    kind = next((k for k in ("cuda-triton", "cuda-torch_fused", "cuda-reference") if k in name), "other")
    state = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
    counts.setdefault(kind, {}).setdefault(state, 0)
    counts[kind][state] += 1
print("; ".join(f"{k}: " + ", ".join(f"{n} {s}" for s, n in sorted(v.items()))
                for k, v in sorted(counts.items())))
# the GPU cases must all have run: a skipped or missing cuda-triton case is no verification
cuda = {k: v for k, v in counts.items() if k != "other"}
sys.exit(0 if "cuda-triton" in cuda and all(set(v) == {"passed"} for v in cuda.values()) else 1)
EOF
) || { FAILED=1; TESTS_LINE="$TESTS_LINE  <- not every cuda case passed"; }

# 2. the Adam step on the GPU against its copy bandwidth
step bench 120 "$PY" bench/adam_step.py --device cuda

# 3. packed training against each trial alone, on the GPU (no Ray needed)
step packed 120 "$PY" bench/packed_parity.py --device cuda --epochs 8
step packed-lm 150 "$PY" bench/packed_parity.py --device cuda --epochs 3 --metric val_bpc \
  --workload workers.workloads.char_lm:CharLM \
  --workload-args '{"n_layer": 2, "d_model": 64, "n_head": 4, "context": 64, "steps_per_epoch": 50, "max_chars": 1000000}'

# 4. a small packed sweep on the GPU, on its own local Ray and throwaway stores
if ! "$PY" -c 'import ray, optuna, mlflow' >/dev/null 2>&1; then
  STEPS+=(sweep) RESULTS+=("SKIP (no ray/optuna/mlflow for $PY: pip install -e .)")
else
"$PY" - examples/digits-packed.yaml "$WORK/digits-packed-gpu.yaml" <<'EOF'
import sys

import yaml

spec = yaml.safe_load(open(sys.argv[1]))
spec.update(name="gpu-check-packed", resources_per_trial={"cpu": 1, "gpu": 1})
with open(sys.argv[2], "w") as f:
    yaml.safe_dump(spec, f, sort_keys=False)
EOF
TUNER=$(dirname "$PY")/tuner
[[ -x $TUNER ]] || TUNER=tuner
step sweep 210 env -u TUNER_RAY_ADDRESS RAY_ADDRESS=local TUNER_HOME="$WORK/tuner-home" \
  "$TUNER" sweep run "$WORK/digits-packed-gpu.yaml" --n-trials 8 --max-epochs 2
SWEEP_LINE=$(grep -E '^sweep gpu-check-packed: .*failed\)' "$WORK/sweep.log" | tail -n 1 || true)
if [[ -n $SWEEP_LINE && $SWEEP_LINE != *" 0 failed)"* ]]; then
  FAILED=1 SWEEP_LINE="$SWEEP_LINE  <- trials failed"
fi
fi

# ---- summary ---------------------------------------------------------------------------
echo
echo "==== gpu_check summary ($((SECONDS - START))s): $GPU; torch $TORCH_VERSION; triton $TRITON"
for i in "${!STEPS[@]}"; do
  printf '  %-9s %s\n' "${STEPS[$i]}" "${RESULTS[$i]}"
done
echo "  tests: ${TESTS_LINE:-no test report}"
echo "  sweep: ${SWEEP_LINE:-no summary line}"
for name in packed packed-lm; do
  grep -E '^(  wall|packed_parity: (passed|FAILED))' "$WORK/$name.log" | sed "s/^/  $name: /" || echo "  $name: no output"
done
echo "  bench (GB/s at 28 B/param; 'of copy' = fraction of copy_ of the same bytes):"
grep -E '^(roofline|[0-9]|  )' "$WORK/bench.log" | sed 's/^/    /' || echo "    no bench output"
if ((FAILED)); then
  echo "gpu_check: FAILED (logs above)"
  exit 1
fi
echo "gpu_check: passed. backend='auto' on CUDA stays torch_fused until TRITON_VERIFIED_ON_GPU"
echo "  (workers/optim/_backends.py) is flipped: do so only if 'FusedAdam triton' and"
echo "  'PackedAdam K=8 triton' above are at least as fast as torch_fused (auto)."
