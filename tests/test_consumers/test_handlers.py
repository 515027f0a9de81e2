"""ProcessHandler's opt-out gate: pages the crawl policy refused never reach extraction or the shards."""

from __future__ import annotations

from consumers.extract import ExtractConfig, Extractor
from consumers.handlers import ProcessHandler
from consumers.stats import Stats
from streams.bus import Message
from streams.codec import decode, encode
from streams.records import Document, Lineage, Page, Rejection, Signal
from streams.topics import Topics

HTML = (
    b"<html><head><title>t</title></head><body><article><p>"
    + b"A perfectly ordinary paragraph of prose that any extractor keeps as the main text. " * 8
    + b"</p></article></body></html>"
)


def page(url: str, signals: tuple[Signal, ...], body: bytes = HTML, truncated: str = "") -> Page:
    return Page(
        page_id=url[-8:],
        url=url,
        fetched_at="2025-01-01T00:00:00Z",
        content_type="text/html",
        body=body,
        truncated=truncated,
        lineage=Lineage(source="crawl", job="j1"),
        signals=signals,
    )


def test_opted_out_pages_go_to_the_ledger_with_their_reason() -> None:
    topics = Topics()
    stats = Stats()
    handler = ProcessHandler(Extractor(ExtractConfig()), [], topics, stats)
    robots = Signal(kind="robots", verdict="allow", source="http://a.example/robots.txt", at="2025-01-01T00:00:00Z")
    noai = Signal(kind="noai", verdict="deny", source="meta:robots", detail="noai")
    deny = Signal(kind="policy", verdict="deny", source="opt-out-policy:x", detail="opted out: noai(meta:robots)")
    allow = Signal(kind="policy", verdict="allow", source="opt-out-policy:x", detail="no applicable opt-out signal")
    msgs = [
        Message(
            topics.pages_raw,
            0,
            0,
            b"k",
            encode(page("http://a.example/out", (robots, noai, deny), b"", "withheld:opted-out")),
        ),
        Message(topics.pages_raw, 0, 1, b"k", encode(page("http://a.example/kept", (robots, allow)))),
    ]
    out = handler.handle(msgs)
    rejected = [decode(o.value) for o in out if o.topic == topics.docs_rejected]
    docs = [decode(o.value) for o in out if o.topic == topics.docs_clean]
    assert len(rejected) == 1 and isinstance(rejected[0], Rejection)
    rej = rejected[0]
    assert (rej.url, rej.stage, rej.reason) == ("http://a.example/out", "policy", "opted-out")
    assert rej.detail == "opted out: noai(meta:robots)"
    assert {s.kind for s in rej.signals} == {"robots", "noai", "policy"} and rej.lineage.job == "j1"
    assert len(docs) == 1 and isinstance(docs[0], Document)
    assert docs[0].url == "http://a.example/kept" and docs[0].signals == (robots, allow)
    assert stats.get("policy/drop/opted-out") == 1
    handler.close()
