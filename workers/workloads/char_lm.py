"""``char_lm``: a small decoder-only transformer predicting the next character of real text.

The text is any UTF-8 file (``text_path``) or, by default, the Python standard
library's own top-level ``.py`` sources, which every Python install carries (no
download). The first 90 % of the characters train, the last 10 % validate. The
model is a GPT-2-style pre-LayerNorm transformer (Radford et al. 2019; Karpathy's
nanoGPT); it reports ``val_loss`` (nats per character) and ``val_bpc`` (bits per
character).
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import math
import os
import platform
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from workers.workloads._args import MAX_BATCH, WorkloadArgs
from workers.workloads._base import Batch, Workload, check_training_options
from workers.workloads._tabular import check_positive_int

__all__ = ["CharLM", "CharTransformer"]

VAL_FRACTION = 0.1
"""Fraction of the corpus, taken from its end, held out for validation."""

_SEED_STRIDE = 1_000_003  # a prime: seed * stride + epoch seeds one epoch's window generator


class CharTransformer(nn.Module):
    """Decoder-only transformer over token indices (GPT-2 layout, pre-LayerNorm, no dropout).

    ``tok_emb + pos_emb -> n_layer x Block -> LayerNorm -> head``, where each block is
    ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))`` (causal multi-head self-attention via
    ``scaled_dot_product_attention``; MLP ``d_model -> 4 d_model -> d_model`` with GELU).
    The head is tied to the token embedding (Press & Wolf 2017): logits are
    ``ln_f(x) @ tok_emb.weight.T``, no bias. It is computed from ``tok_emb.weight`` in
    :meth:`forward` rather than by a ``head`` Linear sharing that Parameter, because
    ``module.to("meta")`` (the packed trainer's structure-only copy) unties shared
    Parameters, after which ``functional_call`` would leave the head on the meta device.
    Parameters only, no buffers.

    Initialization (GPT-2): every Linear and Embedding weight ~ N(0, 0.02²), biases 0,
    LayerNorms weight 1 and bias 0; the two projections that write into the residual
    stream per block get std ``0.02 / sqrt(2 n_layer)``. It draws from torch's global
    generator: seed it (or fork it) around the construction.

    Args:
        vocab: Vocabulary size V.
        context: Longest input length T the position embedding covers.
        n_layer, d_model, n_head: Depth, width, attention heads (``d_model % n_head == 0``).
    """

    def __init__(self, *, vocab: int, context: int, n_layer: int, d_model: int, n_head: int) -> None:
        super().__init__()
        self.context = context
        self.tok_emb = nn.Embedding(vocab, d_model)
        self.pos_emb = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(param)
            elif ".ln" in name or name.startswith("ln_"):
                nn.init.ones_(param)
            else:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(param, mean=0.0, std=std)

    def forward(self, idx: Tensor) -> Tensor:
        """Next-token logits.

        Args:
            idx: Token indices, shape ``(B, T)``, int64, ``T <= context``.

        Returns:
            Logits, shape ``(B, T, V)``, float32 (bfloat16 under autocast); position t
            depends only on ``idx[:, :t + 1]``.

        Raises:
            ValueError: ``T > context``.
        """
        t = idx.shape[-1]
        if t > self.context:
            raise ValueError(f"input length must be <= context={self.context}, but got {t}; feed shorter windows")
        pos = torch.arange(t, device=idx.device)  # (T,)
        x = self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, D)
        for block in self.blocks:
            x = block(x)  # (B, T, D)
        return F.linear(self.ln_f(x), self.tok_emb.weight)  # (B, T, V): the tied head


class _Block(nn.Module):
    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = _CausalSelfAttention(d_model, n_head)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = _MLP(d_model)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))  # (B, T, D)
        return x + self.mlp(self.ln2(x))  # (B, T, D)


class _CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)  # 3 x (B, T, D)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D/H)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D/H)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))  # (B, T, D)


class _MLP(nn.Module):
    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.gelu = nn.GELU()
        self.proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.gelu(self.fc(x)))  # (B, T, 4D) -> (B, T, D)


@dataclass(frozen=True)
class _Corpus:
    """A character corpus as indices into its sorted vocabulary (read-only, shared per process)."""

    tokens: Tensor  # (N,) int64 indices into vocab
    vocab: str  # the sorted distinct characters, V of them
    sha256: str  # of the corpus text, UTF-8 encoded
    source: str  # "stdlib" or the file's absolute path


@functools.lru_cache(maxsize=8)  # per process; ~8 bytes per character each
def _load_corpus(text_path: str | None, max_chars: int, stat: tuple[int, int] | None) -> _Corpus:
    # ``stat`` (mtime_ns, size) is in the cache key so that a rewritten file is read again.
    text = _stdlib_text(max_chars) if text_path is None else _file_text(text_path, max_chars)
    vocab = "".join(sorted(set(text)))  # 3x faster than torch.unique on the code points
    codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32).long()  # (N,) code points
    vocab_codes = torch.tensor([ord(c) for c in vocab])  # (V,) ascending
    index_of = torch.zeros(int(vocab_codes[-1]) + 1, dtype=torch.int64)  # (max code point + 1,)
    index_of[vocab_codes] = torch.arange(len(vocab))
    return _Corpus(
        tokens=index_of[codes],  # (N,)
        vocab=vocab,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        source="stdlib" if text_path is None else text_path,
    )


def _stdlib_text(max_chars: int) -> str:
    """The standard library's top-level ``*.py`` files, sorted by name, concatenated, first ``max_chars``.

    Files that are not valid UTF-8 are skipped; files are read only until ``max_chars``
    characters are in hand.
    """
    folder = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    total = 0
    for path in sorted(folder.glob("*.py"), key=lambda p: p.name):
        if total >= max_chars:
            break
        try:
            part = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        parts.append(part)
        total += len(part)
    return "".join(parts)[:max_chars]


def _file_text(path: str, max_chars: int) -> str:
    """The first ``max_chars`` characters of a UTF-8 file; reads at most ``4 * max_chars`` bytes.

    Raises:
        ValueError: the file cannot be read, is not UTF-8 (names the byte offset) or is empty.
    """
    limit = 4 * max_chars  # a UTF-8 character is at most 4 bytes
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"text_path must name a readable UTF-8 text file, but reading {path!r} failed: {e}") from e
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data[:limit], final=len(data) <= limit)
    except UnicodeDecodeError as e:
        raise ValueError(
            f"text_path must name a UTF-8 text file, but {path!r} has invalid UTF-8 at byte offset {e.start} "
            f"({e.reason}); re-encode it, e.g. iconv -f <its encoding> -t UTF-8"
        ) from None
    if not text:
        raise ValueError(f"text_path must name a non-empty UTF-8 text file, but {path!r} is empty")
    return text[:max_chars]


class CharLMArgs(WorkloadArgs):
    """``char_lm``'s ``workload_args``, bounded (the model's size is checked by the tuner too)."""

    text_path: str | None = Field(None, description="A UTF-8 text file; null: the standard library corpus.")
    max_chars: int = Field(1_000_000, ge=1, le=100_000_000, description="Cap on the corpus length, in characters.")
    n_layer: int = Field(2, ge=1, le=128, description="Transformer blocks.")
    d_model: int = Field(64, ge=1, le=16_384, description="Width of the residual stream; divisible by n_head.")
    n_head: int = Field(4, ge=1, le=256, description="Attention heads.")
    context: int = Field(64, ge=1, le=32_768, description="Characters per window.")
    batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="Training windows per step.")
    steps_per_epoch: int = Field(50, ge=1, le=1_000_000, description="Training steps per epoch.")
    val_windows: int = Field(256, ge=1, le=1_000_000, description="Validation windows.")
    val_batch_size: int = Field(64, ge=1, le=MAX_BATCH, description="Validation windows per batch.")


class CharLM(Workload):
    """Character-level language model: a :class:`CharTransformer` trained on next-character prediction.

    Data: ``text_path``'s UTF-8 text, else the standard library's top-level ``.py``
    sources (sorted by name, concatenated; files that are not UTF-8 skipped), cut to
    ``max_chars`` characters. The vocabulary is the corpus's sorted distinct characters
    (96 for the default corpus); the first 90 % of the characters train, the
    last 10 % validate. An epoch is ``steps_per_epoch`` batches of ``batch_size``
    windows of ``context + 1`` characters at uniformly random starts in the training
    part, so an epoch means the same amount of training on any corpus; validation is
    ``val_windows`` windows at fixed, evenly spaced starts in the validation part.
    Each window predicts its last ``context`` characters from the ones before them.

    Metrics: ``val_loss``, mean cross-entropy in nats per character, and ``val_bpc``,
    the same in bits per character (``val_loss / ln 2``; a uniform guess over V
    characters scores ``log2 V``).

    Sizes, measured on CPython 3.11.7, torch 2.13 (CPU), the default corpus (its first
    million characters are ASCII: V = 96): the defaults have 110,336 parameters and
    train one epoch (50 steps of forward, backward and ``FusedAdam``) in ~1.5 s on one
    thread, ~0.9 s on two; validation takes ~0.1 s. Adam's settings matter at this
    size: after 8 epochs val_bpc is ~3.08 with lr 1e-3, ~2.87 with lr 3e-3 and betas
    (0.9, 0.98), ~3.3 with lr 1e-2 and ~3.43 with lr 3e-4.

    GPU preset (nanoGPT's "shakespeare_char" size, 10.78 M parameters), not measured
    on a GPU: ``n_layer=6, d_model=384, n_head=6, context=256, batch_size=64,
    bf16=True``; on two CPU threads one epoch of it takes ~5 min.

    Packing: on CUDA, ``vmap`` batches ``scaled_dot_product_attention`` (flash,
    memory-efficient and cuDNN kernels have batching rules); on the CPU (torch 2.13)
    it runs the members' attentions one after another (a "performance drop"
    warning), so a CPU pack is no faster than its members trained in turn.

    Args:
        text_path: A UTF-8 text file, or ``None`` for the standard library corpus. A
            relative path is resolved against the current folder of the process that
            builds the workload (Ray workers may run elsewhere): prefer absolute paths,
            present on every node.
        max_chars: Cap on the corpus length, in characters (a file is read only that far).
        n_layer: Transformer blocks.
        d_model: Width of the residual stream; divisible by ``n_head``.
        n_head: Attention heads.
        context: Characters the model sees per window (its longest input).
        batch_size: Training windows per step.
        steps_per_epoch: Training steps (batches) per epoch.
        val_windows: Validation windows.
        val_batch_size: Validation windows per batch (the last batch may be smaller).
        bf16, grad_clip_norm: see :class:`Workload`.

    Raises:
        ValueError: an integer argument is not an int >= 1; ``d_model`` is not divisible
            by ``n_head``; ``bf16`` or ``grad_clip_norm`` is invalid; ``text_path`` is
            missing, unreadable, not UTF-8 or empty; ``context`` is not shorter than the
            training or the validation part. Each message names the argument.
    """

    name = "char_lm"
    metrics = ("val_loss", "val_bpc")
    default_metric = "val_loss"
    mode = "min"
    can_pack = True
    Args = CharLMArgs

    def __init__(
        self,
        *,
        text_path: str | None = None,
        max_chars: int = 1_000_000,
        n_layer: int = 2,
        d_model: int = 64,
        n_head: int = 4,
        context: int = 64,
        batch_size: int = 32,
        steps_per_epoch: int = 50,
        val_windows: int = 256,
        val_batch_size: int = 64,
        bf16: bool = False,
        grad_clip_norm: float | None = None,
    ) -> None:
        self.max_chars = check_positive_int("max_chars", max_chars)
        self.n_layer = check_positive_int("n_layer", n_layer)
        self.d_model = check_positive_int("d_model", d_model)
        self.n_head = check_positive_int("n_head", n_head)
        self.context = check_positive_int("context", context)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.epoch_steps = check_positive_int("steps_per_epoch", steps_per_epoch)
        self.val_windows = check_positive_int("val_windows", val_windows)
        self.val_batch_size = check_positive_int("val_batch_size", val_batch_size)
        if d_model % n_head:
            raise ValueError(
                f"d_model must be divisible by n_head, but got d_model={d_model}, n_head={n_head}; "
                f"e.g. d_model={n_head * max(1, round(d_model / n_head))}"
            )
        self.bf16, self.grad_clip_norm = check_training_options(bf16, grad_clip_norm)
        self._corpus = _corpus(text_path, max_chars)
        n = self._corpus.tokens.shape[0]
        self._n_train = n - math.ceil(n * VAL_FRACTION)
        for part, length in (("training", self._n_train), ("validation", n - self._n_train)):
            if context >= length:
                raise ValueError(
                    f"context must be shorter than the corpus's {part} part ({length} characters of {n}; "
                    f"validation is the last {VAL_FRACTION:.0%}), but got context={context}; "
                    "lower context or use a longer text (text_path, max_chars)"
                )

    @property
    def vocab(self) -> str:
        """The sorted distinct characters of the corpus; token i is ``vocab[i]``."""
        return self._corpus.vocab

    def build_model(self, seed: int) -> CharTransformer:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return CharTransformer(
                vocab=len(self._corpus.vocab),
                context=self.context,
                n_layer=self.n_layer,
                d_model=self.d_model,
                n_head=self.n_head,
            )

    def steps_per_epoch(self) -> int:
        return self.epoch_steps

    def train_batches(self, epoch: int, seed: int) -> Iterator[Batch]:
        """``steps_per_epoch`` batches ``(x, y)``, each ``(batch_size, context)`` int64, ``y`` = ``x`` shifted by one.

        Window starts are uniform over the training part, drawn from a
        ``torch.Generator`` seeded with ``seed * 1_000_003 + epoch`` (mod 2**63).
        """
        train = self._corpus.tokens[: self._n_train]  # (N_train,)
        generator = torch.Generator().manual_seed((seed * _SEED_STRIDE + epoch) % 2**63)
        for _ in range(self.epoch_steps):
            starts = torch.randint(0, self._n_train - self.context, (self.batch_size,), generator=generator)  # (B,)
            yield _windows(train, starts, self.context)

    def val_batches(self) -> list[Batch]:
        """``val_windows`` windows at evenly spaced starts over the validation part (first and last
        possible start included), in batches of ``val_batch_size``: x, y ``(b, context)`` int64."""
        val = self._corpus.tokens[self._n_train :]  # (N_val,)
        last = val.shape[0] - self.context - 1  # the last start whose window fits
        starts = torch.arange(self.val_windows) * last // max(self.val_windows - 1, 1)  # (W,)
        return [_windows(val, s, self.context) for s in starts.split(self.val_batch_size)]

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Mean cross-entropy, nats per character, of logits ``(B, T, V)`` against int64 targets ``(B, T)``."""
        # F.cross_entropy's value, written out: under vmap (packed trials) cross_entropy runs
        # a decomposition whose shape checks import sympy, slowing every pack worker's start.
        log_probs = F.log_softmax(output.float(), dim=-1)  # (B, T, V)
        return -log_probs.gather(-1, target.unsqueeze(-1)).mean()

    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        val_loss = float(self.loss(output, target))
        return {"val_loss": val_loss, "val_bpc": val_loss / math.log(2)}

    def fingerprint(self) -> dict[str, str]:
        """``source`` ("stdlib" or the file's absolute path), ``sha256`` of the UTF-8 corpus,
        ``chars`` (its length), ``vocab`` (V) and the ``python`` version (it picks the stdlib)."""
        corpus = self._corpus
        return {
            "source": corpus.source,
            "sha256": corpus.sha256,
            "chars": str(corpus.tokens.shape[0]),
            "vocab": str(len(corpus.vocab)),
            "python": platform.python_version(),
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source={self._corpus.source!r}, n_layer={self.n_layer}, "
            f"d_model={self.d_model}, context={self.context}, batch_size={self.batch_size})"
        )


def _corpus(text_path: object, max_chars: int) -> _Corpus:
    """Check ``text_path`` and load the (cached) corpus."""
    if text_path is None:
        return _load_corpus(None, max_chars, None)
    if not isinstance(text_path, (str, os.PathLike)):
        raise ValueError(f"text_path must be a file path (str) or null, but got {text_path!r}")
    path = os.path.abspath(os.fspath(text_path))
    try:
        stat = os.stat(path)
    except OSError as e:
        raise ValueError(
            f"text_path must name an existing UTF-8 text file, but {path!r} cannot be found ({e.strerror}); "
            "check the path (relative paths resolve against the current folder)"
        ) from None
    return _load_corpus(path, max_chars, (stat.st_mtime_ns, stat.st_size))


def _windows(tokens: Tensor, starts: Tensor, context: int) -> Batch:
    """Inputs and next-character targets of the windows ``tokens[s : s + context + 1]``."""
    index = starts[:, None] + torch.arange(context)  # (B, T)
    return tokens[index], tokens[index + 1]  # (B, T), (B, T)
