"""The cached word splitter gives exactly spaCy's (datatrove's) words and sentence counts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.quality.words import WordSplitter, whitespace_tokens

spacy = pytest.importorskip("spacy")

TRICKY = [
    "don't", "I'm", "can't", "gonna", "U.S.", "e.g.", "a.m.", "Mr.", "(hello)", "$5.00", "5%", "'s", "''", "``",
    ":)", "<3", "http://example.com/a?b=c", "www.x.org", "--", "...", "…", "a.", "A.B.C.", "1,000", "3.14",
    "x@y.com", "“quoted”", "‘s", "naïve", "日本語", "🙂", "well-known", "end.", "What?", "Wow!", "!!", "?!", "[1]",
    "e.g", "etc.", "No.", "#tag", "@user", "C++", "it's.", "'", '"', "-", "a/b", "5km", "10:30", "°C.", "co-op",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\u00a0", " \n ", "\n\n", "   "]


@pytest.fixture(scope="module")
def nlp():  # datatrove's English tokenizer: spacy.blank("en") + sentencizer
    pipe = spacy.blank("en")
    pipe.add_pipe("sentencizer")
    return pipe


def spacy_words(nlp, text: str) -> list[str]:
    return [t.text.strip() for t in nlp(text) if t.text.strip()]


def spacy_sentences(nlp, text: str) -> int:
    return len(list(nlp(text).sents))


texts = st.lists(
    st.tuples(st.sampled_from(TRICKY) | st.text(min_size=1, max_size=6), st.sampled_from(SEPARATORS)),
    min_size=0,
    max_size=40,
).map(lambda parts: "".join(w + s for w, s in parts))


SPLITTER = WordSplitter()  # shared: results must not depend on what the cache saw before


@settings(max_examples=200, deadline=None)
@given(texts)
def test_words_equal_spacy(nlp, text: str) -> None:
    assert SPLITTER.words(text) == spacy_words(nlp, text)


@settings(max_examples=200, deadline=None)
@given(texts)
def test_sentence_count_equals_sentencizer(nlp, text: str) -> None:
    assert SPLITTER.sentence_count(text) == spacy_sentences(nlp, text)


def test_cache_is_shared_and_results_stable(nlp) -> None:
    ws = WordSplitter()
    text = "Hello world. Hello again, world! Don't panic."
    first = ws.words(text)
    misses = ws.misses
    assert ws.words(text) == first == spacy_words(nlp, text)
    assert ws.misses == misses  # second time from the cache


def test_neighbouring_chunks_do_not_change_a_chunk(nlp) -> None:
    # spaCy's special-case matcher can match across a space; misses are batched with newlines so a
    # chunk tokenizes as it does in its own text
    ws = WordSplitter()
    ws.words("x '")  # caches "'"
    assert ws.words("'').s;") == spacy_words(nlp, "'').s;")


def test_cache_reset_bounds_memory() -> None:
    ws = WordSplitter(cache_chunks=10)
    ws.words(" ".join(f"w{i}" for i in range(50)))
    ws.maybe_reset()
    assert ws.words("a b") == ["a", "b"]
    assert len(ws.vocab) == 2


def test_whitespace_tokens() -> None:
    # after a chunk the first plain space is absorbed; anything else is a token
    assert whitespace_tokens("a b") == ([False], False)
    assert whitespace_tokens("a  b") == ([True], False)
    assert whitespace_tokens("a\tb ") == ([True], False)
    assert whitespace_tokens("a b  ") == ([False], True)


def test_real_pages_equal_spacy(nlp, shared_data_texts: list[str]) -> None:
    ws = WordSplitter()
    for text in shared_data_texts[:60]:
        assert ws.words(text) == spacy_words(nlp, text)
        for line in text.splitlines()[:50]:
            line = line.strip()
            if line:
                assert ws.sentence_count(line) == spacy_sentences(nlp, line)


@pytest.fixture(scope="module")
def shared_data_texts(shared_data, tmp_path_factory) -> list[str]:
    from consumers.extract import ExtractConfig, Extractor
    from crawler.warc import iter_warc
    from streams.records import Document, Page

    pages = [p for f in sorted(shared_data.glob("*.warc*"))[:6] for p in iter_warc(f) if isinstance(p, Page)]
    docs = Extractor(ExtractConfig()).extract_batch(pages[:80])
    texts = [d.text for d in docs if isinstance(d, Document)]
    (tmp_path_factory.mktemp("t") / "texts.json").write_text(json.dumps(texts))
    return texts
