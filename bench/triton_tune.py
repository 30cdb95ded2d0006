"""The Triton Adam kernel's launch configurations timed on a GPU (not a test).

    python bench/triton_tune.py            # on CUDA: the configs below on the three sets
    TRITON_INTERPRET=1 python bench/triton_tune.py --smoke   # tiny sets on CPU: the script runs

For each `LaunchConfig` (block size, warps, programs per row: one per block or a persistent
`waves` x SM count looping over the blocks: `max_programs`) it times `FusedAdam(backend="triton")` on ~10M
fp32 params in 200 tensors and ~50M in 20, and `PackedAdam(backend="triton")` with K=8
trials on the 10M set, against torch's fused kernel on the same set (FusedAdam
backend="torch_fused": `torch._fused_adam_` on the flat buffer; for the packed set 8 separate
`torch.optim.Adam(fused=True)`) and `dst.copy_(src)` of the same bytes (28 B per param).
Times: CUDA events around 20 back-to-back steps (so Python's launch overhead overlaps the
kernels), median of 9 such runs, contenders alternating. Each config is first checked
against torch's fused kernel: 3 steps from the same state and gradients, max |difference|
of the params relative to max |param| (it must stay within 1e-5, the parity suite's tolerance).
The last lines name the fastest config per set and whether it meets issue 24's bar
(>= 90 % of the copy at 50M; >= torch fused at 10M in 200 tensors).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from workers.optim import LAUNCH, FusedAdam, LaunchConfig, PackedAdam, launch_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # adam_step beside this file

BYTES_PER_PARAM = 28
K = 8
DEVICE = "cuda"
TUNED = [(512, 4), (1024, 4), (1024, 8), (2048, 8), (2048, 16), (4096, 8), (4096, 16)]  # (block, warps)
PERSISTENT = [(1024, 4, 4), (1024, 4, 8), (2048, 8, 2), (2048, 8, 4), (4096, 8, 2), (1024, 8, 4)]  # + waves


def configs(sm_count: int) -> list[LaunchConfig]:
    """The launches timed: one program per block (4096 x 8 was the launch before tuning), then
    persistent grids of `waves` x `sm_count` programs per row, each looping over blocks."""
    return [LaunchConfig(b, w) for b, w in TUNED] + [
        LaunchConfig(b, w, max_programs=waves * sm_count) for b, w, waves in PERSISTENT
    ]


def params_like(shapes, lead=(), seed=0) -> list[torch.nn.Parameter]:
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn((*lead, *s), device=DEVICE, generator=gen)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, device=DEVICE, generator=gen)
    return params


def timed(steps: dict[str, object], inner: int = 10, runs: int = 5) -> dict[str, float]:
    """Median ms per step of each (callable, config) pair, alternating."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(runs + 1):
        for name, (step, config) in steps.items():
            with launch_config(config):
                times[name].append(_ms(step, inner) / inner)
    return {name: statistics.median(t[1:]) for name, t in times.items()}  # first run: warm-up


def _ms(step, inner: int) -> float:
    """ms of `inner` back-to-back steps: on a GPU the kernels' own time (torch.profiler's
    device time, so the host's launch overhead is left out), on CPU wall time."""
    if DEVICE != "cuda":
        began = time.perf_counter()
        for _ in range(inner):
            step()
        return (time.perf_counter() - began) * 1e3
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(inner):
            step()
        torch.cuda.synchronize()
    return sum(getattr(e, "self_device_time_total", 0) for e in prof.key_averages()) / 1e3


def parity(shapes, config: LaunchConfig) -> float:
    """Max |difference| of the params after 3 steps, relative to max |param|: triton with `config` vs torch_fused."""
    a, b = params_like(shapes, seed=1), params_like(shapes, seed=1)
    opt_a, opt_b = FusedAdam(a, lr=1e-2, backend="triton"), FusedAdam(b, lr=1e-2, backend="torch_fused")
    with launch_config(config):
        for _ in range(3):
            opt_a.step(), opt_b.step()
    return max(((x - y).abs().max() / y.abs().max()).item() for x, y in zip(a, b))


def copy_of(n_params: int):
    src = torch.randn(n_params * BYTES_PER_PARAM // 8, device=DEVICE)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def main() -> int:
    global DEVICE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sets on CPU (TRITON_INTERPRET=1): the script runs")
    args = parser.parse_args()
    sets = [
        ("10M/200 single", 10_000_000, 200, False),
        ("50M/20 single", 50_000_000, 20, False),
        ("K=8 x 10M/200 packed", 10_000_000, 200, True),
    ]
    from adam_step import shapes_for

    if args.smoke:  # 2 "SMs": the persistent launches loop over blocks on CPU too
        DEVICE, sets, sm_count = "cpu", [(title, 20_000, 4, packed) for title, _, _, packed in sets[::2]], 2
    elif not torch.cuda.is_available():
        print("triton_tune: needs a CUDA GPU (or --smoke under TRITON_INTERPRET=1)", file=sys.stderr)
        return 2
    else:
        sm_count = torch.cuda.get_device_properties(0).multi_processor_count
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {sm_count} SMs")
    best: dict[str, tuple[float, LaunchConfig, float, float]] = {}
    for title, total, tensors, packed in sets:
        shapes = shapes_for(total, tensors)
        if packed:
            separate = [params_like(shapes, seed=k) for k in range(K)]
            opts = [torch.optim.Adam(ps, lr=1e-3 * 1.5**k, fused=True) for k, ps in enumerate(separate)]
            n = K * sum(p.numel() for p in separate[0])
            baseline = ("8x torch Adam fused", (lambda opts=opts: [o.step() for o in opts], LAUNCH))
            triton_opt = PackedAdam(
                params_like(shapes, lead=(K,)), lr=[1e-3 * 1.5**k for k in range(K)], backend="triton"
            )
        else:
            n = sum(math.prod(s) for s in shapes)
            baseline_opt = FusedAdam(params_like(shapes), backend="torch_fused")
            baseline = ("FusedAdam torch_fused", (baseline_opt.step, LAUNCH))
            triton_opt = FusedAdam(params_like(shapes), backend="triton")
        steps = dict([baseline, ("copy", (copy_of(n), LAUNCH))])
        for config in configs(sm_count):
            steps[str(config)] = (triton_opt.step, config)
        ms = timed(steps, *((2, 2) if args.smoke else ()))
        copy_gbps = n * BYTES_PER_PARAM / ms["copy"] / 1e6
        print(f"\n{title}: {n / 1e6:.1f}M params; copy of the same bytes {ms['copy']:.3f} ms = {copy_gbps:.0f} GB/s")
        print(f"  {'contender':<60}{'ms':>8}{'GB/s':>8}{'of copy':>9}{'vs base':>9}{'parity':>10}")
        for name, t in ms.items():
            if name == "copy":
                continue
            gbps = n * BYTES_PER_PARAM / t / 1e6
            config = steps[name][1]
            err = parity(shapes, config) if name.startswith("LaunchConfig") and not packed else float("nan")
            print(f"  {name:<60}{t:>8.3f}{gbps:>8.0f}{gbps / copy_gbps:>9.2f}{ms[baseline[0]] / t:>8.2f}x{err:>10.1e}")
            if name.startswith("LaunchConfig") and (err <= 1e-5 or packed):
                if title not in best or t < best[title][0]:
                    best[title] = (t, config, ms[baseline[0]] / t, gbps / copy_gbps)
    print("\nfastest per set:")
    for title, (t, config, speedup, of_copy) in best.items():
        print(
            f"  {title:<22} {config}  {t:.3f} ms  {of_copy:.2f} of copy  {speedup:.2f}x {'torch fused' if 'single' in title else '8 fused'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
