"""The ``char_lm`` workload: corpus, batches, the transformer and its packing under vmap."""

from __future__ import annotations

import hashlib
import math
import random
import sysconfig
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from workers.workloads import get_workload
from workers.workloads.char_lm import CharLM

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A few KB of text with non-ASCII characters; 90/10 split of its length.
TEXT = "".join(f"line {i}: the quick brown fox — jumps over {i * 7 % 13} lazy dogs. héllo ☃\n" for i in range(60))
TINY = {"n_layer": 1, "d_model": 16, "n_head": 2, "context": 12, "batch_size": 5, "steps_per_epoch": 4,
        "val_windows": 7, "val_batch_size": 3}  # fmt: skip


def _parts(text: str) -> tuple[str, str]:
    n_train = len(text) - math.ceil(len(text) * 0.1)
    return text[:n_train], text[n_train:]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture
def tiny(text_file: Path) -> CharLM:
    return CharLM(text_path=str(text_file), **TINY)


def _decode(workload: CharLM, row: torch.Tensor) -> str:
    return "".join(workload.vocab[i] for i in row.tolist())


def test_registered_under_char_lm(text_file: Path) -> None:
    workload = get_workload("char_lm", {"text_path": str(text_file), **TINY})
    assert isinstance(workload, CharLM)
    assert workload.can_pack and workload.metrics == ("val_loss", "val_bpc") and workload.mode == "min"


def test_vocab_is_the_sorted_characters_of_the_text(tiny: CharLM) -> None:
    assert tiny.vocab == "".join(sorted(set(TEXT)))


def test_train_batches_are_shifted_windows_of_the_training_part(tiny: CharLM) -> None:
    train_text, _ = _parts(TEXT)
    batches = list(tiny.train_batches(epoch=1, seed=0))
    assert len(batches) == tiny.steps_per_epoch() == 4
    for x, y in batches:
        assert x.shape == y.shape == (5, 12)
        assert x.dtype == y.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        for x_row, y_row in zip(x, y):
            window = _decode(tiny, x_row) + tiny.vocab[int(y_row[-1])]  # context + 1 characters
            assert window in train_text


def test_train_batches_depend_only_on_epoch_and_seed(tiny: CharLM) -> None:
    def epoch(e: int, seed: int) -> torch.Tensor:
        return torch.stack([x for x, _ in tiny.train_batches(e, seed)])  # (steps, B, T)

    state = torch.get_rng_state()
    first = epoch(2, 7)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    torch.manual_seed(12345)  # another global state changes nothing
    assert torch.equal(epoch(2, 7), first)
    assert not torch.equal(epoch(3, 7), first)
    assert not torch.equal(epoch(2, 8), first)


def test_val_batches_are_fixed_evenly_spaced_windows_of_the_validation_part(tmp_path: Path) -> None:
    text = "".join(random.Random(0).choices("abcdefghij", k=3000))  # every 12-character window is unique
    text_file = tmp_path / "random.txt"
    text_file.write_text(text, encoding="utf-8")
    tiny = CharLM(text_path=str(text_file), **TINY)
    _, val_text = _parts(text)
    batches = tiny.val_batches()
    assert [x.shape[0] for x, _ in batches] == [3, 3, 1]
    x = torch.cat([x for x, _ in batches])  # (7, T)
    y = torch.cat([y for _, y in batches])
    assert torch.equal(x[:, 1:], y[:, :-1]) and x.dtype == y.dtype == torch.int64
    assert _decode(tiny, x[0]) == val_text[:12]  # first start 0 ...
    assert _decode(tiny, y[-1]) == val_text[-12:]  # ... last window ends at the end
    starts = [val_text.find(_decode(tiny, row)) for row in x]
    gaps = {b - a for a, b in zip(starts, starts[1:])}
    assert min(gaps) > 0 and max(gaps) - min(gaps) <= 1  # evenly spaced, up to rounding
    again = CharLM(text_path=str(text_file), **TINY).val_batches()
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))


def test_build_model_is_seeded_and_leaves_global_rng_alone(tiny: CharLM) -> None:
    state = torch.get_rng_state()
    a, b, c = tiny.build_model(0), tiny.build_model(0), tiny.build_model(1)
    assert torch.equal(torch.get_rng_state(), state)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        assert pa.dtype == torch.float32
        if pa.std() > 0:  # random (not the LayerNorm ones and zeros)
            assert not torch.equal(pa, pc), name
    assert a.training


def test_model_is_causal(tiny: CharLM) -> None:
    model = tiny.build_model(0)
    x, _ = next(tiny.train_batches(1, 0))  # (B, T)
    changed = x.clone()
    changed[:, 6] = (changed[:, 6] + 1) % len(tiny.vocab)
    with torch.no_grad():
        before, after = model(x), model(changed)  # (B, T, V)
    assert before.shape == (5, 12, len(tiny.vocab))
    torch.testing.assert_close(after[:, :6], before[:, :6], rtol=0, atol=0)
    assert not torch.allclose(after[:, 6:], before[:, 6:])


def test_head_is_the_token_embedding_and_there_are_no_buffers(tiny: CharLM) -> None:
    model = tiny.build_model(0)
    x, _ = next(tiny.train_batches(1, 0))  # (B, T)
    unused = next(v for v in range(len(tiny.vocab)) if not (x == v).any())
    with torch.no_grad():
        model.tok_emb.weight[unused] = 0.0  # the input embeddings stay as they were
        logits = model(x)  # (B, T, V)
    assert torch.equal(logits[..., unused], torch.zeros_like(logits[..., unused]))
    assert logits[..., unused - 1].abs().min() > 0
    d, v = 16, len(tiny.vocab)  # tok_emb + pos_emb + 1 block (12 d^2 + 13 d) + ln_f, no separate head
    assert sum(p.numel() for p in model.parameters()) == v * d + 12 * d + 12 * d * d + 13 * d + 2 * d
    assert list(model.buffers()) == []
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules())


def test_longer_input_than_context_is_refused(tiny: CharLM) -> None:
    with pytest.raises(ValueError, match="context=12"):
        tiny.build_model(0)(torch.zeros(1, 13, dtype=torch.int64))


def test_loss_is_cross_entropy_and_bpc_is_in_bits(tiny: CharLM) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 12, 9, generator=generator) * 3  # (B, T, V)
    target = torch.randint(0, 9, (3, 12), generator=generator)  # (B, T)
    expected = F.cross_entropy(logits.reshape(-1, 9), target.reshape(-1))
    torch.testing.assert_close(tiny.loss(logits, target), expected)
    metrics = tiny.evaluate(logits, target)
    assert metrics.keys() == {"val_loss", "val_bpc"}
    assert metrics["val_bpc"] == pytest.approx(float(expected) / math.log(2), rel=1e-6)


def test_untrained_model_scores_about_a_uniform_guess(tiny: CharLM) -> None:
    model = tiny.build_model(0)
    x, y = tiny.val_batches()[0]
    with torch.no_grad():
        bpc = tiny.evaluate(model(x), y)["val_bpc"]
    assert bpc == pytest.approx(math.log2(len(tiny.vocab)), rel=0.05)


@pytest.mark.parametrize("shared", [True, False], ids=["shared_batch", "batch_per_member"])
def test_vmap_over_stacked_copies_gives_each_copy_its_loss_and_grads(tiny: CharLM, shared: bool) -> None:
    models = [tiny.build_model(seed) for seed in range(3)]
    params, buffers = stack_module_state(models)  # each (K, ...)
    assert buffers == {}
    base = tiny.build_model(0).to("meta")

    def member_loss(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return tiny.loss(functional_call(base, (p, b), (x,)), y)  # ()

    batches = [next(tiny.train_batches(1, seed)) for seed in range(3)]
    if shared:
        x, y = batches[0]  # (B, T)
        losses = vmap(member_loss, in_dims=(0, 0, None, None))(params, buffers, x, y)  # (K,)
    else:
        x = torch.stack([b[0] for b in batches])  # (K, B, T)
        y = torch.stack([b[1] for b in batches])
        losses = vmap(member_loss, in_dims=(0, 0, 0, 0))(params, buffers, x, y)  # (K,)
    losses.sum().backward()
    for k, model in enumerate(models):
        xk, yk = batches[0] if shared else batches[k]
        loss = tiny.loss(model(xk), yk)
        loss.backward()
        torch.testing.assert_close(losses[k], loss.detach())
        for name, param in model.named_parameters():
            torch.testing.assert_close(params[name].grad[k], param.grad, msg=name)


def test_a_few_adam_steps_lower_the_training_loss(tiny: CharLM) -> None:
    model = tiny.build_model(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for epoch in range(1, 11):
        for x, y in tiny.train_batches(epoch, 0):
            loss = tiny.loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert sum(losses[-4:]) < 0.75 * sum(losses[:4])  # 40 steps


def test_max_chars_caps_a_file_and_the_fingerprint_names_it(text_file: Path) -> None:
    workload = CharLM(text_path=str(text_file), max_chars=1000, **TINY)
    capped = TEXT[:1000]
    assert workload.vocab == "".join(sorted(set(capped)))
    fingerprint = workload.fingerprint()
    assert fingerprint["source"] == str(text_file.resolve())
    assert fingerprint["sha256"] == hashlib.sha256(capped.encode("utf-8")).hexdigest()
    assert fingerprint["chars"] == "1000" and fingerprint["vocab"] == str(len(set(capped)))


def test_rewritten_file_is_read_again(text_file: Path) -> None:
    before = CharLM(text_path=str(text_file), **TINY).fingerprint()["sha256"]
    text_file.write_text(TEXT.upper() + "!", encoding="utf-8")  # another size: a new cache key
    assert CharLM(text_path=str(text_file), **TINY).fingerprint()["sha256"] != before


def test_default_corpus_is_the_stdlib_sources_in_name_order() -> None:
    folder = Path(sysconfig.get_paths()["stdlib"])
    parts = []
    for path in sorted(folder.glob("*.py"), key=lambda p: p.name):
        try:
            parts.append(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            pass
    text = "".join(parts)[:50_000]
    workload = CharLM(max_chars=50_000)
    fingerprint = workload.fingerprint()
    assert fingerprint.keys() == {"source", "sha256", "chars", "vocab", "python"}
    assert fingerprint["source"] == "stdlib"
    assert fingerprint["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert fingerprint["chars"] == "50000" and workload.vocab == "".join(sorted(set(text)))
    assert CharLM(max_chars=50_000).fingerprint() == fingerprint


def test_default_corpus_at_default_size() -> None:
    fingerprint = CharLM().fingerprint()
    assert fingerprint["chars"] == "1000000"  # the stdlib has several million characters
    assert 80 <= int(fingerprint["vocab"]) <= 400


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ({"d_model": 18, "n_head": 4}, "d_model"),
        *[({name: 0}, name) for name in ("max_chars", "n_layer", "d_model", "n_head", "context", "batch_size",
                                         "steps_per_epoch", "val_windows", "val_batch_size")],
        ({"batch_size": 2.5}, "batch_size"),
        ({"context": True}, "context"),
        ({"bf16": "yes"}, "bf16"),
        ({"grad_clip_norm": 0}, "grad_clip_norm"),
        ({"text_path": 3}, "text_path"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_naming_the_argument(args: dict, argument: str, text_file: Path) -> None:
    with pytest.raises(ValueError, match=argument):
        CharLM(**{"text_path": str(text_file), **TINY, **args})


def test_context_longer_than_the_validation_part_is_refused(text_file: Path) -> None:
    n_val = len(_parts(TEXT)[1])
    with pytest.raises(ValueError, match=rf"context must be shorter than the corpus's validation part \({n_val} "):
        CharLM(text_path=str(text_file), **{**TINY, "context": n_val})
    CharLM(text_path=str(text_file), **{**TINY, "context": n_val - 1})  # the longest that fits


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="text_path .*nope.txt"):
        CharLM(text_path=str(tmp_path / "nope.txt"))


def test_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="text_path"):
        CharLM(text_path=str(tmp_path))


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="text_path .*empty.txt.* is empty"):
        CharLM(text_path=str(path))


def test_non_utf8_file_is_refused_with_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("héllo wörld".encode() + b" caf\xe9 " + b"x" * 1000)
    with pytest.raises(ValueError, match=r"text_path .*latin1.txt.* byte offset 17\b"):
        CharLM(text_path=str(path))


def test_utf8_character_cut_by_the_read_limit_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "snowmen.txt"
    path.write_text("a" + "☃" * 400, encoding="utf-8")  # 1 + 3 * 400 bytes
    # max_chars=300 decodes the first 1200 bytes, which end inside the last snowman
    workload = CharLM(text_path=str(path), max_chars=300, **{**TINY, "context": 20})
    assert workload.fingerprint()["chars"] == "300" and workload.vocab == "a☃"


def test_initialization_is_gpt2_style(text_file: Path) -> None:
    workload = CharLM(text_path=str(text_file), **{**TINY, "n_layer": 2, "d_model": 64})
    params = dict(workload.build_model(0).named_parameters())
    assert float(params["blocks.0.attn.qkv.weight"].std()) == pytest.approx(0.02, rel=0.05)
    for name in ("blocks.1.attn.proj.weight", "blocks.1.mlp.proj.weight"):  # 0.02 / sqrt(2 * n_layer)
        assert float(params[name].std()) == pytest.approx(0.01, rel=0.1), name
    assert torch.equal(params["blocks.0.ln1.weight"], torch.ones(64))
    assert not any(params[name].any() for name in params if name.endswith("bias"))
