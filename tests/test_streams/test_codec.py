from __future__ import annotations

import contextlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import codec
from streams.codec import DecodeError, decode, decode_as, encode
from streams.records import BlockRule, DeadLetter, Document, Lineage, Page, Redaction, Rejection, Signal


def _page() -> Page:
    return Page(
        page_id="p1",
        url="https://example.org/a",
        fetched_at="2024-01-01T00:00:00Z",
        status=200,
        content_type="text/html",
        headers={"x-robots-tag": ["noai", "noimageai"]},
        body=b"<html>\xff\x00</html>",
        lineage=Lineage(source="warc", warc_path="a.warc.gz", offset=12, record_id="<urn:uuid:1>"),
        signals=(Signal(kind="robots", verdict="allow", detail="Allow: /"),),
    )


def test_round_trip_every_kind() -> None:
    records = [
        _page(),
        Document(doc_id="d", page_id="p", url="u", text="héllo", redactions=(Redaction("EMAIL", 1, 5, "re"),)),
        Rejection(id="d", url="u", stage="quality", reason="short", values={"words": 3.0}),
        DeadLetter(topic="t", partition=1, offset=2, reason="bad", value=b"\x00"),
        BlockRule(rule_id="r1", kind="domain", value="example.org"),
    ]
    for rec in records:
        assert decode(encode(rec)) == rec


def test_wrong_kind_is_named() -> None:
    with pytest.raises(DecodeError) as err:
        decode_as(encode(_page()), Document)
    assert err.value.reason == "wrong-kind"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (b"HR", "short"),
        (b'{"json": true}', "bad-magic"),
        (b"HR\x63\x01\x80", "unknown-version"),
        (b"HR\x01\x63\x80", "unknown-kind"),
        (b"HR\x01\x01\xc1", "invalid-body"),
        (b"HR\x01\x01" + msgspec.msgpack.encode({"url": 3}), "invalid-body"),
    ],
)
def test_bad_messages_raise_decode_error_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode(data)
    assert err.value.reason == reason


def test_future_fields_are_ignored() -> None:
    # A newer writer adds a field: older readers must still decode the record.
    body = msgspec.msgpack.encode({"page_id": "p", "url": "u", "fetched_at": "t", "new_field": [1, 2]})
    page = decode_as(b"HR\x01\x01" + body, Page)
    assert page.url == "u"


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_decode_only_raises_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=256))
def test_fuzz_valid_header_random_body(body: bytes) -> None:
    for kind in codec.KINDS.values():
        with contextlib.suppress(DecodeError):
            decode(b"HR\x01" + bytes([kind]) + body)


def test_invalid_utf8_in_a_string_field_is_a_decode_error() -> None:
    """Found by the mutation fuzzer: msgspec raises a bare UnicodeDecodeError for a msgpack string
    that is not UTF-8; the shard and ledger sinks only catch DecodeError, so it killed them."""
    good = encode(Page(page_id="p", url="http://e.com/", fetched_at="t"))
    bad = good.replace(b"http://e.com/", b"http://\xd0O.com/")
    with pytest.raises(DecodeError) as err:
        decode(bad)
    assert err.value.reason == "invalid-body"
    with pytest.raises(DecodeError):
        decode_as(bad, Page)
