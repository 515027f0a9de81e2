"""MinHash signatures: normalisation, determinism across processes, and the min-wise property."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest
from test_consumers.test_dedup.conftest import random_words

from consumers.dedup.minhash import MinHasher, MinHashParams, SignatureError, simplify, tokens

GOLDEN_TEXT = "The quick brown fox jumps over the lazy dog. Café 3.14 naïve — Ünïcödé text, twice as fast!"
# Pinned values: a change here means every existing index would stop matching new documents.
GOLDEN_BANDS = [12491123433056416500, 12703034384972205677, 17941187980838240393]
GOLDEN_SIG = (26626093549761644, 1382153679490609263)


def test_normalisation_follows_datatrove_text_norm() -> None:
    assert simplify("Hello,   WORLD!\n\tNew-line") == "hello world new line"
    assert simplify("Café naïve Ünïcödé") == "cafe naive unicode"  # diacritics removed
    assert simplify("in 1999 it cost 3.50 or 3,50 (٣٤)") == "in 0 it cost 0 or 0 0"
    assert simplify("ｆｕｌｌｗｉｄｔｈ") == "fullwidth"  # NFKC
    assert simplify("snake_case") == "snake case"
    assert tokens("日本語のテキスト") == [c.encode() for c in "日本語のテキスト"]  # one token per ideograph/kana
    assert tokens("  ...  ") == []


def test_signatures_are_pinned_and_equal_in_another_process() -> None:
    h = MinHasher()
    sig = h.signature(GOLDEN_TEXT)
    assert sig is not None and sig.dtype == np.uint64 and sig.shape == (112,)
    assert (int(sig[0]), int(sig[111])) == GOLDEN_SIG
    assert h.band_keys(sig)[:3] == GOLDEN_BANDS
    code = (
        "import json,sys; from consumers.dedup.minhash import MinHasher; h=MinHasher();"
        "print(json.dumps(h.keys(sys.argv[1]).bands))"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code, GOLDEN_TEXT], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert json.loads(out) == list(h.keys(GOLDEN_TEXT).bands)


def test_same_words_same_keys_whatever_the_spacing_case_or_punctuation() -> None:
    h = MinHasher()
    a = h.keys("One two three four five six seven.")
    b = h.keys("one, TWO three\n\nfour  five six seven")
    assert a.bands == b.bands
    assert a.exact == b.exact
    assert h.keys("one two three four five six eight").bands != a.bands


def test_short_and_empty_documents() -> None:
    h = MinHasher()
    assert len(h.shingles("just three words")) == 1  # shorter than n: one shingle of all words
    assert len(h.shingles("a b c d e f")) == 2
    assert h.signature("") is None and h.keys("").bands == ()
    assert h.keys("!!!").bands == ()


def test_large_documents_are_processed_in_slices_with_the_same_result() -> None:
    rng = random.Random(3)
    text = " ".join(random_words(rng, 5000))
    h = MinHasher()
    sh = h.shingles(text)
    assert len(sh) == 4996
    direct = np.full(112, np.iinfo(np.uint64).max, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for x in sh:  # the definition, one shingle at a time
            v = x * h._a + h._b
            v ^= v >> np.uint64(31)
            v *= np.uint64(0xBF58476D1CE4E5B9)
            direct = np.minimum(direct, v)
    assert np.array_equal(h.signature_of_shingles(sh), direct)


def test_each_hash_collides_with_probability_jaccard() -> None:
    """The min-wise property: P(h_i(A) == h_i(B)) = J(A, B), checked over 300 pairs at J = 0.6."""
    rng = random.Random(4)
    h = MinHasher()
    matches = []
    for _ in range(300):
        common = random_words(rng, 124)
        a = " ".join(common + random_words(rng, 40))
        b = " ".join(common + random_words(rng, 40))
        matches.append(float(np.mean(h.signature(a) == h.signature(b))))  # type: ignore[operator]
    j = 120 / 200
    sd = math.sqrt(j * (1 - j) / (112 * 300))
    assert abs(np.mean(matches) - j) < 4 * sd


def test_params_and_s_curve() -> None:
    p = MinHashParams()
    assert p.num_perm == 112
    assert p.threshold == pytest.approx(0.719, abs=1e-3)
    # reliability-cases.md A5 table
    for s, want in [(0.5, 0.053), (0.7, 0.565), (0.8, 0.924), (0.9, 0.9996)]:
        assert p.detection_probability(s) == pytest.approx(want, abs=6e-4)
    assert p.jaccard_from_bands(14) == 1.0 and p.jaccard_from_bands(0) == 0.0
    with pytest.raises(SignatureError):
        MinHashParams(bands=0)
    assert MinHasher(MinHashParams(seed=2)).keys(GOLDEN_TEXT).bands != MinHasher().keys(GOLDEN_TEXT).bands
