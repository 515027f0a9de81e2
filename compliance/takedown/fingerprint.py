"""Token-sequence fingerprints: find the bytes of a removed document anywhere in a shard.

A document is fingerprinted by the hashes of its ``k``-token windows (every ``stride``-th window, so the
fingerprint stays small). Verification rolls the same hash over every live shard's token stream in one
vectorised pass (polynomial hash modulo 2**64, numpy's uint64 arithmetic wraps) and reports any window
that matches. ``k`` is small enough to catch a removed document that was re-crawled under another URL
and tokenised inside a longer page, and large enough that common phrases do not match by chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so the hash is a bijection on each position
WINDOW = 32
STRIDE = 8


def window_hashes(tokens: npt.ArrayLike, k: int = WINDOW) -> npt.NDArray[np.uint64]:
    """Hash of every ``k``-token window (``len - k + 1`` values; empty if the stream is shorter)."""
    t = np.asarray(tokens).astype(np.uint64) + np.uint64(1)  # token 0 must still move the hash
    n = len(t)
    if n < k:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        # prefix[i+1] = prefix[i] * B + t[i] (Horner), vectorised per block: inside a block the partial
        # sums are cumsum(t[j] * B^(m-1-j)) times B^-(m-1-i); B is odd, so it is invertible mod 2**64.
        prefix = np.zeros(n + 1, dtype=np.uint64)
        powers = np.ones(n + 1, dtype=np.uint64)
        np.multiply.accumulate(np.full(n, BASE, dtype=np.uint64), out=powers[1:])
        acc = np.uint64(0)
        chunk = 1 << 16
        for start in range(0, n, chunk):
            block = t[start : start + chunk]
            m = len(block)
            rev_pows = powers[:m][::-1]
            cums = np.cumsum(block * rev_pows, dtype=np.uint64)
            local = cums * _inverse_powers(m)  # sum_{j<=i} block[j] * B^(i-j)
            prefix[start + 1 : start + m + 1] = acc * powers[1 : m + 1] + local
            acc = prefix[start + m]
        return prefix[k:] - prefix[: n - k + 1] * powers[k]


_INV_CACHE: dict[int, npt.NDArray[np.uint64]] = {}


def _modinv_pow2_64(a: int) -> int:
    """Inverse of an odd ``a`` modulo 2**64 (Newton iteration)."""
    x = a
    for _ in range(6):
        x = (x * (2 - a * x)) % (1 << 64)
    return x


def _inverse_powers(m: int) -> npt.NDArray[np.uint64]:
    """``B^-(m-1-i)`` for i in 0..m-1 (cached per block length)."""
    cached = _INV_CACHE.get(m)
    if cached is not None:
        return cached
    inv = np.uint64(_modinv_pow2_64(int(BASE)))
    with np.errstate(over="ignore"):
        p = np.ones(m, dtype=np.uint64)
        if m > 1:
            np.multiply.accumulate(np.full(m - 1, inv, dtype=np.uint64), out=p[1:])
    out = p[::-1].copy()
    _INV_CACHE[m] = out
    return out


@dataclass(frozen=True)
class Fingerprint:
    doc_id: str
    hashes: tuple[int, ...]
    tokens: int

    @classmethod
    def of(cls, doc_id: str, tokens: npt.ArrayLike, k: int = WINDOW, stride: int = STRIDE) -> Fingerprint:
        arr = np.asarray(tokens)
        if len(arr) and len(arr) < k:
            # Short documents: one window of their full length (checked exactly on a match).
            return cls(doc_id, (int(window_hashes(arr, len(arr))[0]),), len(arr))
        h = window_hashes(arr, k)[::stride]
        return cls(doc_id, tuple(int(x) for x in h), len(arr))


def scan(tokens: npt.ArrayLike, table: npt.NDArray[np.uint64], k: int = WINDOW) -> npt.NDArray[np.int64]:
    """Positions in ``tokens`` whose ``k``-window hash is in the sorted ``table``."""
    if len(table) == 0:
        return np.zeros(0, dtype=np.int64)
    h = window_hashes(tokens, k)
    if len(h) == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.searchsorted(table, h)
    idx[idx >= len(table)] = 0
    hit = table[idx] == h
    return np.nonzero(hit)[0].astype(np.int64)
