"""The char_lm GPU preset swept three ways on one GPU: bench/gpu_check.sh's last step (not a test).

    python bench/gpu_sweeps.py specs DIR [--print]   # write (and show) the four specs; needs no GPU
    python bench/gpu_sweeps.py run DIR NAME          # one sweep, with nvidia-smi sampling alongside
    python bench/gpu_sweeps.py table LOG...          # the summary lines of earlier runs as a table

The workload is docs/workloads.md's GPU preset of ``char_lm`` (nanoGPT's shakespeare_char size:
6 blocks, d_model 384, 6 heads, context 256, batch 64, bf16; 10.8 M parameters) on
examples/char-lm.yaml's search space (AdamW, warm-up + cosine). Every way runs the same trials
to the end (``scheduler: none``, no lr range test) so their rates compare:

* ``gpu-1``: ``resources_per_trial: {gpu: 1}``, one trial at a time;
* ``gpu-0.25``: ``{gpu: 0.25}``, four trials share the GPU (what a Ray Tune user does);
* ``packed-8`` and ``packed-16``: ``execution: packed``, K configs trained as one stacked model per
  GPU.

``run`` prints the tuner's output, then one line ``gpu-sweep NAME: ...`` with trials per hour over
the whole command (imports, Ray's start and the end-of-sweep analysis included) and over the
trials alone (from the sweep's first progress line to its last), the GPU's mean utilisation over
that trial phase and the peak memory in use (``nvidia-smi --query-gpu=utilization.gpu,memory.used
-lms 500``; the whole device, so an idle CUDA context counts too).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE_SPEC = ROOT / "examples" / "char-lm.yaml"

# Sized so that the four sweeps fit in ~4 of gpu_check.sh's 9 minutes on an H200 (estimated, not
# yet measured there): 16 trials x 2 epochs x 50 steps of batch 64 x 256 characters. One step of the
# preset is ~1 TFLOP (6 x 10.8 M params x 16 k tokens): a few ms on an H200, so a standard trial is
# mostly its set-up (a worker, CUDA, the corpus, the model), which is what packing amortises.
N_TRIALS = int(os.environ.get("GPU_SWEEP_TRIALS", "16"))
MAX_EPOCHS = int(os.environ.get("GPU_SWEEP_EPOCHS", "2"))
GPU_PRESET = {
    "n_layer": 6,
    "d_model": 384,
    "n_head": 6,
    "context": 256,
    "batch_size": 64,
    "bf16": True,
    "steps_per_epoch": 50,
    "max_chars": 1_000_000,
}
#: name -> the keys that make each way.
WAYS = {
    "gpu-1": {"resources_per_trial": {"cpu": 1, "gpu": 1}, "execution": "standard"},
    "gpu-0.25": {"resources_per_trial": {"cpu": 1, "gpu": 0.25}, "execution": "standard"},
    "packed-8": {"resources_per_trial": {"cpu": 1, "gpu": 1}, "execution": "packed", "pack_size": 8},
    "packed-16": {"resources_per_trial": {"cpu": 1, "gpu": 1}, "execution": "packed", "pack_size": 16},
}
SUMMARY = re.compile(r"^sweep \S+: (\d+) trials \((\d+) completed, (\d+) early-stopped, (\d+) failed\)")
HEADER = re.compile(r"^sweep \S+: \d+ trials, optimizing ")


def specs() -> dict[str, dict]:
    """The four sweep specs, by way."""
    base = yaml.safe_load(BASE_SPEC.read_text())
    out = {}
    for way, keys in WAYS.items():
        spec = copy.deepcopy(base)
        spec.update(
            name=f"gpu-char-lm-{way}",
            workload_args=dict(GPU_PRESET),
            n_trials=N_TRIALS,
            max_epochs=MAX_EPOCHS,
            scheduler="none",  # every trial trains max_epochs: the ways' rates compare
            lr_range_test=False,
            **copy.deepcopy(keys),
        )
        out[way] = spec
    return out


def write_specs(folder: Path, *, show: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for way, spec in specs().items():
        path = folder / f"{way}.yaml"
        text = yaml.safe_dump(spec, sort_keys=False)
        path.write_text(text)
        if show:
            print(f"---\n# {way}: python -m tuner sweep run {path}\n{text}", end="")


def trial_phase(lines: list[tuple[float, str]]) -> tuple[float, float] | None:
    """(when, seconds): from the sweep's first progress line to its 'trials finished' line, as they arrived."""
    start = next((t for t, x in lines if HEADER.match(x)), None)
    end = next((t for t, x in reversed(lines) if " trials finished; best " in x), None)
    if start is None or end is None:
        return None
    return start, max(end - start, 1e-3)


def sampler(path: Path) -> subprocess.Popen | None:
    """nvidia-smi writing 'utilization %, memory MiB' lines with a timestamp, every 500 ms."""
    command = ["nvidia-smi", "--query-gpu=timestamp,utilization.gpu,memory.used"]
    command += ["--format=csv,noheader,nounits", "-lms", "500"]
    try:
        return subprocess.Popen(command, stdout=open(path, "w"), stderr=subprocess.DEVNULL)
    except OSError:
        return None


def samples(path: Path, t0: float, t1: float | None) -> tuple[float | None, float | None, int]:
    """(mean utilisation % from time ``t0`` to ``t1``, peak MiB over the whole run, samples read); times are
    seconds since the epoch, compared with nvidia-smi's timestamps (the machine's local time)."""
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = [p.strip() for p in line.split(",")]
        try:
            stamp = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            rows.append((stamp, float(parts[1]), float(parts[2])))
        except (IndexError, ValueError):
            continue
    if not rows:
        return None, None, 0
    window = [u for stamp, u, _ in rows if t0 <= stamp and (t1 is None or stamp <= t1)] or [u for _, u, _ in rows]
    return sum(window) / len(window), max(m for _, _, m in rows), len(rows)


def run(folder: Path, way: str) -> int:
    spec = folder / f"{way}.yaml"
    smi = folder / f"{way}.smi.csv"
    command = [sys.executable, "-m", "tuner", "sweep", "run", str(spec)]
    env = {k: v for k, v in os.environ.items() if k != "TUNER_RAY_ADDRESS"}
    env |= {"RAY_ADDRESS": "local", "PYTHONUNBUFFERED": "1"}  # lines arrive as printed: their times count
    watcher = sampler(smi)
    began, epoch = time.monotonic(), time.time()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(signum: int, frame: object) -> None:  # gpu_check.sh's time limit: end the sweep and the sampler
        child.terminate()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    lines: list[tuple[float, str]] = []  # (when it arrived, the line)
    try:
        for line in child.stdout:
            print(line, end="", flush=True)
            lines.append((time.time(), line.rstrip("\n")))
        rc = child.wait()
    finally:
        wall = time.monotonic() - began
        if watcher is not None:
            watcher.terminate()
            watcher.wait()
    summary = next((m for _, x in reversed(lines) if (m := SUMMARY.match(x))), None)
    finished = int(summary.group(2)) + int(summary.group(3)) if summary else 0
    failed = int(summary.group(4)) if summary else None
    found = trial_phase(lines)
    phase = None if found is None else found[1]
    util, peak, n = samples(smi, *((epoch, None) if found is None else (found[0], found[0] + found[1])))
    fmt = lambda v, f: "n/a" if v is None else format(v, f)
    print(
        f"gpu-sweep {way}: {finished} trials in {wall:.0f} s: {finished * 3600 / wall:.0f} trials/hour whole, "
        f"{fmt(None if phase is None else finished * 3600 / phase, '.0f')} trials/hour in the trial phase "
        f"({fmt(phase, '.0f')} s); GPU utilisation {fmt(util, '.0f')} % (mean over the trial phase, {n} samples); "
        f"peak GPU memory {fmt(peak, '.0f')} MiB; failed {fmt(failed, 'd')}; exit {rc}",
        flush=True,
    )
    return rc if failed in (0, None) or rc != 0 else 1


def table(logs: list[Path]) -> None:
    for log in logs:
        text = log.read_text() if log.exists() else ""
        found = [x for x in text.splitlines() if x.startswith("gpu-sweep ")]
        print("    " + (found[-1] if found else f"{log.stem}: no summary line"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    s = verbs.add_parser("specs", help="write the specs into DIR")
    s.add_argument("dir", type=Path)
    s.add_argument("--print", action="store_true", help="also print them (YAML documents)")
    r = verbs.add_parser("run", help="run one way's sweep")
    r.add_argument("dir", type=Path)
    r.add_argument("way", choices=list(WAYS))
    t = verbs.add_parser("table", help="the summary lines of sweep logs")
    t.add_argument("logs", type=Path, nargs="+")
    args = parser.parse_args()
    if args.verb == "specs":
        write_specs(args.dir, show=args.print)
        return 0
    if args.verb == "table":
        table(args.logs)
        return 0
    return run(args.dir, args.way)


if __name__ == "__main__":
    sys.exit(main())
