"""Reading WARC/ARC files into :class:`streams.records.Page` records.

Record selection follows datatrove's ``WarcReader``: response (and conversion) records whose HTTP
Content-Type (or WARC-Identified-Payload-Type) is HTML. Everything else is counted as a skip with a
reason. Damage in a file ends that file with an :class:`InputDamaged` item that names the file and the
offset; records before the damage are kept.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from streams.ids import page_id
from streams.records import Lineage, Page

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
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
    }
)


@dataclass(frozen=True)
class ReadLimits:
    max_payload_bytes: int = 5 * 1024 * 1024  # Common Crawl's planned truncation length


@dataclass(frozen=True)
class Skipped:
    reason: str
    offset: int


@dataclass(frozen=True)
class InputDamaged:
    path: str
    offset: int
    reason: str


ReadItem = Page | Skipped | InputDamaged


def _is_html(content_type: str) -> bool:
    ct = content_type.lower()
    return any(t in ct for t in HTML_TYPES)


def sniff_format(head: bytes) -> str | None:
    """``"warc"``, ``"arc"`` or None, from the first bytes (decompressed if gzip)."""
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 64)
        except zlib.error:
            return None
    head = head.lstrip(b"\r\n")
    if head.startswith(b"WARC/"):
        return "warc"
    if head.startswith(b"filedesc://"):
        return "arc"
    return None


def iter_warc(path: Path, limits: ReadLimits | None = None, fh: BinaryIO | None = None) -> Iterator[ReadItem]:
    limits = limits or ReadLimits()
    if fh is None:
        try:
            with path.open("rb") as probe:
                head = probe.read(4096)
        except OSError as exc:
            yield InputDamaged(str(path), 0, f"cannot read: {exc}")
            return
        if sniff_format(head) is None:
            shown = head[:24].decode("latin-1").encode("unicode_escape").decode("ascii")
            yield InputDamaged(str(path), 0, f"not a WARC or ARC file (starts with '{shown}')")
            return
    crawl: str | None = None
    own = fh is None
    stream: BinaryIO = fh if fh is not None else path.open("rb")
    it = ArchiveIterator(stream, arc2warc=True)
    offset = 0
    try:
        for record in it:
            # get_record_offset() reads the record to its end, so ask only after the body is read.
            rtype = record.rec_type
            if rtype == "warcinfo":
                crawl = _warcinfo_crawl(record.content_stream().read(64 * 1024)) or crawl
                offset = it.get_record_offset()
                continue
            if rtype not in ("response", "conversion"):
                offset = it.get_record_offset()
                if missing := _missing_bytes(record):
                    yield InputDamaged(str(path), offset, f"file ends inside a record: {missing} bytes missing")
                    return
                yield Skipped(f"record-type:{rtype}", offset)
                continue
            http = record.http_headers
            if http is not None and http.get_statuscode():
                content_type = http.get_header("Content-Type") or ""
                status = int(http.get_statuscode() or 0)
            else:
                content_type = record.rec_headers.get_header("Content-Type") or ""
                status = 200
            payload_type = record.rec_headers.get_header("WARC-Identified-Payload-Type") or ""
            if not (_is_html(content_type) or _is_html(payload_type)):
                offset = it.get_record_offset()
                if missing := _missing_bytes(record):
                    yield InputDamaged(str(path), offset, f"file ends inside a record: {missing} bytes missing")
                    return
                yield Skipped("not-html", offset)
                continue
            body = record.content_stream().read(limits.max_payload_bytes + 1)
            offset = it.get_record_offset()
            if missing := _missing_bytes(record):
                yield InputDamaged(str(path), offset, f"file ends inside a record: {missing} bytes missing")
                return
            truncated = ""
            if len(body) > limits.max_payload_bytes:
                body = body[: limits.max_payload_bytes]
                truncated = "length"
            elif record.rec_headers.get_header("WARC-Truncated") or "":
                truncated = record.rec_headers.get_header("WARC-Truncated") or "unspecified"
            url = record.rec_headers.get_header("WARC-Target-URI") or ""
            date = record.rec_headers.get_header("WARC-Date") or ""
            rid = record.rec_headers.get_header("WARC-Record-ID")
            headers: dict[str, list[str]] = {}
            if http is not None:
                for name, value in http.headers:
                    lname = name.lower()
                    if lname in KEPT_HEADERS:
                        headers.setdefault(lname, []).append(value)
            yield Page(
                page_id=page_id(url, rid, date),
                url=url,
                fetched_at=date,
                status=status,
                content_type=content_type,
                headers=headers,
                body=body,
                truncated=truncated,
                lineage=Lineage(
                    source="warc",
                    warc_path=str(path),
                    offset=offset,
                    record_id=rid,
                    warc_date=date,
                    crawl=crawl,
                ),
            )
    except ArchiveLoadFailed as exc:
        yield InputDamaged(str(path), offset, f"not a readable WARC/ARC: {exc}".strip())
    except (OSError, EOFError, ValueError) as exc:
        # zlib.error is an Exception subclass, not OSError; caught below.
        yield InputDamaged(str(path), offset, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        yield InputDamaged(str(path), offset, f"{type(exc).__name__}: {exc}")
    finally:
        if own:
            stream.close()


def _missing_bytes(record: Any) -> int:
    """Bytes a record declared but the file did not hold (after warcio read it to its end)."""
    return int(getattr(record.raw_stream, "limit", 0) or 0)


def _warcinfo_crawl(block: bytes) -> str | None:
    for line in block.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "ispartof":
            return value.strip() or None
    return None
