"""Gopher repetition and quality rules, same decisions as datatrove's filters.

Rule order and reason names follow datatrove (``gopher_repetition_filter.py``,
``gopher_quality_filter.py``), so the first failing rule, and therefore the drop reason, is the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from consumers.quality.base import TextFilter, Verdict, drop
from consumers.quality.config import GopherQualityConfig, GopherRepetitionConfig
from consumers.quality.ngrams import JoinedWords, TopNgrams, duplicated_ngram_chars
from consumers.quality.words import Vocabulary, WordSplitter

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile("\n+")


def find_duplicates(items: Iterable[str]) -> tuple[int, int]:
    """Number and total length of the items that repeat an earlier item."""
    seen: set[str] = set()
    dup = 0
    dup_chars = 0
    for x in items:
        if x in seen:
            dup += 1
            dup_chars += len(x)
        else:
            seen.add(x)
    return dup, dup_chars


class GopherRepetition(TextFilter):
    name = "gopher_repetition"

    def __init__(self, config: GopherRepetitionConfig, words: WordSplitter, annotate_kept: bool = True) -> None:
        super().__init__(annotate_kept)
        self.config = config
        self.splitter = words

    def check(self, text: str) -> Verdict:
        cfg = self.config
        if not text:
            return Verdict("empty")
        size = len(text)
        values: dict[str, float] = {}

        paragraphs = _PARAGRAPHS.split(text.strip())
        dup, dup_chars = find_duplicates(paragraphs)
        frac = dup / len(paragraphs)
        if cfg.dup_para_frac and frac > cfg.dup_para_frac:
            return drop("dup_para_frac", frac, cfg.dup_para_frac)
        values["dup_para_frac"] = frac
        frac = dup_chars / size
        if cfg.dup_para_char_frac and frac > cfg.dup_para_char_frac:
            return drop("dup_para_char_frac", frac, cfg.dup_para_char_frac)
        values["dup_para_char_frac"] = frac

        lines = _LINES.split(text)
        dup, dup_chars = find_duplicates(lines)
        frac = dup / len(lines)
        if cfg.dup_line_frac and frac > cfg.dup_line_frac:
            return drop("dup_line_frac", frac, cfg.dup_line_frac)
        values["dup_line_frac"] = frac
        frac = dup_chars / size
        if cfg.dup_line_char_frac and frac > cfg.dup_line_char_frac:
            return drop("dup_line_char_frac", frac, cfg.dup_line_char_frac)
        values["dup_line_char_frac"] = frac

        self.splitter.maybe_reset()
        tokens = self.splitter.tokens(text)
        lengths = tokens.vocab.lengths[tokens.ids]
        top = TopNgrams(tokens.ids, lengths)
        for n, threshold in cfg.top_n_grams:
            if len(tokens) - n + 1 <= 0:
                continue
            frac = top.chars(n) / size
            if frac > threshold:
                return drop(f"top_{n}_gram", frac, threshold)
            values[f"top_{n}_gram"] = frac

        joined = JoinedWords(tokens.words, lengths)
        for n, threshold in cfg.dup_n_grams:
            frac = duplicated_ngram_chars(joined, n) / size
            if frac > threshold:
                return drop(f"duplicated_{n}_n_grams", frac, threshold)
            values[f"duplicated_{n}_n_grams"] = frac
        return Verdict(values=values)


class GopherQuality(TextFilter):
    name = "gopher_quality"

    def __init__(self, config: GopherQualityConfig, words: WordSplitter, annotate_kept: bool = True) -> None:
        super().__init__(annotate_kept)
        self.config = config
        self.splitter = words
        self.stop_words = frozenset(config.stop_words)

    def check(self, text: str) -> Verdict:
        cfg = self.config
        self.splitter.maybe_reset()
        tokens = self.splitter.tokens(text)
        vocab = tokens.vocab
        ids = tokens.ids
        n_words = len(ids)
        non_symbol = ~vocab.symbol[ids]
        n_non_symbol = int(non_symbol.sum())
        values: dict[str, float] = {"words": float(n_non_symbol)}

        if cfg.min_doc_words and n_non_symbol < cfg.min_doc_words:
            return drop("gopher_short_doc", n_non_symbol, cfg.min_doc_words)
        if cfg.max_doc_words and n_non_symbol > cfg.max_doc_words:
            return drop("gopher_long_doc", n_non_symbol, cfg.max_doc_words)

        lengths = vocab.lengths[ids][non_symbol]
        avg = float(lengths.mean()) if len(lengths) else float("nan")
        if cfg.min_avg_word_length and avg < cfg.min_avg_word_length:
            return drop("gopher_below_avg_threshold", avg, cfg.min_avg_word_length)
        if cfg.max_avg_word_length and avg > cfg.max_avg_word_length:
            return drop("gopher_above_avg_threshold", avg, cfg.max_avg_word_length)
        values["avg_word_length"] = avg

        if n_words == 0:  # only reachable with the length rules off; datatrove would divide by zero
            return Verdict("gopher_no_words", {"words": 0.0})
        ratio = text.count("#") / n_words
        if cfg.max_symbol_word_ratio and ratio > cfg.max_symbol_word_ratio:
            return drop("gopher_too_many_hashes", ratio, cfg.max_symbol_word_ratio)
        values["hash_ratio"] = ratio
        ratio = (text.count("...") + text.count("…")) / n_words
        if cfg.max_symbol_word_ratio and ratio > cfg.max_symbol_word_ratio:
            return drop("gopher_too_many_ellipsis", ratio, cfg.max_symbol_word_ratio)
        values["ellipsis_ratio"] = ratio

        lines = text.splitlines()
        n_lines = len(lines) or 1  # a non-empty text has lines; guard the empty one
        if cfg.max_bullet_lines_ratio:
            ratio = sum(1 for s in lines if s.lstrip().startswith(("•", "-"))) / n_lines
            if ratio > cfg.max_bullet_lines_ratio:
                return drop("gopher_too_many_bullets", ratio, cfg.max_bullet_lines_ratio)
            values["bullet_lines_ratio"] = ratio
        if cfg.max_ellipsis_lines_ratio:
            ratio = sum(1 for s in lines if s.rstrip().endswith(("...", "…"))) / n_lines
            if ratio > cfg.max_ellipsis_lines_ratio:
                return drop("gopher_too_many_end_ellipsis", ratio, cfg.max_ellipsis_lines_ratio)
            values["end_ellipsis_lines_ratio"] = ratio

        ratio = int(vocab.alpha[ids].sum()) / n_words
        if cfg.max_non_alpha_words_ratio and ratio < cfg.max_non_alpha_words_ratio:
            return drop("gopher_below_alpha_threshold", ratio, cfg.max_non_alpha_words_ratio)
        values["alpha_words_ratio"] = ratio

        if cfg.min_stop_words:
            found = self._stop_words_found(tokens.ids, vocab)
            if found < cfg.min_stop_words:
                return drop("gopher_enough_stop_words", found, cfg.min_stop_words)
            values["stop_words"] = found
        return Verdict(values=values)

    def _stop_words_found(self, ids: np.ndarray, vocab: Vocabulary) -> int:
        strings = vocab.strings
        present = {strings[i] for i in np.unique(ids).tolist()}
        return len(self.stop_words & present)
