"""Text normalisation shared by exact dedup and the blocklist's content rules."""

from __future__ import annotations

import re
import unicodedata

import xxhash

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lower-case, NFKC, punctuation and whitespace folded to single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _NON_WORD.sub(" ", text).strip()


def exact_key(text: str) -> bytes:
    """8-byte key of the normalised text: copies that differ only in case, spacing or punctuation
    share it. Used as the ``docs.clean`` partition key so copies meet in one partition."""
    return xxhash.xxh3_64_digest(normalise(text).encode("utf-8", "surrogatepass"))
