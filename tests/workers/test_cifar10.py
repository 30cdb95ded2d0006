"""``cifar10_cnn`` on a miniature CIFAR-10 written in the real on-disk format."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cifar10_fixture import LABEL_NAMES, write_cifar10_miniature
from torch.func import functional_call, grad_and_value, stack_module_state

from workers import FusedAdam
from workers.workloads import available_workloads, get_workload
from workers.workloads.cifar10 import DATA_DIR_ENV, Cifar10CNN, random_crop_flip

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PER_BATCH = 20  # 100 training and 20 validation images
BATCH = 32  # 100 = 3 x 32 + 4: a short last batch
FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_cifar10_miniature(tmp_path / "cifar-10-batches-py", per_batch=PER_BATCH)


@pytest.fixture
def workload(folder: Path) -> Cifar10CNN:
    return Cifar10CNN(data_dir=str(folder), batch_size=BATCH, width=8)


def raw(folder: Path, name: str) -> dict:
    """A batch file as the official loading snippet reads it."""
    with open(folder / name, "rb") as f:
        return pickle.load(f, encoding="bytes")


def rewrite(folder: Path, name: str, change: Callable[[dict], object]) -> None:
    batch = raw(folder, name)
    (folder / name).write_bytes(pickle.dumps(change(batch), protocol=2))


def one_epoch(workload: Cifar10CNN, epoch: int = 1, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(workload.train_batches(epoch, seed))


# --- data ---------------------------------------------------------------------------


def test_the_miniature_is_pickled_as_the_official_python2_files(folder: Path) -> None:
    batch = raw(folder, "data_batch_1")
    assert sorted(batch) == [b"batch_label", b"data", b"filenames", b"labels"]
    assert batch[b"data"].shape == (PER_BATCH, 3072) and batch[b"data"].dtype == np.uint8
    assert (folder / "data_batch_1").stat().st_size < 3072 * PER_BATCH + 2_000  # raw bytes, not re-encoded
    with open(folder / "data_batch_1", "rb") as f, pytest.raises(UnicodeDecodeError):
        pickle.load(f)  # Python 2 str: only encoding="bytes" (or latin1) reads it


def test_the_entry_point_builds_it(folder: Path) -> None:
    assert "cifar10_cnn" in available_workloads()
    workload = get_workload("cifar10_cnn", {"data_dir": str(folder)})
    assert type(workload) is Cifar10CNN and workload.name == "cifar10_cnn"
    assert workload.can_pack and workload.metrics == ("val_loss", "val_accuracy")


def test_loads_the_miniature_normalized_by_training_statistics(folder: Path) -> None:
    workload = Cifar10CNN(data_dir=str(folder), batch_size=BATCH, augment=False)
    assert (workload.train_images, workload.val_images) == (5 * PER_BATCH, PER_BATCH)
    assert workload.label_names == LABEL_NAMES
    assert workload.steps_per_epoch() == 4

    pixels = np.concatenate([raw(folder, f"data_batch_{i}")[b"data"] for i in range(1, 6)])  # (100, 3072)
    planes = pixels.reshape(-1, 3, 1024) / 255.0  # (100, 3, 1024)
    mean, std = planes.mean(axis=(0, 2)), planes.std(axis=(0, 2))  # (3,), (3,)
    assert workload.mean.dtype == workload.std.dtype == torch.float32
    torch.testing.assert_close(workload.mean, torch.tensor(mean, dtype=torch.float32))
    torch.testing.assert_close(workload.std, torch.tensor(std, dtype=torch.float32))

    batches = one_epoch(workload)
    assert [tuple(x.shape) for x, _ in batches] == [(32, 3, 32, 32)] * 3 + [(4, 3, 32, 32)]
    assert all(x.dtype == torch.float32 and y.dtype == torch.int64 for x, y in batches)
    x = torch.cat([x for x, _ in batches])  # (100, 3, 32, 32), every training image once
    y = torch.cat([y for _, y in batches])  # (100,)
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-4, rtol=0)
    labels = [label for i in range(1, 6) for label in raw(folder, f"data_batch_{i}")[b"labels"]]
    assert sorted(y.tolist()) == sorted(labels)


def test_validation_is_test_batch_in_file_order(folder: Path) -> None:
    workload = Cifar10CNN(data_dir=str(folder), val_batch_size=7)
    batches = list(workload.val_batches())
    assert [len(y) for _, y in batches] == [7, 7, 6] and len(workload.val_batches()) == 3
    assert list(workload.val_batches())[0][0].equal(batches[0][0])  # re-iterable, fixed
    test = raw(folder, "test_batch")
    images = torch.from_numpy(test[b"data"]).view(-1, 3, 32, 32) / 255.0  # (20, 3, 32, 32) in [0, 1]
    expected = (images - workload.mean[:, None, None]) / workload.std[:, None, None]
    torch.testing.assert_close(torch.cat([x for x, _ in batches]), expected)
    assert torch.cat([y for _, y in batches]).tolist() == test[b"labels"]


def test_train_and_val_samples_take_the_first_images(folder: Path) -> None:
    workload = Cifar10CNN(data_dir=str(folder), batch_size=BATCH, augment=False, train_samples=30, val_samples=5)
    assert (workload.train_images, workload.val_images, workload.steps_per_epoch()) == (30, 5, 1)
    first = [*raw(folder, "data_batch_1")[b"labels"], *raw(folder, "data_batch_2")[b"labels"]][:30]
    [(x, y)] = one_epoch(workload)
    assert sorted(y.tolist()) == sorted(first)
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)  # its own statistics
    assert torch.cat([y for _, y in workload.val_batches()]).tolist() == raw(folder, "test_batch")[b"labels"][:5]
    assert workload.fingerprint()["train_images"] == "30" and workload.fingerprint()["val_images"] == "5"


def test_environment_variable_names_the_folder_unless_data_dir_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = write_cifar10_miniature(tmp_path / "env", per_batch=10, seed=1)
    from_arg = write_cifar10_miniature(tmp_path / "arg", per_batch=10, seed=2)
    monkeypatch.setenv(DATA_DIR_ENV, str(from_env))
    assert Cifar10CNN().fingerprint()["data_dir"] == str(from_env)
    assert Cifar10CNN(data_dir=str(from_arg)).fingerprint()["data_dir"] == str(from_arg)
    assert Cifar10CNN().fingerprint()["sha256"] != Cifar10CNN(data_dir=str(from_arg)).fingerprint()["sha256"]


def test_fingerprint_hashes_the_six_batch_files(folder: Path) -> None:
    import hashlib

    expected = hashlib.sha256(b"".join((folder / name).read_bytes() for name in FILES[:6])).hexdigest()
    assert Cifar10CNN(data_dir=str(folder)).fingerprint() == {
        "data_dir": str(folder),
        "train_images": "100",
        "val_images": "20",
        "sha256": expected,
    }


def test_rewritten_files_are_read_again(folder: Path) -> None:
    before = Cifar10CNN(data_dir=str(folder)).fingerprint()["sha256"]
    write_cifar10_miniature(folder, per_batch=PER_BATCH, seed=1)  # same sizes, other pixels
    for name in FILES:  # a distinct mtime even on a coarse clock
        os.utime(folder / name, ns=(1_000_000_000, 1_000_000_000))
    assert Cifar10CNN(data_dir=str(folder)).fingerprint()["sha256"] != before


def test_an_instance_pickles_without_its_data(workload: Cifar10CNN) -> None:
    blob = pickle.dumps(workload)  # what Ray would send to a worker
    assert len(blob) < 10_000
    copy = pickle.loads(blob)
    for (xa, ya), (xb, yb) in zip(one_epoch(workload), one_epoch(copy)):
        assert xa.equal(xb) and ya.equal(yb)


# --- bad input ----------------------------------------------------------------------


def assert_one_line_naming(error: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, f"{part!r} not in: {message}"


def test_no_folder_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(ValueError) as error:
        Cifar10CNN()
    assert_one_line_naming(error, "data_dir", DATA_DIR_ENV, "data_batch_1..5", "cifar-10-python.tar.gz")


def test_missing_folder_from_either_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError) as error:
        Cifar10CNN(data_dir=missing)
    assert_one_line_naming(error, f"data_dir {missing!r} does not exist", DATA_DIR_ENV)
    monkeypatch.setenv(DATA_DIR_ENV, missing)
    with pytest.raises(ValueError) as error:
        Cifar10CNN()
    assert_one_line_naming(error, f"{DATA_DIR_ENV} {missing!r} does not exist")


def test_a_file_is_not_a_folder(folder: Path) -> None:
    with pytest.raises(ValueError) as error:
        Cifar10CNN(data_dir=str(folder / "test_batch"))
    assert_one_line_naming(error, "is not a folder", "test_batch")


def test_relative_folder_is_refused_with_its_absolute_form(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder.parent)
    with pytest.raises(ValueError) as error:
        Cifar10CNN(data_dir=folder.name)
    assert_one_line_naming(error, "absolute", repr(folder.name), repr(str(folder)))


@pytest.mark.parametrize("name", ["data_batch_3", "test_batch", "batches.meta"])
def test_missing_file(folder: Path, name: str) -> None:
    (folder / name).unlink()
    with pytest.raises(ValueError) as error:
        Cifar10CNN(data_dir=str(folder))
    assert_one_line_naming(error, f"data_dir {str(folder)!r} has no {name}", DATA_DIR_ENV)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: b"", id="empty"),
        pytest.param(lambda raw: b"<html>404 not found</html>" * 10, id="not-a-pickle"),
    ],
)
def test_corrupt_pickle(folder: Path, damage: Callable[[bytes], bytes]) -> None:
    path = folder / "data_batch_2"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError) as error:
        Cifar10CNN(data_dir=str(folder))
    assert_one_line_naming(error, str(folder), "data_batch_2", "pickle", DATA_DIR_ENV)


def _set(key: bytes, value: object) -> Callable[[dict], dict]:
    return lambda batch: {**batch, key: value}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        pytest.param(lambda batch: [batch], "not a CIFAR-10 batch", id="not-a-dict"),
        pytest.param(lambda batch: {b"data": batch[b"data"]}, "not a CIFAR-10 batch", id="no-labels"),
        pytest.param(_set(b"data", np.zeros((PER_BATCH, 3071), np.uint8)), "(N >= 1, 3072)", id="3071-columns"),
        pytest.param(_set(b"data", np.zeros((PER_BATCH, 3, 32, 32), np.uint8)), "(20, 3, 32, 32)", id="4d"),
        pytest.param(_set(b"data", np.zeros((PER_BATCH, 3072), np.float32)), "float32", id="float"),
        pytest.param(_set(b"data", np.zeros((0, 3072), np.uint8)), "(0, 3072)", id="empty"),
        pytest.param(_set(b"data", [0] * 3072), "a list", id="a-list"),
        pytest.param(_set(b"labels", [0] * (PER_BATCH - 1)), "20 images but 19 labels", id="labels-short"),
        pytest.param(_set(b"labels", [10] * PER_BATCH), "0..9", id="label-10"),
        pytest.param(_set(b"labels", [-1] * PER_BATCH), "0..9", id="label-negative"),
        pytest.param(_set(b"labels", ["cat"] * PER_BATCH), "list of ints", id="label-str"),
    ],
)
def test_malformed_batch(folder: Path, change: Callable[[dict], object], says: str) -> None:
    rewrite(folder, "data_batch_4", change)
    with pytest.raises(ValueError) as error:
        Cifar10CNN(data_dir=str(folder))
    assert_one_line_naming(error, str(folder), "data_batch_4", says, DATA_DIR_ENV)


def test_meta_without_label_names(folder: Path) -> None:
    rewrite(folder, "batches.meta", lambda meta: {b"num_vis": 3072})
    with pytest.raises(ValueError) as error:
        Cifar10CNN(data_dir=str(folder))
    assert_one_line_naming(error, "batches.meta", "label_names")


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"width": 0}, "width"),
        ({"augment": "yes"}, "augment"),
        ({"train_samples": 0}, "train_samples"),
        ({"train_samples": 101}, "train_samples must be <= the 100 images"),
        ({"val_samples": 21}, "val_samples must be <= the 20 images"),
        ({"val_batch_size": -1}, "val_batch_size"),
        ({"bf16": "no"}, "bf16"),
        ({"grad_clip_norm": 0}, "grad_clip_norm"),
        ({"data_dir": 3}, "data_dir"),
    ],
)
def test_bad_arguments_are_named(folder: Path, kwargs: dict, names: str) -> None:
    with pytest.raises(ValueError) as error:
        Cifar10CNN(**{"data_dir": str(folder), **kwargs})
    assert_one_line_naming(error, names)


# --- batches and augmentation -------------------------------------------------------


def test_batches_depend_only_on_epoch_and_seed(workload: Cifar10CNN) -> None:
    first = one_epoch(workload, epoch=2, seed=7)
    torch.manual_seed(123)  # the global generator plays no part
    again = one_epoch(Cifar10CNN(data_dir=str(workload.data_dir), batch_size=BATCH, width=8), epoch=2, seed=7)
    for (xa, ya), (xb, yb) in zip(first, again, strict=True):
        assert xa.equal(xb) and ya.equal(yb)
    state = torch.random.get_rng_state()
    one_epoch(workload, epoch=3, seed=7)
    assert torch.random.get_rng_state().equal(state), "train_batches must not draw from the global generator"
    for other in (one_epoch(workload, epoch=3, seed=7), one_epoch(workload, epoch=2, seed=8)):
        assert [x.shape for x, _ in other] == [x.shape for x, _ in first]  # same shape per step
        assert not all(xa.equal(xb) for (xa, _), (xb, _) in zip(first, other))
        assert not all(ya.equal(yb) for (_, ya), (_, yb) in zip(first, other))


def test_augmentation_changes_images_but_not_the_order(folder: Path) -> None:
    plain = Cifar10CNN(data_dir=str(folder), batch_size=BATCH, augment=False)
    augmented = Cifar10CNN(data_dir=str(folder), batch_size=BATCH, augment=True)
    for (xp, yp), (xa, ya) in zip(one_epoch(plain), one_epoch(augmented), strict=True):
        assert yp.equal(ya)  # the permutation is drawn first, from the same generator
        changed = (xp != xa).flatten(1).any(dim=1)  # (B,)
        assert changed.float().mean() > 0.5  # 1 in 162 crops is the identity


def crops_and_flips(image: torch.Tensor, padding: int = 4) -> list[torch.Tensor]:
    """Every (2p+1)^2 crop of ``image`` (C, H, W) zero-padded by p, each also flipped."""
    _, h, w = image.shape
    padded = F.pad(image, (padding,) * 4)  # (C, H + 2p, W + 2p)
    crops = [padded[:, dy : dy + h, dx : dx + w] for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)]
    return crops + [crop.flip(-1) for crop in crops]


def test_random_crop_flip_is_a_seeded_crop_and_flip_per_image() -> None:
    images = torch.randint(1, 256, (24, 3, 32, 32), dtype=torch.uint8)  # no zeros: padding is visible
    state = torch.random.get_rng_state()
    out = random_crop_flip(images, torch.Generator().manual_seed(5))
    assert torch.random.get_rng_state().equal(state)
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert out.equal(random_crop_flip(images, torch.Generator().manual_seed(5)))
    assert not out.equal(random_crop_flip(images, torch.Generator().manual_seed(6)))
    flipped = shifted = 0
    for image, result in zip(images, out):
        matches = [k for k, candidate in enumerate(crops_and_flips(image)) if candidate.equal(result)]
        assert len(matches) == 1, "each output is exactly one crop (or flipped crop) of its own image"
        flipped += matches[0] >= 81
        shifted += matches[0] % 81 != 40  # 40: the centred crop
    assert 0 < flipped < 24 and shifted > 12  # both kinds drawn, per image


# --- model and loss -----------------------------------------------------------------


def test_model_is_seeded_parameter_only_and_66602_parameters_wide_at_32(workload: Cifar10CNN) -> None:
    state = torch.random.get_rng_state()
    a, b, c = workload.build_model(0), workload.build_model(0), workload.build_model(1)
    assert torch.random.get_rng_state().equal(state), "build_model must not move the global generator"
    assert all(pa.equal(pb) for pa, pb in zip(a.parameters(), b.parameters()))
    assert not all(pa.equal(pc) for pa, pc in zip(a.parameters(), c.parameters()))
    assert list(a.buffers()) == [] and a.training
    wide = Cifar10CNN(data_dir=str(workload.data_dir)).build_model(0)
    assert sum(p.numel() for p in wide.parameters()) == 66_602
    x, y = next(iter(workload.val_batches()))
    assert wide(x).shape == (len(y), 10) and a(x).shape == (len(y), 10)


@pytest.mark.parametrize("batch", [1, 7, 33])
def test_loss_equals_cross_entropy(workload: Cifar10CNN, batch: int) -> None:
    generator = torch.Generator().manual_seed(batch)
    logits = 5 * torch.randn(batch, 10, generator=generator)  # (B, 10)
    target = torch.randint(0, 10, (batch,), generator=generator)  # (B,)
    torch.testing.assert_close(workload.loss(logits, target), F.cross_entropy(logits, target))


def test_metrics_on_known_outputs(workload: Cifar10CNN) -> None:
    target = torch.tensor([0, 1, 2, 3])
    perfect = F.one_hot(target, 10).float() * 100.0  # (4, 10) logits
    assert workload.evaluate(perfect, target) == {"val_loss": pytest.approx(0.0, abs=1e-6), "val_accuracy": 1.0}
    half_wrong = perfect.clone()
    half_wrong[:2] = perfect[2:]
    assert workload.evaluate(half_wrong, target)["val_accuracy"] == 0.5


@pytest.mark.parametrize("shared", [True, False], ids=["shared-batch", "per-member-batches"])
def test_vmap_over_stacked_copies_gives_each_copy_its_loss_and_grads(workload: Cifar10CNN, shared: bool) -> None:
    models = [workload.build_model(seed) for seed in range(3)]
    params, buffers = stack_module_state(models)  # each leaf (3, ...)
    # Unaugmented: a crop's black border is a constant region, where max-pooling ties and
    # vmap's grouped convolution (rounded differently) may route the gradient to another
    # equal input than the eager model does, both valid; that moves grads by ~1e-4.
    plain = Cifar10CNN(data_dir=str(workload.data_dir), batch_size=BATCH, width=8, augment=False)
    batches = one_epoch(plain)[:3]
    x = batches[0][0] if shared else torch.stack([b[0] for b in batches])  # (B, 3, 32, 32) or (3, B, 3, 32, 32)
    y = batches[0][1] if shared else torch.stack([b[1] for b in batches])  # (B,) or (3, B)

    def member_loss(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return workload.loss(functional_call(models[0], (p, b), (x,)), y)

    in_dims = (0, 0, None, None) if shared else (0, 0, 0, 0)
    grads, losses = torch.vmap(grad_and_value(member_loss), in_dims=in_dims)(params, buffers, x, y)  # losses: (3,)
    for k, model in enumerate(models):
        loss = workload.loss(model(x if shared else x[k]), y if shared else y[k])
        loss.backward()
        torch.testing.assert_close(losses[k], loss.detach(), rtol=1e-5, atol=1e-6)
        for name, param in model.named_parameters():
            torch.testing.assert_close(grads[name][k], param.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert not losses[0].equal(losses[1])


def test_a_few_fused_adam_steps_lower_the_loss(workload: Cifar10CNN) -> None:
    model = workload.build_model(0)
    optimizer = FusedAdam(model.parameters(), lr=1e-2)

    def val_loss() -> float:
        with torch.no_grad():
            return sum(workload.evaluate(model(x), y)["val_loss"] * len(y) for x, y in workload.val_batches()) / 20

    before = val_loss()
    for epoch in (1, 2, 3):
        for x, y in workload.train_batches(epoch, seed=0):
            loss = workload.loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert val_loss() < before - 0.3


def test_train_and_train_packed_learn_it_alike(folder: Path) -> None:
    from workers.packed import train_packed
    from workers.training import train

    # Unaugmented, for the reason given in the vmap test above.
    workload = Cifar10CNN(data_dir=str(folder), batch_size=BATCH, width=8, augment=False)
    configs = [
        {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
        {"lr": 3e-3, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    ]
    alone = [list(train(config, workload=workload, max_epochs=3)) for config in configs]
    packed = list(train_packed(configs, workload=workload, max_epochs=3))
    for k, rows in enumerate(alone):
        assert rows[-1]["val_loss"] < rows[0]["val_loss"] and rows[-1]["train_loss"] < rows[0]["train_loss"]
        for row, pack_rows in zip(rows, packed, strict=True):
            assert pack_rows[k].keys() == row.keys()
            for key in ("train_loss", "val_loss", "val_accuracy"):
                assert pack_rows[k][key] == pytest.approx(row[key], rel=1e-4), (k, row["epoch"], key)


def test_a_pickle_naming_other_code_is_refused_not_run(tmp_path: Path) -> None:
    """A data_dir may come from a spec sent over HTTP: its pickles must not run code."""
    import pickle

    folder = write_cifar10_miniature(tmp_path / "evil")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Payload(), b"labels": []}))
    with pytest.raises(ValueError, match="data_batch_2.*not allowed"):
        Cifar10CNN(data_dir=str(folder))
    assert not marker.exists()
