"""Builds the quality stage group from :class:`consumers.quality.config.QualityConfig`.

Order: the length guard, then datatrove's FineWeb order (Gopher repetition, Gopher quality, C4,
FineWeb), then the hygiene rules. One :class:`WordSplitter` is shared, so a text is split once.
"""

from __future__ import annotations

from consumers.quality.base import TextFilter, Verdict
from consumers.quality.c4 import C4Quality
from consumers.quality.config import QualityConfig
from consumers.quality.fineweb import FineWebQuality
from consumers.quality.gopher import GopherQuality, GopherRepetition
from consumers.quality.hygiene import Hygiene
from consumers.quality.words import WordSplitter
from consumers.stage import Stage


class LengthGuard(TextFilter):
    """Drops documents too long for the rules to be worth running (see ``QualityConfig``)."""

    name = "quality"

    def __init__(self, max_chars: int) -> None:
        super().__init__(annotate_kept=False)
        self.max_chars = max_chars

    def check(self, text: str) -> Verdict:
        if self.max_chars and len(text) > self.max_chars:
            return Verdict("doc_too_long", {"chars": float(len(text)), "threshold": float(self.max_chars)})
        return Verdict()


def datatrove_filters(config: QualityConfig, words: WordSplitter | None = None) -> dict[str, TextFilter]:
    """The datatrove-equivalent filters that are enabled, by name, in pipeline order."""
    words = words or WordSplitter(config.word_cache_chunks)
    a = config.annotate
    out: dict[str, TextFilter] = {}
    if config.gopher_repetition.enabled:
        out["gopher_repetition"] = GopherRepetition(config.gopher_repetition, words, a)
    if config.gopher_quality.enabled:
        out["gopher_quality"] = GopherQuality(config.gopher_quality, words, a)
    if config.c4.enabled:
        out["c4"] = C4Quality(config.c4, words, a)
    if config.fineweb.enabled:
        out["fineweb"] = FineWebQuality(config.fineweb, words, a)
    return out


def quality_stages(config: QualityConfig) -> list[Stage]:
    if not config.enabled:
        return []
    stages: list[Stage] = []
    if config.max_doc_chars:
        stages.append(LengthGuard(config.max_doc_chars))
    stages.extend(datatrove_filters(config).values())
    if config.hygiene.enabled:
        stages.append(Hygiene(config.hygiene, config.annotate))
    return stages
