"""Versioned wire format for every record on the bus.

Layout: ``b"HR"`` magic, one byte schema version, one byte record kind, then a msgpack body.
The magic and kind let a consumer reject a message meant for another topic or tool with a precise
reason instead of a confusing field error; the version lets old and new processes share a topic.
Decoding raises only :class:`DecodeError` (any failure inside msgspec is wrapped), so callers can
route the message to the dead-letter topic and go on.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from streams.records import (
    SCHEMA_VERSION,
    BlockRule,
    DeadLetter,
    Document,
    Page,
    Rejection,
)

MAGIC = b"HR"
HEADER_LEN = 4

#: Record kinds on the wire. Never reuse a number.
KINDS: dict[type, int] = {Page: 1, Document: 2, Rejection: 3, DeadLetter: 4, BlockRule: 5}
_BY_KIND = {v: k for k, v in KINDS.items()}
SUPPORTED_VERSIONS = frozenset({SCHEMA_VERSION})
#: What msgspec can raise on hostile bytes: its own errors, and ``UnicodeDecodeError`` for a msgpack
#: string that is not valid UTF-8 (msgspec does not wrap that one; found by fuzzing).
_BODY_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)

_encoder = msgspec.msgpack.Encoder()
_decoders: dict[type, msgspec.msgpack.Decoder[Any]] = {t: msgspec.msgpack.Decoder(t) for t in KINDS}

Record = Page | Document | Rejection | DeadLetter | BlockRule
R = TypeVar("R", Page, Document, Rejection, DeadLetter, BlockRule)


class DecodeError(ValueError):
    """A message that is not a valid headrace record; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def encode(record: Record) -> bytes:
    kind = KINDS.get(type(record))
    if kind is None:
        raise TypeError(f"not a wire record: {type(record).__name__}")
    return MAGIC + bytes((SCHEMA_VERSION, kind)) + _encoder.encode(record)


def peek_kind(data: bytes) -> type:
    """Return the record type of ``data`` after checking magic and version."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("not-bytes", f"expected bytes, got {type(data).__name__}")
    if len(data) < HEADER_LEN:
        raise DecodeError("short", f"message of {len(data)} bytes is shorter than the header")
    if bytes(data[:2]) != MAGIC:
        raise DecodeError("bad-magic", f"magic {bytes(data[:2])!r} is not {MAGIC!r}")
    version = data[2]
    if version not in SUPPORTED_VERSIONS:
        raise DecodeError(
            "unknown-version", f"schema version {version} (this build reads {sorted(SUPPORTED_VERSIONS)})"
        )
    kind = _BY_KIND.get(data[3])
    if kind is None:
        raise DecodeError("unknown-kind", f"record kind {data[3]}")
    return kind


def decode(data: bytes) -> Record:
    kind = peek_kind(data)
    try:
        result: Record = _decoders[kind].decode(memoryview(data)[HEADER_LEN:])
    except _BODY_ERRORS as exc:
        raise DecodeError("invalid-body", f"{kind.__name__}: {exc}") from exc
    return result


def decode_as(data: bytes, expected: type[R]) -> R:
    """Decode and check the record type, so a Document on a page topic is a clear error."""
    kind = peek_kind(data)
    if kind is not expected:
        raise DecodeError("wrong-kind", f"expected {expected.__name__}, got {kind.__name__}")
    try:
        result: R = _decoders[kind].decode(memoryview(data)[HEADER_LEN:])
    except _BODY_ERRORS as exc:
        raise DecodeError("invalid-body", f"{kind.__name__}: {exc}") from exc
    return result


_json_encoder = msgspec.json.Encoder()


def to_json(record: Record) -> bytes:
    """JSON form for ledgers and dumps (bytes fields become base64 strings)."""
    return _json_encoder.encode(record)


def to_builtins(record: Record) -> Any:
    return msgspec.to_builtins(record)
