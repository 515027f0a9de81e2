"""Reading WARC/ARC archives into :class:`streams.records.Page` records.

:class:`WarcReader` turns the records of :class:`crawler.reader.ArchiveReader` into pages (HTML
responses, selected as :mod:`crawler.select` says), skips (with a reason) and damage reports, each
paired with the :class:`crawler.reader.Position` where reading resumes after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.payload import decode_body, sniff_binary
from crawler.rawio import Source
from crawler.reader import ArchiveReader, Damage, Position, RawRecord
from crawler.replay_config import ReplayConfig
from crawler.select import PAGE_RECORD_TYPES, html_verdict, looks_like_html
from streams.ids import page_id
from streams.records import Lineage, Page

log = logging.getLogger(__name__)

#: HTTP response headers kept on the page (policy signals and what extraction needs).
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "x-robots-tag",
        "tdm-reservation",
        "tdm-policy",
        "content-usage",
        "content-language",
        "last-modified",
        "content-signal",
        "link",
    }
)
_BLOCK_TYPES = PAGE_RECORD_TYPES | {"warcinfo"}


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str
    offset: int


@dataclass(frozen=True, slots=True)
class Damaged:
    path: str
    offset: int
    reason: str


ReadItem = Page | Skipped | Damaged


def _choose(rec_type: str, headers: Any, http: Any) -> str | None:
    """Read the payload of warcinfo records and of page records labelled HTML (or not labelled)."""
    if rec_type == "warcinfo":
        return None
    content_type = http.get_header("Content-Type") if http is not None else headers.get_header("Content-Type")
    if http is None and rec_type == "response":
        uri = headers.get_header("WARC-Target-URI") or ""
        if uri.startswith(("http:", "https:")):
            return "bad-http-headers"
    verdict = html_verdict(headers.get_header("WARC-Identified-Payload-Type"), content_type)
    return None if verdict in (None, "sniff") else verdict


class WarcReader:
    """Iterate ``(item, next_position)`` over one archive. Never raises for bad data."""

    def __init__(
        self,
        source: Source,
        config: ReplayConfig | None = None,
        start: Position | None = None,
        crawl: str | None = None,
    ) -> None:
        self.source = source
        self.config = config or ReplayConfig()
        self.crawl = crawl
        self.reader = ArchiveReader(source, self.config, start, choose=_choose, block_types=_BLOCK_TYPES)

    @property
    def bytes_read(self) -> int:
        return self.reader.bytes_read

    def __iter__(self) -> Iterator[tuple[ReadItem, Position | None]]:
        name = self.source.name
        for rec, nxt in self.reader:
            if isinstance(rec, Damage):
                yield Damaged(name, rec.offset, rec.reason), nxt
                continue
            if rec.skip is not None:
                yield Skipped(rec.skip, rec.offset), nxt
                continue
            if rec.rec_type == "warcinfo":
                self.crawl = _warcinfo_crawl(rec.payload or b"") or self.crawl
                yield Skipped("record-type:warcinfo", rec.offset), nxt
                continue
            yield self._page(rec), nxt

    def _page(self, rec: RawRecord) -> Page | Skipped:
        headers = rec.headers
        http = rec.http
        content_type = (
            http.get_header("Content-Type") if http is not None else headers.get_header("Content-Type")
        ) or ""
        payload = rec.payload or b""
        if http is not None:
            body = decode_body(
                payload,
                http.get_header("Transfer-Encoding") or "",
                http.get_header("Content-Encoding") or "",
                self.config.max_payload_bytes,
            )
        else:
            body = decode_body(payload, "", "", self.config.max_payload_bytes)
        data = body.data
        if not data.strip():
            return Skipped("empty-payload", rec.offset)
        binary = sniff_binary(data[:1024])
        if binary is not None:
            return Skipped(f"binary:{binary}", rec.offset)
        unlabelled = html_verdict(headers.get_header("WARC-Identified-Payload-Type"), content_type) == "sniff"
        if unlabelled and not looks_like_html(data[:1024]):
            return Skipped("not-html:unlabelled", rec.offset)
        url = (headers.get_header("WARC-Target-URI") or "").strip()
        if not url:
            return Skipped("no-target-uri", rec.offset)
        truncated = body.truncated or ("length" if not rec.payload_complete else "")
        if not truncated:
            truncated = (headers.get_header("WARC-Truncated") or "").strip().lower()
        date = (headers.get_header("WARC-Date") or "").strip()
        # warcio invents a random WARC-Record-ID for ARC records: not an identity, leave it out.
        rid = (headers.get_header("WARC-Record-ID") or "").strip() or None if rec.fmt == "warc" else None
        kept: dict[str, list[str]] = {}
        if http is not None:
            for hname, value in http.headers:
                lname = hname.lower()
                if lname in KEPT_HEADERS:
                    kept.setdefault(lname, []).append(value)
        status = 200
        if http is not None:
            try:
                status = int(http.get_statuscode() or 0)
            except (TypeError, ValueError):
                status = 0
        return Page(
            page_id=page_id(url, rid, date),
            url=url,
            fetched_at=date,
            status=status,
            content_type=content_type,
            headers=kept,
            body=data,
            truncated=truncated,
            lineage=Lineage(
                source="warc",
                warc_path=self.source.name,
                offset=rec.offset,
                length=rec.length,
                record_id=rid,
                warc_date=date or None,
                crawl=self.crawl,
            ),
        )


def _warcinfo_crawl(block: bytes) -> str | None:
    for line in block[:65536].decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "ispartof":
            return value.strip() or None
    return None


def iter_warc(path: str | Path, config: ReplayConfig | None = None) -> Iterator[ReadItem]:
    """Every item of one local archive, in order (a convenience over :class:`WarcReader`)."""
    from crawler.sources import LocalSource

    for item, _next in WarcReader(LocalSource(str(path)), config):
        yield item
