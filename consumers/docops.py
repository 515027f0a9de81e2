"""Immutable edits of :class:`streams.records.Document` shared by the stages.

Documents are frozen; a stage that changes the text must also refresh ``content_hash`` (it is the hash
of the text *as it is now*; ``doc_id`` keeps naming the extracted page, so a takedown can find it).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from streams.ids import content_hash
from streams.records import Document


def with_text(doc: Document, text: str) -> Document:
    if text == doc.text:
        return doc
    return msgspec.structs.replace(doc, text=text, content_hash=content_hash(text))


def annotate(doc: Document, values: Mapping[str, float], prefix: str) -> Document:
    """Add ``prefix.key`` annotations (rounded to 6 digits: they are measurements, not identities)."""
    if not values:
        return doc
    merged = dict(doc.annotations)
    for k, v in values.items():
        merged[f"{prefix}.{k}"] = round(float(v), 6)
    return msgspec.structs.replace(doc, annotations=merged)
