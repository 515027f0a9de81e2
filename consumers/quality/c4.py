"""C4 rules (Raffel et al. 2020) as datatrove's ``C4QualityFilter`` applies them, FineWeb variant.

Lines that fail a line rule are removed from kept documents; a few rules drop the whole document.
Sentence counting uses the exact spaCy-compatible counter and stops once the minimum is reached.
"""

from __future__ import annotations

import re

from consumers.quality.base import TextFilter, Verdict, drop
from consumers.quality.config import C4Config
from consumers.quality.words import WordSplitter

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."


class C4Quality(TextFilter):
    name = "c4"

    def __init__(self, config: C4Config, words: WordSplitter, annotate_kept: bool = True) -> None:
        super().__init__(annotate_kept)
        self.config = config
        self.splitter = words

    def check(self, text: str) -> Verdict:
        cfg = self.config
        self.splitter.maybe_reset()
        lines = text.splitlines() if cfg.split_paragraph else self.splitter.sentences(text)
        need = cfg.min_num_sentences
        sentences = 0
        kept: list[str] = []
        removed = 0
        for line in lines:
            line = line.strip()
            words = line.split()
            if (
                cfg.max_word_length != -1
                and len(line) > cfg.max_word_length
                and any(len(w) > cfg.max_word_length for w in words)
            ):
                removed += 1
                continue
            if cfg.remove_citations and "[" in line:
                line = CITATION.sub("", line)
            if cfg.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                removed += 1
                continue
            if len(words) < cfg.min_words_per_line:
                removed += 1
                continue
            lower = line.lower()
            if cfg.filter_lorem_ipsum and "lorem ipsum" in lower:
                return Verdict("lorem_ipsum", {"kept_lines": float(len(kept))})
            if cfg.filter_javascript and "javascript" in lower:
                removed += 1
                continue
            if cfg.filter_curly_bracket and "{" in line:
                return Verdict("curly_bracket", {"kept_lines": float(len(kept))})
            if cfg.filter_policy and any(p in lower for p in cfg.policy_substrings):
                removed += 1
                continue
            if need != -1 and sentences < need:
                sentences += self.splitter.sentence_count(line, stop_at=need) if cfg.split_paragraph else 1
            kept.append(line)
        if sentences < need:
            return drop("too_few_sentences", sentences, need)
        new_text = ("\n" if cfg.split_paragraph else " ").join(kept).strip()
        values = {"lines_removed": float(removed), "lines_kept": float(len(kept))}
        return Verdict(values=values, text=new_text)
