#!/usr/bin/env bash
# GPU readiness check: run on a CUDA machine before trusting adamtune's GPU path.
#
#   bench/gpu_check.sh            (from anywhere; PYTHON=/path/to/python to pick the interpreter,
#                                  default .venv/bin/python, else python3)
#   bench/gpu_check.sh --only gpu-sweeps     run only the named steps (a comma list of: tests, bench,
#                                  tune, packed, sweep, gpu-sweeps; packed covers packed and packed-lm)
#   bench/gpu_check.sh --dry-run  print what would run (the bundle, the sweeps' specs) and exit:
#                                  needs no GPU
#
# The control plane comes from the device bundle where the machine has none: with
# .bundle/adamtune-site-cp312.tar.xz present (bench/device_bundle.sh; ADAMTUNE_BUNDLE=PATH for
# another), it is unpacked into /tmp/site (ADAMTUNE_SITE) and put on PYTHONPATH first, and
# `bench/device_bundle.py check` reports any requirement of it the image does not meet.
#
# Within 9 minutes (GPU_CHECK_DEADLINE seconds, default 540: each step's time limit is cut to what
# is left, and a step with under 30 s left is skipped, said in the summary):
#   1. tests   tests/optim on the GPU (ADAMTUNE_TEST_DEVICE=cuda): FusedAdam/PackedAdam parity
#              with torch.optim.Adam and the Triton kernels ("cuda-triton" cases), compiled for
#              the GPU (TRITON_INTERPRET unset); and the packing tests of real models (their
#              CUDA case: a char_lm pack on the GPU);
#   2. bench   bench/adam_step.py --device cuda: GB/s of each backend as a fraction of a
#              copy_ of the same bytes on this GPU, measured in the same run (wall time per
#              step: the host's launch overhead included);
#      tune    bench/triton_tune.py: the Triton kernel's launch configs (block size, warps,
#              persistent grids) in device time (torch.profiler) against torch's fused kernel
#              and the copy, each config checked against torch's fused kernel first;
#   3. packed  bench/packed_parity.py --device cuda: 8 configs trained as one pack and one by
#              one on the GPU, digits_mlp (packed) and a 2-block char_lm transformer (packed-lm,
#              vmap + attention); the median config within 1e-3 of its alone curve;
#   4. sweep   examples/digits-packed.yaml, 8 trials x 2 epochs, resources_per_trial.gpu=1,
#              on a fresh local Ray and throwaway stores (a temp TUNER_HOME). SKIP, said in
#              the summary, where the control plane (ray, optuna, mlflow) is not installed
#              and no bundle was given, as on a bare GPU node that only has the workers' needs;
#   5. gpu-sweeps  bench/gpu_sweeps.py: the char_lm GPU preset (10.8 M params, bf16), 16 trials x
#              2 epochs, swept four ways: gpu-1 (resources_per_trial {gpu: 1}), gpu-0.25 (four
#              trials share the GPU), packed-8 and packed-16 (execution: packed); each prints
#              trials per hour, GPU utilisation and peak GPU memory (nvidia-smi, every 500 ms).
#              SKIP like step 4.
# Then a summary; exit 0 only if every step that ran passed. Exit 2, before running anything, where
# there is no NVIDIA GPU, no CUDA build of torch or no Triton.
#
# What backend="auto" takes on CUDA (Triton for PackedAdam, torch_fused for FusedAdam) and the
# figures behind it: TRITON_VERIFIED_ON_GPU in workers/optim/_backends.py and docs/cluster.md
# ("GPU readiness"); re-check both after changing the kernel.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || PY=$(command -v python3 || true)
BUNDLE=${ADAMTUNE_BUNDLE:-.bundle/adamtune-site-cp312.tar.xz}
SITE=${ADAMTUNE_SITE:-/tmp/site}
DEADLINE=${GPU_CHECK_DEADLINE:-540}
ALL_STEPS=tests,bench,tune,packed,sweep,gpu-sweeps
ONLY=$ALL_STEPS DRY_RUN=0
while (($#)); do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --only) ONLY=${2:?--only takes a comma list of: $ALL_STEPS}; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (--only STEPS, --dry-run, --help)" >&2; exit 2 ;;
  esac
  shift
done
for name in ${ONLY//,/ }; do
  [[ ,$ALL_STEPS, == *,$name,* ]] || { echo "gpu_check: --only: no step $name (steps: $ALL_STEPS)" >&2; exit 2; }
done
wants() { [[ ,$ONLY, == *,$1,* ]]; }

if ((DRY_RUN)); then
  echo "gpu_check --dry-run: steps $ONLY; deadline ${DEADLINE}s; python ${PY:-none}"
  if [[ -f $BUNDLE ]]; then
    echo "bundle: $BUNDLE ($(du -m "$BUNDLE" | cut -f1) MiB) -> tar xJf into $SITE, PYTHONPATH=$SITE"
  else
    echo "bundle: none at $BUNDLE (bash bench/device_bundle.sh builds it); the sweeps need ray, optuna, mlflow for $PY"
  fi
  if wants gpu-sweeps; then
    DRY=$(mktemp -d "${TMPDIR:-/tmp}/adamtune-gpu-check-dry.XXXXXX")
    "$PY" bench/gpu_sweeps.py specs "$DRY" --print
    rm -rf "$DRY"
  fi
  exit 0
fi

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

# The device bundle: the control plane (Ray, Optuna, MLflow, SQLAlchemy, ...) for an image without it.
BUNDLE_LINE="none (${BUNDLE} not found)"
if [[ -f $BUNDLE ]]; then
  mkdir -p "$SITE"
  tar xJf "$BUNDLE" -C "$SITE" || refuse "cannot unpack $BUNDLE into $SITE"
  # the working tree first: the bundle carries a copy of tuner/ and workers/ that may be older
  export PYTHONPATH=$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}
  BUNDLE_LINE="$BUNDLE unpacked into $SITE in $((SECONDS - START))s; "
  BUNDLE_LINE+=$("$PY" bench/device_bundle.py check "$SITE" 2>&1 | tee "$WORK/bundle-check.log" | tail -n 1) || true
  grep -v ' unmet requirement' "$WORK/bundle-check.log" || true
fi

# step NAME LIMIT_S COMMAND...: run it under a time limit (cut to what is left of the deadline), log to
# $WORK/NAME.log, record the outcome.
step() {
  local name=$1 limit=$2 rc=0 began=$SECONDS left=$((DEADLINE - (SECONDS - START)))
  shift 2
  if ((left < 30)); then
    STEPS+=("$name") RESULTS+=("SKIP (out of time: ${DEADLINE}s deadline)")
    return 0
  fi
  ((limit <= left)) || limit=$left
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
if wants tests; then
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
fi

# 2. the Adam step on the GPU against its copy bandwidth
wants bench && step bench 120 "$PY" bench/adam_step.py --device cuda
wants tune && step tune 120 "$PY" bench/triton_tune.py

# 3. packed training against each trial alone, on the GPU (no Ray needed)
if wants packed; then
step packed 120 "$PY" bench/packed_parity.py --device cuda --epochs 8
step packed-lm 150 "$PY" bench/packed_parity.py --device cuda --epochs 3 --metric val_bpc \
  --workload workers.workloads.char_lm:CharLM \
  --workload-args '{"n_layer": 2, "d_model": 64, "n_head": 4, "context": 64, "steps_per_epoch": 50, "max_chars": 1000000}'
fi

# 4. a small packed sweep on the GPU, on its own local Ray and throwaway stores
CONTROL_PLANE=0
if wants sweep || wants gpu-sweeps; then
  "$PY" -c 'import ray, optuna, mlflow, sqlalchemy' >/dev/null 2>&1 && CONTROL_PLANE=1
fi
NO_CONTROL_PLANE="SKIP (no ray/optuna/mlflow for $PY: pip install -e ., or bash bench/device_bundle.sh and carry .bundle)"
if ! wants sweep; then
  :
elif ((!CONTROL_PLANE)); then
  STEPS+=(sweep) RESULTS+=("$NO_CONTROL_PLANE")
else
"$PY" - examples/digits-packed.yaml "$WORK/digits-packed-gpu.yaml" <<'EOF'
import sys

import yaml

spec = yaml.safe_load(open(sys.argv[1]))
spec.update(name="gpu-check-packed", resources_per_trial={"cpu": 1, "gpu": 1})
with open(sys.argv[2], "w") as f:
    yaml.safe_dump(spec, f, sort_keys=False)
EOF
step sweep 210 env -u TUNER_RAY_ADDRESS RAY_ADDRESS=local TUNER_HOME="$WORK/tuner-home" \
  "$PY" -m tuner sweep run "$WORK/digits-packed-gpu.yaml" --n-trials 8 --max-epochs 2
SWEEP_LINE=$(grep -E '^sweep gpu-check-packed: .*failed\)' "$WORK/sweep.log" | tail -n 1 || true)
if [[ -n $SWEEP_LINE && $SWEEP_LINE != *" 0 failed)"* ]]; then
  FAILED=1 SWEEP_LINE="$SWEEP_LINE  <- trials failed"
fi
fi

# 5. the char_lm GPU preset swept four ways: trials per hour, GPU utilisation, peak GPU memory.
# Limits (s) sized for 16 trials x 2 epochs each (bench/gpu_sweeps.py; ~4 of the 9 minutes,
# estimated): one trial at a time pays every trial's set-up in turn, so it gets the most.
GPU_SWEEPS=(gpu-1:150 gpu-0.25:120 packed-8:100 packed-16:100)
if ! wants gpu-sweeps; then
  :
elif ((!CONTROL_PLANE)); then
  STEPS+=(gpu-sweeps) RESULTS+=("$NO_CONTROL_PLANE")
else
  "$PY" bench/gpu_sweeps.py specs "$WORK/gpu-sweeps"
  for entry in "${GPU_SWEEPS[@]}"; do
    step "char-lm-${entry%%:*}" "${entry##*:}" env TUNER_HOME="$WORK/tuner-home" \
      "$PY" bench/gpu_sweeps.py run "$WORK/gpu-sweeps" "${entry%%:*}"
  done
fi

# ---- summary ---------------------------------------------------------------------------
echo
echo "==== gpu_check summary ($((SECONDS - START))s): $GPU; torch $TORCH_VERSION; triton $TRITON"
for i in "${!STEPS[@]}"; do
  printf '  %-17s %s\n' "${STEPS[$i]}" "${RESULTS[$i]}"
done
echo "  bundle: $BUNDLE_LINE"
wants tests && echo "  tests: ${TESTS_LINE:-no test report}"
wants sweep && echo "  sweep: ${SWEEP_LINE:-no summary line}"
if wants packed; then
  for name in packed packed-lm; do
    grep -E '^(  wall|packed_parity: (passed|FAILED))' "$WORK/$name.log" | sed "s/^/  $name: /" || echo "  $name: no output"
  done
fi
if wants bench; then
  echo "  bench (GB/s at 28 B/param; 'of copy' = fraction of copy_ of the same bytes):"
  grep -E '^(roofline|[0-9]|  )' "$WORK/bench.log" | sed 's/^/    /' || echo "    no bench output"
fi
if wants tune; then
  echo "  tune (the Triton kernel's device time per launch config):"
  sed -n '/^fastest per set:/,$p' "$WORK/tune.log" | sed 's/^/    /' | grep . || echo "    no tune output"
fi
if wants gpu-sweeps && ((CONTROL_PLANE)); then
  echo "  gpu-sweeps (char_lm GPU preset; 'whole' counts Ray's start and the analysis, the trial phase the trials alone):"
  for entry in "${GPU_SWEEPS[@]}"; do
    "$PY" bench/gpu_sweeps.py table "$WORK/char-lm-${entry%%:*}.log" || true
  done
fi
if ((FAILED)); then
  echo "gpu_check: FAILED (logs above)"
  exit 1
fi
echo "gpu_check: passed. backend='auto' on CUDA: triton for PackedAdam, torch_fused for FusedAdam"
echo "  (workers/optim/_backends.py, TRITON_VERIFIED_ON_GPU: the figures behind that choice)."
