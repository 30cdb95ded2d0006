"""Median Adam step time against the memory-bandwidth roofline (not a test).

    python bench/adam_step.py                  # ~10M params / 200 tensors and ~50M / 20 tensors
    python bench/adam_step.py --quick          # ~1M params / 50 tensors, fewer repetitions
    python bench/adam_step.py --device cuda    # the default where torch sees a GPU

For each fp32 parameter set it prints the median step of torch.optim.Adam (foreach),
torch.optim.Adam (fused), `FusedAdam` with each fast backend of the device (on CUDA
"torch_fused", FusedAdam's backend="auto" there, and "triton" when installed; on CPU
"torch_fused"), and `PackedAdam` with K=8 trials (distinct hyperparameters), per backend
likewise (on CUDA "auto" is "triton" for PackedAdam), against 8 separate
torch.optim.Adam(fused=True) over the same 8 x params. Columns: ms, effective GB/s at 28
bytes per param per step (read p, g, m, v; write p, m, v), that GB/s as a fraction of
`dst.copy_(src)` moving the same bytes (the block's copy line: the device's copy
bandwidth at this size, measured in the same run), and speed relative to the block's
baseline (torch fused; for the packed block, the 8 separate fused Adams). The
contenders, the copy included, alternate within each repetition, so load from other
processes hits them alike; medians are reported. The first line, `dst.copy_(src)` on 400
MB, is the device's copy roofline (GB/s counts the read and the write).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from workers.optim import FusedAdam, PackedAdam, auto_backend, available_backends

BYTES_PER_PARAM = 28  # fp32: read p, g, m, v; write p, m, v
K = 8
LRS = [1e-3 * 1.5**k for k in range(K)]  # distinct per-trial hyperparameters
BETA2S = [0.99, 0.999, 0.9999, 0.99, 0.999, 0.9999, 0.95, 0.98]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def shapes_for(total: int, tensors: int) -> list[tuple[int, ...]]:
    """`tensors` shapes of about total/tensors elements each, odd sizes included."""
    per = total // tensors
    rows = max(1, int(per**0.5))
    return [(rows + (i % 3), per // rows + (i % 5)) for i in range(tensors)]


def params_like(shapes, device, lead=()) -> list[torch.nn.Parameter]:
    params = [torch.nn.Parameter(torch.randn((*lead, *s), device=device)) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    return params


def median_ms(steps: dict[str, Callable[[], None]], reps: int, device) -> dict[str, float]:
    """Median wall time (ms) of each step function, alternating them within each repetition."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _name, step in steps.items():  # warm-up (lazy state, kernel compilation)
        step(), step()
    for _ in range(reps):
        for name, step in steps.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


COPY = "copy_ of the same bytes"


def copy_bandwidth(device: torch.device, reps: int) -> float:
    """GB/s of dst.copy_(src) on 400 MB (read + write)."""
    src = torch.randn(100_000_000, device=device)
    dst = torch.empty_like(src)
    ms = median_ms({"copy": lambda: dst.copy_(src)}, reps, device)["copy"]
    return 2 * src.numel() * 4 / ms / 1e6


def same_bytes_copy(n_params: int, device: torch.device) -> Callable[[], None]:
    """dst.copy_(src) moving what an fp32 Adam step over `n_params` moves (28 B/param:
    3.5 floats read and 3.5 written per param)."""
    src = torch.randn(n_params * BYTES_PER_PARAM // 8, device=device)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def bench_backends(device: torch.device, packed: bool = False) -> list[str]:
    """The FusedAdam (PackedAdam: `packed`) backends worth timing on `device`, `auto`'s
    first: not "reference" (plain torch ops) nor "triton" on CPU (the interpreter)."""
    chosen = auto_backend(device.type, packed=packed)
    fast = [b for b in available_backends(device.type) if b != "reference" and (b != "triton" or device.type == "cuda")]
    return [chosen] + [b for b in fast if b != chosen]


def label(kind: str, backend: str, device: torch.device, packed: bool = False) -> str:
    return f"{kind} {backend}" + (" (auto)" if backend == auto_backend(device.type, packed=packed) else "")


def report(title: str, n_params: int, ms: dict[str, float], baseline: str) -> None:
    copy_gbps = n_params * BYTES_PER_PARAM / ms[COPY] / 1e6
    print(f"\n{title}")
    print(f"  {COPY:<36}{ms[COPY]:>9.2f}{copy_gbps:>8.1f}")
    print(f"  {'contender':<36}{'ms':>9}{'GB/s':>8}{'of copy':>9}   speed vs {baseline}")
    for name, t in ms.items():
        if name == COPY:
            continue
        gbps = n_params * BYTES_PER_PARAM / t / 1e6
        print(f"  {name:<36}{t:>9.2f}{gbps:>8.1f}{gbps / copy_gbps:>9.2f}   {ms[baseline] / t:.2f}x")


def bench_single(shapes, device, reps: int) -> tuple[int, dict[str, float]]:
    backends = bench_backends(device)
    sets = [params_like(shapes, device) for _ in range(2 + len(backends))]
    n_params = sum(p.numel() for p in sets[0])
    opts = {
        "torch.optim.Adam foreach": torch.optim.Adam(sets[0], foreach=True),
        "torch.optim.Adam fused": torch.optim.Adam(sets[1], fused=True),
    }
    for backend, params in zip(backends, sets[2:]):
        opts[label("FusedAdam", backend, device)] = FusedAdam(params, backend=backend)
    steps = {name: opt.step for name, opt in opts.items()}
    ms = median_ms({**steps, COPY: same_bytes_copy(n_params, device)}, reps, device)
    return n_params, ms


def bench_packed(shapes, device, reps: int) -> tuple[int, dict[str, float]]:
    separate = [params_like(shapes, device) for _ in range(K)]
    opts = [torch.optim.Adam(ps, lr=lr, betas=(0.9, b2), fused=True) for ps, lr, b2 in zip(separate, LRS, BETA2S)]
    n_params = K * sum(p.numel() for p in separate[0])

    def separate_step() -> None:
        for opt in opts:
            opt.step()

    steps = {f"{K}x torch.optim.Adam fused": separate_step}
    for backend in bench_backends(device, packed=True):
        stacked = params_like(shapes, device, lead=(K,))
        packed = PackedAdam(stacked, lr=LRS, betas=(0.9, BETA2S), backend=backend)
        steps[label(f"PackedAdam K={K}", backend, device, packed=True)] = packed.step
    ms = median_ms({**steps, COPY: same_bytes_copy(n_params, device)}, reps, device)
    return n_params, ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~1M params, fewer repetitions")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    sets = [(1_000_000, 50)] if args.quick else [(10_000_000, 200), (50_000_000, 20)]
    reps = 5 if args.quick else 15
    where = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(
        f"torch {torch.__version__}, device {device}{where}, {torch.get_num_threads()} "
        f"threads, median of {reps} alternating repetitions, backend='auto' is "
        f"{auto_backend(device.type)!r} here ({auto_backend(device.type, packed=True)!r} for PackedAdam)"
    )
    print(f"roofline: dst.copy_(src) on 400 MB: {copy_bandwidth(device, reps):.1f} GB/s")
    for total, tensors in sets:
        shapes = shapes_for(total, tensors)
        n, ms = bench_single(shapes, device, reps)
        report(f"{n / 1e6:.1f}M fp32 params in {tensors} tensors", n, ms, "torch.optim.Adam fused")
        if total <= 10_000_000:  # K=8 x 50M params would need ~13 GB for both contenders
            n, ms = bench_packed(shapes, device, max(5, reps // 2))
            report(
                f"{K} trials x {n / K / 1e6:.1f}M fp32 params in {tensors} tensors",
                n,
                ms,
                f"{K}x torch.optim.Adam fused",
            )


if __name__ == "__main__":
    main()
