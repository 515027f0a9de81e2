"""ProcessHandler's gates: pages the crawl policy refused and blocked content never reach the shards."""

from __future__ import annotations

from compliance.blocklist import RuleSet
from consumers.extract import ExtractConfig, Extractor
from consumers.handlers import ProcessHandler
from consumers.stats import Stats
from streams.bus import Message
from streams.codec import decode, encode
from streams.records import BlockRule, Document, Lineage, Page, Rejection, Signal
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


def test_rules_that_arrive_after_start_are_applied_to_urls_and_content() -> None:
    """The rule set a follower fills starts empty; the handler must consult that very object (an empty
    rule set is falsy, which once made handlers swap it for a blocklist that never blocks)."""
    topics = Topics()
    rules = RuleSet()
    # resiliparse: trafilatura (as datatrove configures it) drops text it has seen in earlier calls
    handler = ProcessHandler(Extractor(ExtractConfig(extractor="resiliparse")), [], topics, Stats(), rules)
    kept = handler.handle([Message(topics.pages_raw, 0, 0, b"k", encode(page("http://a.example/one", ())))])
    doc = decode(next(o.value for o in kept if o.topic == topics.docs_clean))
    assert isinstance(doc, Document)
    rules.apply(BlockRule(rule_id="blk-u", kind="url", value="http://b.example/gone", request_id="r"))
    rules.apply(BlockRule(rule_id="blk-h", kind="content_hash", value=doc.content_hash, request_id="r"))
    msgs = [
        Message(topics.pages_raw, 0, 1, b"k", encode(page("http://b.example/gone", ()))),
        Message(topics.pages_raw, 0, 2, b"k", encode(page("http://c.example/same-text-elsewhere", ()))),
    ]
    out = [decode(o.value) for o in handler.handle(msgs)]
    assert all(isinstance(r, Rejection) and r.reason == "blocked" for r in out)
    assert sorted(r.detail for r in out if isinstance(r, Rejection)) == ["content_hash:blk-h", "url:blk-u"]
