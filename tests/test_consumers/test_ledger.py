"""Ledger entries carry what the scorecard needs, and older entries stay readable."""

from __future__ import annotations

from pathlib import Path

from consumers.ledger import EXCERPT_CHARS, rejection_for
from consumers.stage import Drop
from streams.codec import decode, encode
from streams.records import Document, Page, Rejection


def test_a_dropped_document_keeps_the_start_of_its_text_and_its_length() -> None:
    doc = Document(doc_id="d", page_id="p", url="https://a.example/", text="x" * 1000)
    rej = rejection_for(doc, Drop("short", {"words": 3.0, "threshold": 50.0}, stage="gopher_quality"), "t")
    assert rej.excerpt == "x" * EXCERPT_CHARS and rej.chars == 1000
    assert decode(encode(rej)) == rej


def test_a_dropped_page_has_no_excerpt() -> None:
    page = Page(page_id="p", url="https://a.example/", fetched_at="t", body=b"<html>secret</html>")
    rej = rejection_for(page, Drop("blocked", stage="blocklist"), "t")
    assert rej.excerpt == "" and rej.chars == 0


def test_entries_written_before_the_fields_existed_still_decode() -> None:
    old = Rejection(id="d", url="u", stage="quality", reason="short")
    assert decode(encode(old)).excerpt == ""


def test_a_record_of_the_wrong_kind_on_the_rejected_topic_is_a_dead_letter(tmp_path: Path) -> None:
    import json

    from consumers.ledger import LedgerSink
    from streams.memory import InMemoryBus
    from streams.topics import Topics

    topics = Topics()
    bus = InMemoryBus(default_partitions=1)
    pub = bus.publisher()
    good = Rejection(id="d", url="https://a.example/", stage="quality", reason="short")
    pub.publish(topics.docs_rejected, encode(good), b"d")
    pub.publish(topics.docs_rejected, encode(Page(page_id="p", url="https://b.example/", fetched_at="t")), b"p")
    sink = LedgerSink(tmp_path, topics.docs_rejected, topics.dlq)
    sink.attach(bus.subscriber("ledger", [topics.docs_rejected, topics.dlq]))
    while sink.step(timeout=0):
        pass
    sink.close()
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    dead = [json.loads(x) for x in (tmp_path / "dlq.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rejected] == ["d"]
    assert len(dead) == 1 and dead[0]["topic"] == topics.docs_rejected and dead[0]["reason"]
