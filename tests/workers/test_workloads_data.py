"""The bundled workloads: data splits, models and metrics."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, stack_module_state

from workers.workloads import Workload, get_workload

NAMES = ["digits_mlp", "diabetes_mlp"]


@pytest.fixture(params=NAMES)
def workload(request: pytest.FixtureRequest) -> Workload:
    return get_workload(request.param)


def test_digits_split_sizes_and_classes() -> None:
    train, val = get_workload("digits_mlp").load_data()
    assert train.x.shape == (1437, 64) and val.x.shape == (360, 64)
    assert train.x.dtype == val.x.dtype == torch.float32
    assert train.y.shape == (1437,) and val.y.shape == (360,)
    assert train.y.dtype == val.y.dtype == torch.int64
    assert len(train.x) + len(val.x) == 1797
    # stratified: every class in both splits, in proportion (digits has 174..183 per class)
    train_counts = torch.bincount(train.y, minlength=10)
    val_counts = torch.bincount(val.y, minlength=10)
    assert len(train_counts) == len(val_counts) == 10
    assert val_counts.min() >= 34 and val_counts.max() <= 37
    assert train_counts.min() >= 139


def test_diabetes_split_sizes_and_standardized_target() -> None:
    train, val = get_workload("diabetes_mlp").load_data()
    assert train.x.shape == (353, 10) and val.x.shape == (89, 10)
    assert train.y.shape == (353, 1) and val.y.shape == (89, 1)
    assert train.y.dtype == torch.float32
    assert abs(float(train.y.mean())) < 1e-5
    assert abs(float(train.y.std(correction=0)) - 1.0) < 1e-4


def test_features_are_standardized_with_training_statistics(workload: Workload) -> None:
    train, val = workload.load_data()
    std = train.x.std(dim=0, correction=0)  # (F,)
    varying = std > 0
    assert varying.sum() > 0
    assert torch.allclose(train.x.mean(dim=0), torch.zeros(train.x.shape[1]), atol=1e-5)
    assert torch.allclose(std[varying], torch.ones(int(varying.sum())), atol=1e-4)
    # validation uses the training statistics, so it is not exactly standardized itself
    assert not torch.allclose(val.x.mean(dim=0), torch.zeros(val.x.shape[1]), atol=1e-5)


def test_split_is_fixed(workload: Workload) -> None:
    first = workload.load_data()
    torch.manual_seed(1234)
    second = type(workload)().load_data()
    for a, b in zip(first, second):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_model_init_depends_only_on_seed(workload: Workload) -> None:
    state = torch.random.get_rng_state()
    a, b, c = workload.build_model(0), workload.build_model(0), workload.build_model(1)
    assert torch.equal(torch.random.get_rng_state(), state), "global RNG must be untouched"
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_model_maps_features_to_what_loss_and_evaluate_expect(workload: Workload) -> None:
    train, val = workload.load_data()
    model = workload.build_model(0)
    output = model(train.x[:7])
    loss = workload.loss(output, train.y[:7])
    assert loss.shape == ()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        metrics = workload.evaluate(model(val.x), val.y)
    assert set(metrics) == set(workload.metrics)
    assert all(type(v) is float for v in metrics.values())


def test_packable_models_stack_and_vmap(workload: Workload) -> None:
    assert workload.can_pack
    models = [workload.build_model(seed) for seed in range(3)]
    assert all(len(list(m.buffers())) == 0 for m in models)
    params, buffers = stack_module_state(models)  # each leaf: (K, ...)
    x = workload.load_data()[1].x  # (N_val, F)

    def one(p: dict, b: dict) -> torch.Tensor:
        return functional_call(models[0], (p, b), (x,))

    with torch.no_grad():
        packed = torch.vmap(one)(params, buffers)  # (K, N_val, out)
        for k, model in enumerate(models):
            assert torch.allclose(packed[k], model(x), atol=1e-6)


def test_digits_metrics_on_known_outputs() -> None:
    workload = get_workload("digits_mlp")
    target = torch.tensor([0, 1, 2, 3])
    perfect = torch.nn.functional.one_hot(target, 10).float() * 100.0  # (4, 10) logits
    metrics = workload.evaluate(perfect, target)
    assert metrics["val_accuracy"] == 1.0
    assert metrics["val_loss"] < 1e-6
    half_wrong = perfect.clone()
    half_wrong[:2] = perfect[2:]
    assert workload.evaluate(half_wrong, target)["val_accuracy"] == 0.5


def test_diabetes_metrics_on_known_outputs() -> None:
    workload = get_workload("diabetes_mlp")
    target = torch.tensor([[1.0], [2.0], [3.0], [6.0]])
    exact = workload.evaluate(target.clone(), target)
    assert exact == {"val_loss": 0.0, "val_r2": 1.0}
    mean = workload.evaluate(torch.full_like(target, 3.0), target)
    assert mean["val_loss"] == pytest.approx(3.5)
    assert mean["val_r2"] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kwargs", [{"hidden": 0}, {"batch_size": -1}, {"batch_size": 2.5}])
def test_bad_constructor_arguments(name: str, kwargs: dict) -> None:
    cls = type(get_workload(name))
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        cls(**kwargs)


def test_cached_split_builds_once_and_returns_the_same_tensors(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes after the first read the prepared split from a file instead of
    importing scikit-learn; a corrupt file is rebuilt, an unwritable folder is no cache."""
    from workers.workloads import CACHE_DIR_ENV, Split, cached_split

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    calls = []

    def build():
        calls.append(1)
        return Split(torch.arange(6.0).view(3, 2), torch.tensor([0, 1, 0])), Split(torch.ones(1, 2), torch.tensor([1]))

    first = cached_split("toy", build)
    second = cached_split("toy", build)
    assert len(calls) == 1
    for a, b in zip([*first[0], *first[1]], [*second[0], *second[1]]):
        assert torch.equal(a, b) and a.dtype == b.dtype
    [file] = (tmp_path / "cache").iterdir()
    assert file.name.startswith("toy-sklearn") and file.suffix == ".pt"

    file.write_bytes(b"not a tensor file")
    assert torch.equal(cached_split("toy", build)[0].x, first[0].x) and len(calls) == 2

    monkeypatch.setenv(CACHE_DIR_ENV, str(file / "sub"))  # under a file: cannot be created
    assert torch.equal(cached_split("toy", build)[1].y, first[1].y) and len(calls) == 3


def test_bundled_splits_come_back_equal_from_the_cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.workloads import CACHE_DIR_ENV, cached_split

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    built = get_workload("digits_mlp").load_data()  # this process's split, built (or read) before
    cached_split("digits", lambda: built)  # an empty folder: written
    cached = cached_split("digits", lambda: pytest.fail("should come from the file"))
    for a, b in zip([*built[0], *built[1]], [*cached[0], *cached[1]]):
        assert torch.equal(a, b)
