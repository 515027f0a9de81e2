"""Ledger entries carry what the scorecard needs, and older entries stay readable."""

from __future__ import annotations

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
