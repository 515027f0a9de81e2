"""Manifest entries stay readable across the fields added to them."""

from __future__ import annotations

import msgspec

from consumers.shards.manifest import DocEntry


def test_entries_sealed_before_annotations_existed_still_decode() -> None:
    old = b'{"doc_id":"d","url":"u","content_hash":"h","start":0,"length":3}'
    entry = msgspec.json.decode(old, type=DocEntry)
    assert entry.annotations == {} and entry.language_score == 0.0


def test_annotations_round_trip_and_are_omitted_when_empty() -> None:
    entry = DocEntry("d", "u", "h", 0, 3, language_score=0.9, annotations={"fineweb.list_ratio": 0.1})
    assert msgspec.json.decode(msgspec.json.encode(entry), type=DocEntry) == entry
    assert b"annotations" not in msgspec.json.encode(DocEntry("d", "u", "h", 0, 3))
