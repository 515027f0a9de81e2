"""Extraction: page HTML -> main text, the first processing stage.

``extract_page`` is a pure function (it runs in-process or inside the worker processes of
``consumers.extract_pool``); :class:`Extractor` is the in-process variant, which maps every failure
to a ``Drop`` with a reason. The default trafilatura settings are datatrove's ``Trafilatura``
extractor's (``favor_precision=True``, ``include_comments=False``, trafilatura's own default for
everything else, tables included; no URL is passed, as datatrove passes none) with one exception:
``deduplicate`` is off.

trafilatura's ``deduplicate`` keeps a per-process cache of text segments seen before, so what it
removes depends on what the process extracted earlier. That makes extraction depend on history: a
restarted consumer, another replica or a replay extracts the same page into different text, hence a
different content hash and doc id, and exactly-once delivery no longer means the same corpus (the
embedded run and the same input over Kafka disagreed on a document because of it). Repeated
boilerplate across pages is what the quality filters and dedup handle. Set ``deduplicate = true`` to
reproduce datatrove's output exactly.
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
EXTRACTORS = ("trafilatura", "resiliparse")


class ExtractConfigError(ValueError):
    """The ``extract`` section is inconsistent."""


@dataclass(frozen=True)
class ExtractConfig:
    extractor: str = "trafilatura"  # "trafilatura" | "resiliparse"
    favor_precision: bool = True  # datatrove's Trafilatura defaults (FineWeb)
    include_comments: bool = False
    deduplicate: bool = False  # history-dependent when on (see the module docstring)
    include_tables: bool = True  # trafilatura's default, which datatrove keeps
    timeout_s: float = 5.0  # per document, enforced by the worker pool (datatrove: 1 s)
    workers: int = 0  # extraction processes; 0: extract in the calling process (no time limit)
    worker_memory_mb: int = 0  # address-space limit per worker; 0: none
    max_tasks_per_worker: int = 0  # replace a worker after this many pages; 0: never
    start_timeout_s: float = 60.0  # for a worker to import its extractor
    max_html_bytes: int = 5 * 1024 * 1024

    def check(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise ExtractConfigError(f"extract.extractor must be one of {EXTRACTORS}, not {self.extractor!r}")
        if self.workers < 0 or self.timeout_s <= 0:
            raise ExtractConfigError("extract.workers must be >= 0 and extract.timeout_s > 0")


def extract_text(html: str, config: ExtractConfig) -> str:
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


def precheck(page: Page, config: ExtractConfig) -> Drop | None:
    """Why a page cannot be extracted at all, before any work is done."""
    if not page.body:
        return Drop("empty-body", stage=STAGE)
    if len(page.body) > config.max_html_bytes:
        return Drop(
            "oversize", {"bytes": float(len(page.body)), "threshold": float(config.max_html_bytes)}, stage=STAGE
        )
    return None


def extract_page(body: bytes, content_type: str, config: ExtractConfig) -> str:
    """Decode and extract one page body (never raises for bad bytes; extractor errors propagate)."""
    html, _encoding = decode_html(body, content_type)
    return extract_text(html, config)


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


def finish(page: Page, text: str, pipeline: str) -> Document | Drop:
    """The document for an extracted text, or why there is none."""
    text = text.strip()
    if not text:
        return Drop("empty-extraction", {"html_bytes": float(len(page.body))}, stage=STAGE)
    return document_from_text(page, text, pipeline)


def error_drop(exc_type: str, message: str) -> Drop:
    return Drop(f"extract-error:{exc_type}", detail=message[:300], stage=STAGE)


class Extractor:
    """In-process extractor; ``consumers.extract_pool.ExtractPool`` has the same API."""

    name = STAGE

    def __init__(self, config: ExtractConfig | None = None, pipeline: str = "") -> None:
        self.config = config or ExtractConfig()
        self.config.check()
        self.pipeline = pipeline

    def extract_batch(self, pages: Sequence[Page]) -> list[Document | Drop]:
        out: list[Document | Drop] = []
        for page in pages:
            early = precheck(page, self.config)
            if early is not None:
                out.append(early)
                continue
            try:
                text = extract_page(page.body, page.content_type, self.config)
            except Exception as exc:
                log.warning("extraction failed for %s: %s", page.url, exc)
                out.append(error_drop(type(exc).__name__, str(exc)))
                continue
            out.append(finish(page, text, self.pipeline))
        return out

    def close(self) -> None:
        """Nothing to release in process."""
