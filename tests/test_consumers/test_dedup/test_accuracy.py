"""Detection rate on synthetic pairs with controlled Jaccard similarity follows the LSH S-curve.

Each pair shares a block of words and has its own unique tail; all words are distinct random strings,
so every 5-gram is distinct and the Jaccard similarity of the two shingle sets is exactly
``S / (S + 2U)`` (``S`` shared shingles, ``U`` shingles unique to each side; S + 2U = 200).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from test_consumers.test_dedup.conftest import doc_id, random_words

from consumers.dedup.embedded import EmbeddedIndex
from consumers.dedup.index import DuplicateOf, Entry, Unique
from consumers.dedup.minhash import MinHasher

PAIRS = 1000
LEVELS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def make_pair(rng: random.Random, s: float) -> tuple[str, str]:
    shared = round(200 * s)
    unique = (200 - shared) // 2
    assert shared + 2 * unique == 200
    common = random_words(rng, shared + 4)  # shared + 4 words -> `shared` 5-grams entirely inside
    a = common + random_words(rng, unique)  # boundary 4 + inner (unique - 4) = unique own 5-grams
    b = common + random_words(rng, unique)
    return " ".join(a), " ".join(b)


def jaccard(h: MinHasher, a: str, b: str) -> float:
    sa, sb = set(h.shingles(a).tolist()), set(h.shingles(b).tolist())
    return len(sa & sb) / len(sa | sb)


@pytest.mark.parametrize("s", LEVELS)
def test_detection_rate_is_within_3_sigma_of_the_s_curve(s: float, tmp_path: Path, hasher: MinHasher) -> None:
    rng = random.Random(int(s * 1000))
    pairs = [make_pair(rng, s) for _ in range(PAIRS)]
    assert jaccard(hasher, *pairs[0]) == pytest.approx(s, abs=1e-9)
    index = EmbeddedIndex(tmp_path)
    firsts, seconds = [], []
    for i, (a, b) in enumerate(pairs):
        ka, kb = hasher.keys(a), hasher.keys(b)
        firsts.append(Entry(doc_id(2 * i), ka.exact, ka.bands))
        seconds.append(Entry(doc_id(2 * i + 1), kb.exact, kb.bands))
    assert index.check_and_add_many(firsts) == [Unique()] * PAIRS  # unrelated pairs never collide
    verdicts = index.check_and_add_many(seconds)
    index.close()
    detected = 0
    for i, v in enumerate(verdicts):
        if isinstance(v, DuplicateOf):
            assert (v.doc_id, v.kind) == (doc_id(2 * i), "near")
            detected += 1
    p = hasher.params.detection_probability(s)
    sigma = math.sqrt(p * (1 - p) / PAIRS)
    rate = detected / PAIRS
    assert abs(rate - p) <= 3 * sigma, f"s={s}: detected {rate:.4f}, S-curve {p:.4f} ± {3 * sigma:.4f}"
