"""Which WARC records become pages: datatrove's ``WarcReader`` rule, made explicit and counted.

datatrove keeps ``response`` and ``conversion`` records whose WARC-Identified-Payload-Type is
``text/html`` and, when that header is absent, asks libmagic about the bytes. We use the same record
types and the identified payload type when it is present and not empty, else the HTTP Content-Type
(what the server said), and sniff the bytes only when neither names a type. Binary payloads are then
rejected by their magic numbers whatever they are labelled (:func:`crawler.payload.sniff_binary`).
docs/replay.md compares the counts with datatrove's on the shared corpus.
"""

from __future__ import annotations

import re

PAGE_RECORD_TYPES = frozenset({"response", "conversion"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

_HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|title|meta)[\s>/]", re.I | re.S)


def mime_of(value: str | None) -> str:
    """``"text/html; charset=utf-8"`` -> ``"text/html"``."""
    if not value:
        return ""
    return value.split(";", 1)[0].strip().lower()


def wants_block(rec_type: str) -> bool:
    """Only page record types need their block read; everything else is skipped unread."""
    return rec_type in PAGE_RECORD_TYPES


def html_verdict(payload_type: str | None, content_type: str | None) -> str | None:
    """None when the record is HTML by its labels, ``"sniff"`` when unlabelled, else a skip reason."""
    identified = mime_of(payload_type)
    if identified:
        return None if identified in HTML_TYPES else "not-html"
    declared = mime_of(content_type)
    if declared in HTML_TYPES:
        return None
    if not declared or declared in ("unk", "unknown", "no-type", "application/octet-stream"):
        return "sniff"
    return "not-html"


def looks_like_html(head: bytes) -> bool:
    """The first bytes of an unlabelled payload start like an HTML document."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return _HTML_START.match(head[:1024]) is not None
