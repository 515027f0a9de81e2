"""The vectorised n-gram measures equal datatrove's string-building definitions."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.quality.ngrams import JoinedWords, TopNgrams, duplicated_ngram_chars


def naive_top(words: list[str], n: int) -> int:
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0
    gram, count = Counter(grams).most_common(1)[0]
    return len(gram) * count


def naive_dup(words: list[str], n: int) -> int:
    unique: set[str] = set()
    total = idx = 0
    while idx < len(words) - n + 1:
        gram = "".join(words[idx : idx + n])
        if gram in unique:
            total += len(gram)
            idx += n
        else:
            unique.add(gram)
            idx += 1
    return total


# a tiny alphabet makes repeats, ties and "".join collisions (["ab", "c"] vs ["a", "bc"]) common
words_strategy = st.lists(st.sampled_from(["a", "b", "ab", "c", "bc", "abc", "the", "é"]), max_size=60)


def encode(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    vocab: dict[str, int] = {}
    ids = np.array([vocab.setdefault(w, len(vocab)) for w in words], dtype=np.int64)
    return ids, np.array([len(w) for w in words], dtype=np.int64)


@settings(max_examples=400, deadline=None)
@given(words_strategy, st.integers(1, 6))
def test_top_ngram_chars(words: list[str], n: int) -> None:
    ids, lengths = encode(words)
    assert TopNgrams(ids, lengths).chars(n) == naive_top(words, n)


@settings(max_examples=400, deadline=None)
@given(words_strategy, st.integers(1, 10))
def test_duplicated_ngram_chars(words: list[str], n: int) -> None:
    _, lengths = encode(words)
    assert duplicated_ngram_chars(JoinedWords(words, lengths), n) == naive_dup(words, n)


def test_join_collision_counts_as_duplicate() -> None:
    words = ["ab", "c", "x", "a", "bc"]
    _, lengths = encode(words)
    assert duplicated_ngram_chars(JoinedWords(words, lengths), 2) == naive_dup(words, 2) == 3


def test_ties_go_to_the_first_ngram() -> None:
    words = ["a", "b", "long", "word", "a", "b", "long", "word"]
    ids, lengths = encode(words)
    assert TopNgrams(ids, lengths).chars(2) == naive_top(words, 2)
