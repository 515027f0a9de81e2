"""The shape shared by the quality filters: a pure ``check(text)`` plus a per-document stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from consumers.docops import annotate, with_text
from consumers.stage import DocumentStage, Drop, StageResult
from streams.records import Document


@dataclass(frozen=True, slots=True)
class Verdict:
    """A filter's decision on one text: ``reason`` is empty when the text is kept.

    ``values`` are the measurements (for a drop: the one that failed and its threshold); ``text`` is
    the modified text when the filter rewrites kept documents (C4 removes lines).
    """

    reason: str = ""
    values: dict[str, float] = field(default_factory=dict)
    text: str | None = None

    @property
    def keep(self) -> bool:
        return not self.reason


def drop(reason: str, value: float, threshold: float) -> Verdict:
    return Verdict(reason, {reason: float(value), "threshold": float(threshold)})


class TextFilter(DocumentStage):
    """A quality filter as a stage: drops with the reason and values, annotates what it keeps."""

    name = "filter"

    def __init__(self, annotate_kept: bool = True) -> None:
        self.annotate_kept = annotate_kept

    def check(self, text: str) -> Verdict:
        raise NotImplementedError

    def process(self, doc: Document) -> StageResult:
        verdict = self.check(doc.text)
        if not verdict.keep:
            return Drop(verdict.reason, verdict.values, stage=self.name)
        if verdict.text is not None:
            doc = with_text(doc, verdict.text)
        if self.annotate_kept:
            doc = annotate(doc, verdict.values, self.name)
        return doc
