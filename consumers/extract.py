"""Extraction: page HTML -> main text, the first processing stage.

``extract_text`` is a pure function (it runs inside worker processes); :class:`Extractor` turns pages
into documents, decodes bytes safely and maps every failure to a ``Drop`` with a reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from consumers.decode import decode_html
from consumers.stage import Drop
from streams.ids import content_hash, doc_id
from streams.records import Document, Page

log = logging.getLogger(__name__)

STAGE = "extract"


@dataclass(frozen=True)
class ExtractConfig:
    extractor: str = "trafilatura"  # "trafilatura" | "resiliparse"
    favor_precision: bool = True  # datatrove's FineWeb settings
    include_comments: bool = False
    deduplicate: bool = True
    include_tables: bool = True
    timeout_s: float = 5.0  # per document, enforced by the worker pool
    workers: int = 0  # 0: extract in the calling process
    max_html_bytes: int = 5 * 1024 * 1024


def extract_text(html: str, url: str, config: ExtractConfig) -> str:
    """Main text of ``html`` ("" when nothing is found). May raise; callers map errors to drops."""
    if config.extractor == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text

        return str(extract_plain_text(html, main_content=True, alt_texts=False, preserve_formatting=True))
    import trafilatura

    text = trafilatura.extract(
        html,
        favor_precision=config.favor_precision,
        include_comments=config.include_comments,
        deduplicate=config.deduplicate,
        include_tables=config.include_tables,
    )
    return text or ""


def document_from_text(page: Page, text: str, pipeline: str = "") -> Document:
    h = content_hash(text)
    return Document(
        doc_id=doc_id(page.url, h),
        page_id=page.page_id,
        url=page.url,
        text=text,
        fetched_at=page.fetched_at,
        content_hash=h,
        lineage=page.lineage,
        signals=page.signals,
        pipeline=pipeline,
    )


class Extractor:
    """In-process extractor; the pooled variant in ``consumers.extract_pool`` has the same API."""

    name = STAGE

    def __init__(self, config: ExtractConfig | None = None, pipeline: str = "") -> None:
        self.config = config or ExtractConfig()
        self.pipeline = pipeline

    def prepare(self, page: Page) -> str | Drop:
        """Decode the page body or say why it cannot be extracted."""
        if not page.body:
            return Drop("empty-body", stage=STAGE)
        if len(page.body) > self.config.max_html_bytes:
            return Drop("oversize", {"bytes": float(len(page.body))}, stage=STAGE)
        html, _encoding = decode_html(page.body, page.content_type)
        return html

    def extract_batch(self, pages: Sequence[Page]) -> list[Document | Drop]:
        out: list[Document | Drop] = []
        for page in pages:
            prepared = self.prepare(page)
            if isinstance(prepared, Drop):
                out.append(prepared)
                continue
            try:
                text = extract_text(prepared, page.url, self.config)
            except Exception as exc:
                log.warning("extraction failed for %s: %s", page.url, exc)
                out.append(Drop(f"extract-error:{type(exc).__name__}", detail=str(exc)[:300], stage=STAGE))
                continue
            out.append(self.finish(page, text))
        return out

    def finish(self, page: Page, text: str) -> Document | Drop:
        text = text.strip()
        if not text:
            return Drop("empty-extraction", stage=STAGE)
        return document_from_text(page, text, self.pipeline)

    def close(self) -> None:
        """Nothing to release in process."""
