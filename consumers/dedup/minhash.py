"""MinHash signatures and LSH band keys that are identical on every machine.

Defaults are datatrove's FineWeb ``MinhashConfig``: word 5-grams after text normalisation, 14 bands x 8
rows = 112 hashes of 64 bits, seed 1, so the LSH threshold is about (1/14)^(1/8) = 0.72.

Everything is integer arithmetic on fixed-width values, so a signature depends only on the text and
the parameters, never on the process, the machine, ``PYTHONHASHSEED`` or the NumPy version:

* tokens are hashed with xxh3-64 (a specified, platform-independent hash);
* a shingle is a keyed combination of its 5 token hashes, finalised with MurmurHash3's ``fmix64``;
* hash ``i`` of a shingle is ``mix(a_i * x + b_i mod 2^64)`` with ``a_i, b_i`` drawn from SplitMix64
  seeded with ``seed`` (not from NumPy's generators, whose streams are not a stable API), and
  ``mix(h) = (h ^ h >> 31) * C``. The final multiply matters: without it the 112 values of a
  signature are correlated and the band detection rate falls below the S-curve at high similarity
  (measured: 0.995 instead of 0.9996 at s = 0.9);
* a band key is xxh3-64 of the band's 8 values (little-endian) seeded with the band index.

Tokenisation splits on whitespace after normalisation instead of datatrove's spaCy word tokenizer
(6.5 of its 8.4 ms per document, see docs/dedup.md); CJK ideographs and kana are one token each,
because those scripts do not separate words with spaces.

One caveat: normalisation uses Python's ``unicodedata``, whose Unicode version follows the Python
version (3.11: Unicode 14). Text made only of characters assigned by Unicode 14 hashes identically on
every supported Python.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xxhash

from consumers.textnorm import exact_key

MASK64 = (1 << 64) - 1
_U31 = np.uint64(31)
_U33 = np.uint64(33)
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_MIX = np.uint64(0xBF58476D1CE4E5B9)

_NUMBER = re.compile(r"\d+(?:[.,،٫⎖⎗⎘]\d+)?")
_NON_WORD = re.compile(r"[\W_]+")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAS_CJK = re.compile(f"[{_CJK}]")
_CJK_CHAR = re.compile(f"([{_CJK}])")


class SignatureError(ValueError):
    """Invalid MinHash parameters."""


@dataclass(frozen=True)
class MinHashParams:
    n_grams: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("n_grams", "bands", "rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SignatureError(f"minhash {name} must be a positive integer, got {value!r}")
        if not 0 <= self.seed <= MASK64:
            raise SignatureError(f"minhash seed must fit in 64 bits, got {self.seed}")

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def threshold(self) -> float:
        """Similarity at which the S-curve is steepest, about (1/b)^(1/r)."""
        return float((1.0 / self.bands) ** (1.0 / self.rows))

    def detection_probability(self, s: float) -> float:
        """P(a pair with Jaccard ``s`` shares at least one band) = 1 - (1 - s^r)^b."""
        return float(1.0 - (1.0 - s**self.rows) ** self.bands)

    def jaccard_from_bands(self, matched: int) -> float:
        """Similarity estimate from the number of equal band keys: E[matched / b] = s^r."""
        if matched <= 0:
            return 0.0
        return float(min(1.0, matched / self.bands) ** (1.0 / self.rows))

    def describe(self) -> dict[str, int | str]:
        return {
            "scheme": "headrace-minhash/1",
            "n_grams": self.n_grams,
            "bands": self.bands,
            "rows": self.rows,
            "seed": self.seed,
        }


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def _stream(seed: int, n: int) -> list[int]:
    out = []
    state = seed
    for _ in range(n):
        state, value = _splitmix64(state)
        out.append(value)
    return out


@lru_cache(maxsize=1)
def _combining_marks() -> tuple[re.Pattern[str], re.Pattern[str]]:
    # Built on first use (about 0.3 s): every nonspacing mark (category Mn), as datatrove strips. The
    # BMP class lists single characters so ``re`` compiles it to a bitmap (a class with ranges beyond
    # U+FFFF is matched range by range, 20x slower); astral marks get their own, rarely used pattern.
    bmp: list[str] = []
    astral: list[str] = []
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)) == "Mn":
            (bmp if cp < 0x10000 else astral).append(f"\\U{cp:08x}")
    return re.compile("[" + "".join(bmp) + "]+"), re.compile("[" + "".join(astral) + "]+")


_ASTRAL_CHAR = re.compile("[\U00010000-\U0010ffff]")


def _drop_mark(m: re.Match[str]) -> str:
    c = m.group()
    return "" if unicodedata.category(c) == "Mn" else c


def simplify(text: str) -> str:
    """datatrove's ``TextNormConfig`` defaults: lower case, numbers -> 0, punctuation and whitespace
    folded to single spaces, diacritics removed (plus NFKC, so compatibility forms match)."""
    text = unicodedata.normalize("NFKC", text).lower()
    if not text.isascii():
        bmp, _astral = _combining_marks()
        text = bmp.sub("", unicodedata.normalize("NFD", text))
        # Characters beyond the BMP (emoji, historic scripts) are rare: look each one up instead of
        # matching a class of ranges over the whole text (20x slower than the rest of this function).
        text = _ASTRAL_CHAR.sub(_drop_mark, text)
        text = unicodedata.normalize("NFC", text)
    text = _NUMBER.sub("0", text)
    text = _NON_WORD.sub(" ", text)
    if not text.isascii() and _HAS_CJK.search(text):
        text = _CJK_CHAR.sub(r" \1 ", text)
        text = " ".join(text.split())
    return text.strip()


def tokens(text: str) -> list[bytes]:
    """The words MinHash shingles are built from (UTF-8 bytes)."""
    simple = simplify(text)
    return simple.encode("utf-8", "surrogatepass").split() if simple else []


def _fmix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> _U33)
    x = x * _FMIX1
    x = x ^ (x >> _U33)
    x = x * _FMIX2
    return x ^ (x >> _U33)


class MinHasher:
    """Computes shingles, signatures and band keys. Thread-safe (scratch buffers are per thread)."""

    def __init__(self, params: MinHashParams | None = None) -> None:
        self.params = params or MinHashParams()
        p = self.params
        values = _stream(p.seed, 2 * p.num_perm + p.n_grams)
        self._a = np.array([v | 1 for v in values[: p.num_perm]], dtype=np.uint64)
        self._b = np.array(values[p.num_perm : 2 * p.num_perm], dtype=np.uint64)
        self._k = np.array([v | 1 for v in values[2 * p.num_perm :]], dtype=np.uint64)
        self._local = threading.local()

    # -- shingles ------------------------------------------------------------------------------
    def shingles(self, text: str) -> np.ndarray:
        """uint64 hashes of the word n-grams (a document shorter than n words is one shingle)."""
        toks = tokens(text)
        return self.shingles_of_tokens(toks)

    def shingles_of_tokens(self, toks: list[bytes]) -> np.ndarray:
        if not toks:
            return np.empty(0, dtype=np.uint64)
        t = np.fromiter(map(xxhash.xxh3_64_intdigest, toks), dtype=np.uint64, count=len(toks))
        n = self.params.n_grams
        width = min(n, len(t))
        count = len(t) - width + 1
        with np.errstate(over="ignore"):
            acc = t[:count] * self._k[0]
            for j in range(1, width):
                acc += t[j : j + count] * self._k[j]
            return _fmix64(acc)

    # -- signatures ----------------------------------------------------------------------------
    def _scratch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        bufs = getattr(self._local, "bufs", None)
        if bufs is None or bufs[0].size < size:
            cap = max(size, 1 << 16)
            bufs = (np.empty(cap, dtype=np.uint64), np.empty(cap, dtype=np.uint64))
            self._local.bufs = bufs
        return bufs

    def signature_of_shingles(self, shingles: np.ndarray) -> np.ndarray | None:
        """112 uint64 minimums, or None for a document without words."""
        n = len(shingles)
        if n == 0:
            return None
        k = self.params.num_perm
        # Large documents in slices, so the scratch matrix stays bounded (and in cache).
        step = 2048
        out: np.ndarray | None = None
        h_buf, t_buf = self._scratch(min(n, step) * k)
        with np.errstate(over="ignore"):
            for start in range(0, n, step):
                part = shingles[start : start + step]
                m = len(part)
                h = h_buf[: m * k].reshape(m, k)
                t = t_buf[: m * k].reshape(m, k)
                np.multiply(part[:, None], self._a, out=h)
                h += self._b
                np.right_shift(h, _U31, out=t)
                h ^= t
                h *= _MIX
                mins = h.min(axis=0)
                out = mins if out is None else np.minimum(out, mins)
        return out

    def signature(self, text: str) -> np.ndarray | None:
        return self.signature_of_shingles(self.shingles(text))

    def band_keys(self, signature: np.ndarray) -> list[int]:
        """One 64-bit key per band: xxh3-64 of the band's little-endian values, seeded with its index."""
        raw = signature.astype("<u8", copy=False).tobytes()
        width = 8 * self.params.rows
        return [xxhash.xxh3_64_intdigest(raw[i * width : (i + 1) * width], seed=i) for i in range(self.params.bands)]

    def keys(self, text: str) -> DedupKeys:
        """Exact key and band keys of a document (no band keys when it has no words)."""
        sig = self.signature(text)
        return DedupKeys(exact=exact_key_int(text), bands=tuple(self.band_keys(sig)) if sig is not None else ())


@dataclass(frozen=True, slots=True)
class DedupKeys:
    exact: int
    bands: tuple[int, ...]


def exact_key_int(text: str) -> int:
    """``consumers.textnorm.exact_key`` (the ``docs.clean`` partition key) as an unsigned integer."""
    return int.from_bytes(exact_key(text), "big")
