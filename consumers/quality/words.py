"""Word and sentence splitting that gives exactly datatrove's English results, much faster.

datatrove splits English words and sentences with ``spacy.blank("en")`` plus the ``sentencizer`` pipe
(``datatrove.utils.word_tokenizers.SpaCyTokenizer``); the quality filters spend most of their time
there. Two properties of spaCy's tokenizer make a cheap exact equivalent possible:

* It first cuts the text at whitespace and tokenizes every whitespace-free *chunk* on its own (prefix,
  suffix and infix rules, special cases); no rule looks across whitespace. So the tokens of a text are
  the tokens of its chunks in order, plus "whitespace tokens" for gaps that are not exactly one space.
* Web text is Zipfian: most chunks ("the", "and,", "2019.") repeat across documents.

:class:`WordSplitter` therefore splits with ``str.split`` and looks every chunk up in a cache. An
unseen chunk is split by :class:`AffixSplitter`, spaCy's own affix algorithm (the one its
``Tokenizer.explain`` documents) run in Python on spaCy's own rules (prefix, suffix and infix
patterns, URL match, special cases) without building spaCy lexemes, which is what makes spaCy slow
on unseen words. The rare chunk where spaCy's special-case matcher would merge tokens (emoticons
such as ``:)``, ``''``) goes to spaCy itself, all of a document's in one call. The result is identical
to running spaCy on the whole text (``tests/test_consumers/test_quality/test_words.py`` checks it on
real pages and on generated text). Sentence counts follow the sentencizer's rule (a new sentence starts
at the first non-punctuation token after a token that is one of its sentence-final characters), which
is also decided per chunk and cached as a two-state transition.

Each distinct token gets a small integer id so the filters can work on numpy arrays of ids.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Above this many cached chunks the cache and the token vocabulary are cleared (between documents).
DEFAULT_CACHE_CHUNKS = 400_000


class TokenizerUnavailableError(RuntimeError):
    """spaCy (installed with the ``process`` extra) is needed for exact word splitting."""


def is_punct(token: str) -> bool:
    """spaCy's lexical ``is_punct``: every character is in a Unicode punctuation category."""
    return all(unicodedata.category(c).startswith("P") for c in token)


@dataclass(frozen=True, slots=True)
class Chunk:
    """What the filters need to know about one whitespace-free chunk."""

    ids: tuple[int, ...]  # token ids, in order
    # Sentencizer transition: (sentence starts added, seen_period after) for entry state False / True.
    from_false: tuple[int, bool]
    from_true: tuple[int, bool]


class Vocabulary:
    """Token string <-> id, with per-id properties as growable numpy arrays."""

    def __init__(self, symbol_chars: frozenset[str]) -> None:
        self.symbol_chars = symbol_chars
        self._symbol_str = "".join(sorted(symbol_chars))
        self.ids: dict[str, int] = {}
        self.strings: list[str] = []
        self._len = np.zeros(1024, dtype=np.int64)
        self._symbol = np.zeros(1024, dtype=bool)  # every char is punctuation (datatrove PUNCTUATION_SET)
        self._alpha = np.zeros(1024, dtype=bool)  # at least one alphabetic char

    def __len__(self) -> int:
        return len(self.strings)

    def id_of(self, token: str) -> int:
        i = self.ids.get(token)
        if i is not None:
            return i
        i = len(self.strings)
        if i >= len(self._len):
            size = len(self._len) * 2
            self._len = np.resize(self._len, size)
            self._symbol = np.resize(self._symbol, size)
            self._alpha = np.resize(self._alpha, size)
        self.ids[token] = i
        self.strings.append(token)
        self._len[i] = len(token)
        if token.isascii() and token.isalpha():  # the common case, decided without a loop
            self._symbol[i] = False
            self._alpha[i] = True
        else:
            self._symbol[i] = not token.strip(self._symbol_str)
            self._alpha[i] = any(c.isalpha() for c in token)
        return i

    @property
    def lengths(self) -> np.ndarray:
        return self._len

    @property
    def symbol(self) -> np.ndarray:
        return self._symbol

    @property
    def alpha(self) -> np.ndarray:
        return self._alpha


class Tokens:
    """The words of one text as token ids, with their strings on demand."""

    __slots__ = ("_words", "ids", "text", "vocab")

    def __init__(self, text: str, ids: np.ndarray, vocab: Vocabulary) -> None:
        self.text = text
        self.ids = ids
        self.vocab = vocab
        self._words: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def words(self) -> list[str]:
        if self._words is None:
            strings = self.vocab.strings
            self._words = [strings[i] for i in self.ids.tolist()]
        return self._words


class AffixSplitter:
    """spaCy's tokenization of one whitespace-free chunk, computed in Python from its rules.

    ``tokens(chunk)`` returns ``None`` when spaCy's special-case matcher could apply (the affix split
    contains one of its patterns); the caller then asks spaCy.
    """

    def __init__(self, tokenizer: Any) -> None:
        from spacy.attrs import ORTH

        never = re.compile("a^")
        self._prefix = tokenizer.prefix_search or never.search
        self._suffix = tokenizer.suffix_search or never.search
        self._infix = tokenizer.infix_finditer or never.finditer
        self._token_match = tokenizer.token_match or never.match
        self._url_match = tokenizer.url_match or never.match
        self._specials: dict[str, list[str]] = {k: [t[ORTH] for t in v] for k, v in tokenizer.rules.items()}
        # spaCy gives its special-case matcher the special cases that affixes would split (with its
        # default faster_heuristics), as token sequences split without special cases
        self._patterns: dict[str, list[tuple[str, ...]]] = {}
        for key in self._specials:
            if self._prefix(key) or self._suffix(key) or any(True for _ in self._infix(key)) or " " in key:
                pattern = tuple(self.split(key, specials=False))
                if len(pattern) > 1:
                    self._patterns.setdefault(pattern[0], []).append(pattern)

    def split(self, chunk: str, specials: bool = True) -> list[str]:
        special = self._specials if specials else {}
        prefix, suffix = self._prefix, self._suffix
        tokens: list[str] = []
        suffixes: list[str] = []
        sub = chunk
        while sub:
            if sub in special:
                tokens.extend(special[sub])
                sub = ""
                continue
            while (pm := prefix(sub)) or suffix(sub):
                if self._token_match(sub):
                    tokens.append(sub)
                    sub = ""
                    break
                if sub in special:
                    tokens.extend(special[sub])
                    sub = ""
                    break
                if pm:
                    split = pm.end()
                    if split == 0:
                        break
                    tokens.append(sub[:split])
                    sub = sub[split:]
                    if sub in special:
                        continue
                m = suffix(sub)
                if m:
                    split = m.start()
                    if split == len(sub):
                        break
                    suffixes.append(sub[split:])
                    sub = sub[:split]
            if not sub:
                continue
            if self._token_match(sub) or self._url_match(sub):
                tokens.append(sub)
            elif sub in special:
                tokens.extend(special[sub])
            else:
                offset = 0
                for m in self._infix(sub):
                    if offset == 0 and m.start() == 0:
                        continue
                    if sub[offset : m.start()]:
                        tokens.append(sub[offset : m.start()])
                    if sub[m.start() : m.end()]:
                        tokens.append(sub[m.start() : m.end()])
                    offset = m.end()
                if sub[offset:]:
                    tokens.append(sub[offset:])
            sub = ""
        tokens.extend(reversed(suffixes))
        return tokens

    def tokens(self, chunk: str) -> list[str] | None:
        if chunk.isascii() and chunk.isalpha() and chunk not in self._specials:
            return [chunk]  # no English prefix, suffix or infix rule matches ASCII letters alone
        tokens = self.split(chunk)
        patterns = self._patterns
        for i, tok in enumerate(tokens):
            for pattern in patterns.get(tok, ()):
                if tuple(tokens[i : i + len(pattern)]) == pattern:
                    return None
        return tokens


class WordSplitter:
    """datatrove-compatible English word splitting and sentence counting with a chunk cache.

    ``words(text)`` equals datatrove's ``split_into_words(text)``; ``sentence_count(text)`` equals
    ``len(split_into_sentences(text))``. Not thread-safe (one per stage instance).
    """

    def __init__(self, cache_chunks: int = DEFAULT_CACHE_CHUNKS) -> None:
        from consumers.quality.punctuation import PUNCTUATION_SET

        self._nlp: Any = None
        self._affixes: AffixSplitter | None = None
        self._sentencizer: Any = None
        self._punct_chars: frozenset[str] = frozenset()
        self.cache_chunks = cache_chunks
        self.vocab = Vocabulary(PUNCTUATION_SET)
        self._cache: dict[str, Chunk] = {}
        self.hits = 0
        self.misses = 0
        self._recent: list[Tokens] = []

    # ------------------------------------------------------------------ spaCy, loaded on first use
    def _load(self) -> Any:
        if self._nlp is None:
            try:
                import spacy
                from spacy.pipeline.sentencizer import Sentencizer
            except ImportError as exc:  # pragma: no cover - spaCy comes with presidio-analyzer
                raise TokenizerUnavailableError("exact word splitting needs spaCy (a headrace dependency)") from exc
            self._nlp = spacy.blank("en")
            self._punct_chars = frozenset(Sentencizer.default_punct_chars)
            self._affixes = AffixSplitter(self._nlp.tokenizer)
        return self._nlp

    @property
    def punct_chars(self) -> frozenset[str]:
        self._load()
        return self._punct_chars

    def maybe_reset(self) -> None:
        """Bound memory: forget every cached chunk once the cache is full (call between documents)."""
        if len(self._cache) > self.cache_chunks:
            log.debug("word cache full (%d chunks), clearing", len(self._cache))
            self._cache.clear()
            self._recent.clear()
            self.vocab = Vocabulary(self.vocab.symbol_chars)

    def _transition(self, tokens: Sequence[str], seen_period: bool) -> tuple[int, bool]:
        starts = 0
        pc = self._punct_chars
        for tok in tokens:
            in_pc = tok in pc
            if seen_period and not in_pc and not is_punct(tok):
                starts += 1
                seen_period = False
            elif in_pc:
                seen_period = True
        return starts, seen_period

    def _make_chunk(self, tokens: Sequence[str]) -> Chunk:
        vocab = self.vocab
        ids = tuple(vocab.id_of(t) for t in tokens)
        if len(tokens) == 1 and tokens[0].isalnum():  # one plain word: ends any "seen a period" state
            return Chunk(ids=ids, from_false=(0, False), from_true=(1, False))
        return Chunk(ids=ids, from_false=self._transition(tokens, False), from_true=self._transition(tokens, True))

    def _tokenize_misses(self, chunks: Iterable[str]) -> None:
        """Tokenize unseen chunks: in Python with spaCy's rules, or (rarely) with spaCy, all of a
        document's in one call. Those are joined with newlines, not spaces: a newline becomes a
        whitespace token, which keeps spaCy's special-case matcher from matching a token sequence
        across two chunks (with a plain space it can, and such a match suppresses a special case
        inside a chunk)."""
        missing = list(dict.fromkeys(c for c in chunks if c not in self._cache))
        if not missing:
            return
        self.misses += len(missing)
        nlp = self._load()
        affixes = self._affixes
        hard: list[str] = []
        for c in missing:
            toks = affixes.tokens(c) if affixes is not None else None
            if toks is None:
                hard.append(c)
            else:
                self._cache[c] = self._make_chunk(toks)
        if not hard:
            return
        ends = []
        pos = 0
        for c in hard:
            pos += len(c)
            ends.append(pos)
            pos += 1
        per_chunk: list[list[str]] = [[] for _ in hard]
        k = 0
        with nlp.memory_zone():
            for tok in nlp.tokenizer("\n".join(hard)):
                text = tok.text
                if text.isspace():
                    continue
                while tok.idx >= ends[k]:
                    k += 1
                per_chunk[k].append(text)
        for c, toks in zip(hard, per_chunk, strict=True):
            self._cache[c] = self._make_chunk(toks)

    def chunks(self, text: str) -> list[Chunk]:
        parts = text.split()
        found = list(map(self._cache.get, parts))
        self.hits += len(parts)
        if None not in found:
            return found  # type: ignore[return-value]
        self._tokenize_misses(parts)
        return list(map(self._cache.__getitem__, parts))

    # ------------------------------------------------------------------------------------ API
    def tokens(self, text: str) -> Tokens:
        """The words of ``text``; the last few results are kept, since several filters ask for the
        same text (datatrove keeps an ``lru_cache(5)`` for the same reason)."""
        for t in self._recent:
            if t.text is text or t.text == text:
                return t
        ids = [i for c in self.chunks(text) for i in c.ids]
        result = Tokens(text, np.asarray(ids, dtype=np.int64), self.vocab)
        self._recent.insert(0, result)
        del self._recent[3:]
        return result

    def words(self, text: str) -> list[str]:
        return self.tokens(text).words

    def word_count(self, text: str) -> int:
        return sum(len(c.ids) for c in self.chunks(text))

    def sentences(self, text: str) -> list[str]:
        """datatrove's ``split_into_sentences`` (spaCy with its sentencizer; used only by C4's
        ``split_paragraph = false`` mode, so it is not cached)."""
        if self._sentencizer is None:
            import spacy

            self._sentencizer = spacy.blank("en")
            self._sentencizer.add_pipe("sentencizer")
        nlp = self._sentencizer
        nlp.max_length = len(text) + 10
        with nlp.memory_zone():
            ends = [s.end_char for s in nlp(text).sents]
        return [text[a:b] for a, b in zip([0, *ends[:-1]], [*ends[:-1], len(text)], strict=True)]

    def sentence_count(self, text: str, stop_at: int | None = None) -> int:
        """Number of sentences spaCy's sentencizer finds in ``text`` (0 for an empty text).

        Whitespace between chunks that is not exactly one space becomes a token of its own in spaCy;
        it is neither punctuation nor sentence-final, so it can start a sentence. ``stop_at`` ends the
        count early once it is reached.
        """
        if not text:
            return 0
        self._load()
        chunks = self.chunks(text)
        if not chunks:
            return 1  # whitespace only: a single whitespace token
        between, trailing = whitespace_tokens(text)
        count = 1
        seen = False
        for i, c in enumerate(chunks):
            if seen and i and between[i - 1]:
                count += 1
                seen = False
            starts, seen = c.from_true if seen else c.from_false
            count += starts
            if stop_at is not None and count >= stop_at:
                return count
        if seen and trailing:
            count += 1
        return count


_WS = re.compile(r"\s+")


def whitespace_tokens(text: str) -> tuple[list[bool], bool]:
    """Where spaCy emits whitespace tokens: one flag per gap between chunks, and one for the end.

    spaCy absorbs the first character of a whitespace run after a chunk when it is a plain space;
    whatever is left becomes a token. Leading whitespace is always a token but cannot change a
    sentence count, so it is not reported.
    """
    n = len(text)
    between: list[bool] = []
    trailing = False
    for m in _WS.finditer(text):
        s, e = m.span()
        if s == 0:
            continue
        token = e - s > 1 or text[s] != " "
        if e == n:
            trailing = token
        else:
            between.append(token)
    return between, trailing
