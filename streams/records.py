"""The records that travel between headrace's processes.

Every record is an immutable ``msgspec.Struct``: stages return new values (``msgspec.structs.replace``)
instead of mutating, so a retried batch can never see half-applied changes. New fields must have
defaults so that older writers stay decodable (see ``streams.codec``).
"""

from __future__ import annotations

import msgspec

#: Bumped when a record changes incompatibly; the codec refuses versions it does not know.
SCHEMA_VERSION = 1


class Lineage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where a page came from, precise enough to find its bytes again."""

    source: str  # "warc" | "crawl" | "test" | ...
    warc_path: str | None = None
    offset: int | None = None  # byte offset of the (compressed) record in warc_path
    length: int | None = None  # length of the (compressed) record in bytes
    record_id: str | None = None  # WARC-Record-ID
    warc_date: str | None = None
    crawl: str | None = None  # crawl / collection name (warcinfo isPartOf, or crawl job)
    job: str | None = None  # crawl job id for live crawls


class Signal(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One policy input or decision kept as provenance (robots rule, opt-out signal, ...).

    ``verdict`` is what the signal says ("allow", "deny", "reserved", "unset", ...); the policy that
    turned the signals into a keep/drop decision records itself as ``kind="policy"``.
    """

    kind: str  # "robots" | "noai" | "tdmrep" | "content-usage" | "ai-robots" | "policy" | ...
    verdict: str
    source: str = ""  # where the signal was read: "robots.txt", "header:x-robots-tag", "meta", ...
    detail: str = ""  # the rule or value that matched
    at: str = ""  # ISO-8601 UTC time the signal was read (e.g. robots.txt fetch time)


class Page(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A fetched web page as acquired by replay or the crawler, before any processing."""

    page_id: str
    url: str
    fetched_at: str  # ISO-8601 UTC
    status: int = 200
    content_type: str = ""
    headers: dict[str, list[str]] = msgspec.field(default_factory=dict)  # lower-cased names
    body: bytes = b""
    truncated: str = ""  # "" or why the body was cut ("length", "decompressed", ...)
    lineage: Lineage = msgspec.field(default_factory=lambda: Lineage(source="unknown"))
    signals: tuple[Signal, ...] = ()


class Redaction(msgspec.Struct, frozen=True, array_like=True):
    """One PII span replaced in a document (offsets refer to the text before redaction)."""

    entity: str
    start: int
    end: int
    recognizer: str


class Document(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Extracted text plus everything the pipeline learned about it."""

    doc_id: str
    page_id: str
    url: str
    text: str
    fetched_at: str = ""
    content_hash: str = ""  # sha256 of the UTF-8 text as it is now
    language: str = ""
    language_score: float = 0.0
    annotations: dict[str, float] = msgspec.field(default_factory=dict)
    pii_counts: dict[str, int] = msgspec.field(default_factory=dict)
    redactions: tuple[Redaction, ...] = ()
    lineage: Lineage = msgspec.field(default_factory=lambda: Lineage(source="unknown"))
    signals: tuple[Signal, ...] = ()
    pipeline: str = ""  # pipeline version + config hash that produced it


class Rejection(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A decision-ledger entry: one page or document the pipeline dropped, and why."""

    id: str  # doc_id, or page_id when the drop happened before a document existed
    url: str
    stage: str
    reason: str
    values: dict[str, float] = msgspec.field(default_factory=dict)
    detail: str = ""
    duplicate_of: str = ""
    lineage: Lineage = msgspec.field(default_factory=lambda: Lineage(source="unknown"))
    signals: tuple[Signal, ...] = ()
    at: str = ""
    excerpt: str = ""  # the start of the dropped document's text (before PII scrubbing), for reviews
    chars: int = 0  # length of the dropped document's text (0 for pages dropped before extraction)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A message that could not be decoded or processed, kept verbatim with the reason."""

    topic: str
    partition: int
    offset: int
    reason: str
    key: bytes | None = None
    value: bytes = b""
    at: str = ""


class BlockRule(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A compliance block rule (compacted topic ``compliance.blocklist``, key = rule id)."""

    rule_id: str
    kind: str  # "url" | "url_prefix" | "domain" | "content_hash" | "doc_id" | "near"
    value: str
    request_id: str = ""
    reason: str = ""
    created_at: str = ""
    active: bool = True
