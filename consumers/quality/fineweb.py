"""FineWeb's own rules, as datatrove's ``FineWebQualityFilter`` applies them."""

from __future__ import annotations

from consumers.quality.base import TextFilter, Verdict, drop
from consumers.quality.config import FineWebConfig
from consumers.quality.gopher import find_duplicates
from consumers.quality.words import WordSplitter


class FineWebQuality(TextFilter):
    name = "fineweb"

    def __init__(self, config: FineWebConfig, words: WordSplitter, annotate_kept: bool = True) -> None:
        super().__init__(annotate_kept)
        self.config = config
        self.splitter = words
        self.stop_chars = tuple(config.stop_chars)
        # endswith() over 159 one-character suffixes is slow; a set lookup of the last character is
        # the same test when every stop "char" is one character.
        self._stop_set = frozenset(self.stop_chars) if all(len(c) == 1 for c in self.stop_chars) else None

    def _ends_with_stop(self, line: str) -> bool:
        if self._stop_set is not None:
            return line[-1] in self._stop_set
        return line.endswith(self.stop_chars)

    def check(self, text: str) -> Verdict:
        cfg = self.config
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return Verdict("empty")
        n = len(lines)
        ratio = sum(1 for line in lines if self._ends_with_stop(line)) / n
        if ratio < cfg.line_punct_thr and not (ratio == 0 and cfg.line_punct_exclude_zero):
            return drop("line_punct_ratio", ratio, cfg.line_punct_thr)
        values = {"line_punct_ratio": ratio}

        ratio = sum(1 for line in lines if len(line) <= cfg.short_line_length) / n
        if ratio > cfg.short_line_thr:
            return drop("short_line_ratio", ratio, cfg.short_line_thr)
        values["short_line_ratio"] = ratio

        ratio = find_duplicates(lines)[1] / (len(text) - text.count("\n"))
        if ratio > cfg.char_duplicates_ratio:
            return drop("char_dup_ratio", ratio, cfg.char_duplicates_ratio)
        values["char_dup_ratio"] = ratio

        self.splitter.maybe_reset()
        ratio = text.count("\n") / self.splitter.word_count(text)
        if ratio > cfg.new_line_ratio:
            return drop("list_ratio", ratio, cfg.new_line_ratio)
        values["list_ratio"] = ratio
        return Verdict(values=values)
