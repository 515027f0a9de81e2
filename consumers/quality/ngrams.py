"""Gopher's n-gram repetition measures, vectorised, with datatrove's exact semantics.

datatrove builds every n-gram as a Python string (``" ".join`` for the top n-gram, ``"".join`` for the
duplicated n-grams) for n = 2..10, which costs more than the word splitting. Here:

* top n-gram: n-grams of token ids get exact ranks (tokens contain no spaces, so equal id rows are
  exactly equal ``" ".join`` strings). Ties go to the n-gram that occurs first, as
  ``Counter.most_common(1)`` does.
* duplicated n-grams: datatrove compares ``"".join`` strings, where different token rows can be equal
  strings. Each n-gram is a substring of the concatenated words, hashed with a polynomial prefix hash
  (mod 2^64); positions whose hash is unique can never be duplicates and are skipped, the greedy
  left-to-right scan (skip n words after a duplicate) runs only over the rest, and every hash match is
  confirmed by comparing the substrings, so a hash collision cannot change the result.
"""

from __future__ import annotations

import numpy as np

_BASE = np.uint64(0x9E3779B97F4A7C15 | 1)
_BASE_INV = np.uint64(pow(int(_BASE), -1, 2**64))


class JoinedWords:
    """The concatenation of a document's words with prefix hashes over its characters."""

    def __init__(self, words: list[str], lengths: np.ndarray) -> None:
        self.joined = "".join(words)
        self.offsets = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.lengths = lengths
        self._prefix: np.ndarray | None = None
        self._pow: np.ndarray | None = None

    def _hash_tables(self) -> tuple[np.ndarray, np.ndarray]:
        if self._prefix is None or self._pow is None:
            size = len(self.joined)
            cps = np.frombuffer(self.joined.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)
            inv_pow = np.empty(size, dtype=np.uint64)
            fwd_pow = np.empty(size + 1, dtype=np.uint64)
            if size:
                inv_pow[0] = 1
                np.cumprod(np.full(size - 1, _BASE_INV, dtype=np.uint64), out=inv_pow[1:])
            fwd_pow[0] = 1
            np.cumprod(np.full(size, _BASE, dtype=np.uint64), out=fwd_pow[1:])
            prefix = np.zeros(size + 1, dtype=np.uint64)
            np.cumsum(cps * inv_pow, out=prefix[1:])
            self._prefix, self._pow = prefix, fwd_pow
        return self._prefix, self._pow

    def substring_hashes(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hash, start and end (character offsets) of every word n-gram's concatenation."""
        prefix, fwd_pow = self._hash_tables()
        starts = self.offsets[: len(self.offsets) - n]
        ends = self.offsets[n:]
        hashes = (prefix[ends] - prefix[starts]) * fwd_pow[starts]
        hashes ^= (ends - starts).astype(np.uint64) * np.uint64(0xFF51AFD7ED558CCD)
        return hashes, starts, ends


class TopNgrams:
    """The most frequent word n-gram for growing n, by exact ranks: the rank of an n-gram is the rank
    of the pair (rank of its first n-1 words, its last word), so equal rows get equal ranks without
    building strings or sorting rows."""

    def __init__(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        self.ids = ids
        self.lengths = lengths
        self.base = int(ids.max()) + 1 if len(ids) else 1
        self._ranks: dict[int, np.ndarray] = {1: ids}

    def _ranks_for(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        prev = max(k for k in self._ranks if k < n)
        ranks = self._ranks[prev]
        first = counts = np.empty(0, dtype=np.int64)
        for k in range(prev + 1, n + 1):
            m = len(self.ids) - k + 1
            pairs = ranks[:m] * self.base + self.ids[k - 1 :]
            _, first, ranks, counts = np.unique(pairs, return_index=True, return_inverse=True, return_counts=True)
            self._ranks[k] = ranks
        return ranks, first, counts

    def chars(self, n: int) -> int:
        """``len(" ".join(top n-gram)) * its count`` (0 with fewer than n words). Ties go to the n-gram
        seen first, as ``Counter.most_common(1)`` does."""
        if len(self.ids) - n + 1 <= 0:
            return 0
        if n == 1:
            _, first, counts = np.unique(self.ids, return_index=True, return_counts=True)
        else:
            _, first, counts = self._ranks_for(n)
        best = counts.max()
        start = int(first[counts == best].min())
        chars = int(self.lengths[start : start + n].sum()) + n - 1
        return chars * int(best)


def duplicated_ngram_chars(words: JoinedWords, n: int) -> int:
    """datatrove's ``find_all_duplicate(words, n)``: characters of n-grams that repeat an earlier one."""
    m = len(words.lengths) - n + 1
    if m <= 0:
        return 0
    hashes, starts, ends = words.substring_hashes(n)
    order = np.argsort(hashes)
    sorted_hashes = hashes[order]
    same = sorted_hashes[1:] == sorted_hashes[:-1]
    if not same.any():
        return 0
    repeated = np.zeros(m, dtype=bool)
    repeated[order[1:][same]] = True
    repeated[order[:-1][same]] = True
    text = words.joined
    seen: dict[int, list[int]] = {}
    total = 0
    idx = 0
    for j in np.flatnonzero(repeated).tolist():
        if j < idx:
            continue
        h = int(hashes[j])
        a, b = int(starts[j]), int(ends[j])
        earlier = seen.get(h)
        if earlier is not None and any(text[a:b] == text[int(starts[k]) : int(ends[k])] for k in earlier):
            total += b - a
            idx = j + n
        else:
            seen.setdefault(h, []).append(j)
            idx = j + 1
    return total
