"""Shared fixtures for the optimizer tests: backends under test and Adam parity harnesses.

Under ``TRITON_INTERPRET=1`` the backends include "cpu-triton" (see test_triton_interpret.py).
``ADAMTUNE_TEST_DEVICE=cuda`` runs the backend cases on the GPU only ("cuda-triton",
"cuda-torch_fused", "cuda-reference"; skipped where torch sees no GPU), ``=cpu`` on the
CPU only; unset: CPU, plus CUDA where available (see `adam_cases.devices_under_test`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
from adam_cases import FOR_LOOP, TORCH_CLASSES, TORCH_TWIN, device_unavailable, devices_under_test, tolerance

from workers.optim import FusedAdam, PackedAdam, available_backends

DEVICES = devices_under_test()


def _on_device(device: str, value: object, id: str) -> object:
    """A pytest param that is skipped, saying why, where ``device`` is unavailable."""
    why = device_unavailable(device)
    return pytest.param(value, id=id, marks=pytest.mark.skipif(why is not None, reason=f"no GPU device: {why}"))


BACKEND_CASES = [_on_device(d, (d, b), f"{d}-{b}") for d in DEVICES for b in available_backends(d)]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread per test: these tensors are small, and on a loaded 2-core machine
    two OpenMP threads stall on each other (x10 slower); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=BACKEND_CASES)
def backend_case(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(device, backend name): every update backend available on every device here."""
    return request.param


class AdamHarness:
    """Builds twin param lists and feeds them identical gradients."""

    # 0-d, odd 2-D, odd 1-D, 3-D, 1-element, and a transposed (non-contiguous) input
    SHAPES: tuple[tuple[int, ...], ...] = ((), (37, 13), (1823,), (3, 4, 5), (1,), (7, 5))
    TRANSPOSED = 5  # index into SHAPES whose param is built as a transposed view

    def __init__(self, device: str) -> None:
        self.device = device

    def make_params(self, seed: int = 0) -> list[torch.nn.Parameter]:
        """Fresh params; SHAPES[TRANSPOSED] is a non-contiguous (transposed) tensor."""
        g = torch.Generator().manual_seed(seed)
        params = []
        for i, shape in enumerate(self.SHAPES):
            if i == self.TRANSPOSED:
                data = torch.randn(shape[::-1], generator=g).t()
                assert not data.is_contiguous()
            else:
                data = torch.randn(shape, generator=g)
            params.append(torch.nn.Parameter(data.to(self.device)))
        return params

    @staticmethod
    def twin(params: Sequence[torch.Tensor]) -> list[torch.nn.Parameter]:
        return [torch.nn.Parameter(p.detach().clone()) for p in params]

    def grads(self, step: int) -> list[torch.Tensor]:
        """Deterministic gradients for `step` (shapes as SHAPES)."""
        g = torch.Generator().manual_seed(1000 + step)
        return [torch.randn(s, generator=g).to(self.device) for s in self.SHAPES]

    @staticmethod
    def noncontiguous(t: torch.Tensor) -> torch.Tensor:
        """Same values as `t`, non-contiguous storage (transposed, or strided for 1-D)."""
        if t.dim() >= 2:
            return t.transpose(0, 1).contiguous().transpose(0, 1)
        if t.dim() == 1:
            return torch.stack([t, torch.zeros_like(t)], dim=1)[:, 0]
        return t.clone()

    @staticmethod
    def feed(
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor | None],
        mode: str,
    ) -> None:
        """Give params their grads: "assign" (p.grad = g), "noncontig" (p.grad =
        non-contiguous g) or "inplace" (write into the existing .grad; None -> None)."""
        for p, g in zip(params, grads, strict=True):
            if g is None:
                p.grad = None
            elif mode == "assign":
                p.grad = g.clone()
            elif mode == "noncontig":
                p.grad = AdamHarness.noncontiguous(g)
            elif mode == "inplace" and p.grad is not None:
                p.grad.copy_(g)
            elif mode == "inplace":
                p.grad = g.clone()
            else:
                raise ValueError(mode)

    def assert_state_close(
        self,
        ours: torch.optim.Optimizer,
        ours_params: Sequence[torch.Tensor],
        ref: torch.optim.Optimizer,
        ref_params: Sequence[torch.Tensor],
    ) -> None:
        """Params and every per-param state entry agree (same keys, dtypes; values within
        the device's `tolerance`)."""
        tol = tolerance(self.device)
        for i, (p, q) in enumerate(zip(ours_params, ref_params, strict=True)):
            torch.testing.assert_close(p, q, **tol, msg=lambda m: f"param {i}: {m}")
            s, r = ours.state.get(p, {}), ref.state.get(q, {})
            assert list(s) == list(r), f"param {i}: state keys {list(s)} != {list(r)}"
            for key in r:
                torch.testing.assert_close(
                    s[key].cpu(),
                    r[key].cpu(),
                    **tol,
                    msg=lambda m: f"param {i} state {key!r}: {m}",
                )


@pytest.fixture
def harness(backend_case: tuple[str, str]) -> AdamHarness:
    return AdamHarness(backend_case[0])


@pytest.fixture
def make_fused(backend_case: tuple[str, str]) -> Callable[..., FusedAdam]:
    """FusedAdam factory bound to the backend under test."""
    _, backend = backend_case

    def make(params, **kwargs) -> FusedAdam:
        return FusedAdam(params, backend=backend, **kwargs)

    return make


@pytest.fixture(params=[_on_device(d, d, d) for d in DEVICES])
def device_harness(request: pytest.FixtureRequest) -> AdamHarness:
    """A harness on each device under test (for tests of torch alone, no backend of ours)."""
    return AdamHarness(request.param)


@pytest.fixture
def cpu_harness() -> AdamHarness:
    return AdamHarness("cpu")


class PackedTwins:
    """A `PackedAdam` over K stacked params and K `torch.optim.Adam` over the rows
    (`TORCH_TWIN` of the backend), trial k with `trials[k]` (hyperparameters) and
    `shared` (flags). With ``algorithm="nadam"`` / ``"adamax"``: K for-loop
    `torch.optim.NAdam` / `Adamax`, compared at `tol`.

    Trial k's gradients at step s are `harness.grads(K * s + k)`, so trials differ.
    """

    def __init__(
        self,
        harness: AdamHarness,
        trials: Sequence[dict],
        shared: dict,
        backend: str,
        seed: int = 0,
        algorithm: str = "adam",
        tol: dict[str, float] | None = None,
    ) -> None:
        self.harness, self.k = harness, len(trials)
        self.tol = tol or tolerance(harness.device)
        rows = [harness.make_params(seed + k) for k in range(self.k)]
        self.params = [  # (K, *shape) each
            torch.nn.Parameter(torch.stack([r[i].detach() for r in rows])) for i in range(len(rows[0]))
        ]
        # contiguous: torch 2.13's CPU fused Adam is wrong on non-contiguous tensors
        self.refs = [harness.twin([p.contiguous() for p in r]) for r in rows]
        packed = {
            "lr": [t.get("lr", 1e-3 if algorithm == "adam" else 2e-3) for t in trials],
            "betas": tuple(list(b) for b in zip(*(t.get("betas", (0.9, 0.999)) for t in trials))),
            "eps": [t.get("eps", 1e-8) for t in trials],
            "weight_decay": [t.get("weight_decay", 0.0) for t in trials],
        }
        if algorithm == "nadam":
            packed["momentum_decay"] = [t.get("momentum_decay", 4e-3) for t in trials]
        self.opt = PackedAdam(self.params, **packed, **shared, backend=backend, algorithm=algorithm)
        twin = TORCH_TWIN.get(backend, FOR_LOOP) if algorithm == "adam" else FOR_LOOP
        self.ref_opts = [TORCH_CLASSES[algorithm](self.refs[k], **twin, **trials[k], **shared) for k in range(self.k)]

    def grads(self, step: int) -> list[torch.Tensor]:
        """Stacked (K, *shape) gradients of `step`."""
        per_trial = [self.harness.grads(self.k * step + k) for k in range(self.k)]
        return [torch.stack(gs) for gs in zip(*per_trial)]

    def step(
        self, step: int, *, mode: str = "assign", skip=lambda step, i: False, active: Sequence[bool] | None = None
    ) -> None:
        """Feed both sides `step`'s grads (None where `skip`), step PackedAdam once and
        the torch Adam of every active trial."""
        grads = [None if skip(step, i) else g for i, g in enumerate(self.grads(step))]
        if mode == "inplace":
            self.opt.zero_grad()
        self.harness.feed(self.params, grads, mode)
        self.opt.step()
        for k in range(self.k):
            if active is None or active[k]:
                self.harness.feed(self.refs[k], [g if g is None else g[k] for g in grads], "assign")
                self.ref_opts[k].step()

    def assert_close(self) -> None:
        """Row k of every param and of every state entry equals torch's trial k (within
        the device's `tolerance`)."""
        tol = self.tol
        for k in range(self.k):
            sd = self.opt.trial_state_dict(k)
            ref_sd = self.ref_opts[k].state_dict()
            group, ref_group = sd["param_groups"][0], ref_sd["param_groups"][0]
            impl = {key: ref_group[key] for key in ("foreach", "fused") if key in ref_group}
            assert {**group, **impl} == ref_group, k
            assert sorted(sd["state"]) == sorted(ref_sd["state"]), k
            for i, (p, q) in enumerate(zip(self.params, self.refs[k], strict=True)):
                torch.testing.assert_close(p[k], q, **tol, msg=lambda m: f"trial {k} param {i}: {m}")
            for i, ref_state in ref_sd["state"].items():
                assert list(sd["state"][i]) == list(ref_state), (k, i)
                for key, value in ref_state.items():
                    torch.testing.assert_close(
                        sd["state"][i][key].cpu(),
                        value.cpu(),
                        **tol,
                        msg=lambda m: f"trial {k} param {i} state {key!r}: {m}",
                    )


@pytest.fixture
def make_packed(harness: AdamHarness, backend_case: tuple[str, str]) -> Callable[..., PackedTwins]:
    """`PackedTwins` factory bound to the device and backend under test."""

    def make(trials: Sequence[dict], shared: dict | None = None, seed: int = 0, **kwargs) -> PackedTwins:
        """kwargs: `PackedTwins`'s ``algorithm`` and ``tol``."""
        return PackedTwins(harness, trials, shared or {}, backend_case[1], seed, **kwargs)

    return make
