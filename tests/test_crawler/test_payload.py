"""Payload decoding is bounded and never raises; binary sniffing follows magic numbers."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from crawler.payload import dechunk, decode_body, sniff_binary

HTML = b"<html><body>" + b"<p>hello world</p>" * 500 + b"</body></html>"


def chunked(data: bytes, size: int = 1000) -> bytes:
    parts = [
        f"{len(data[i : i + size]):x}\r\n".encode() + data[i : i + size] + b"\r\n" for i in range(0, len(data), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("gzip", gzip.compress(HTML)),
        ("x-gzip", gzip.compress(HTML)),
        ("deflate", zlib.compress(HTML)),
        ("deflate", zlib.compress(HTML)[2:-4]),  # raw deflate, as some servers send it
        ("br", brotli.compress(HTML)),
        ("identity", HTML),
        ("gzip", HTML),  # stored already decoded (wget): the header lies, the bytes are kept
    ],
)
def test_content_encodings(encoding: str, encoded: bytes) -> None:
    body = decode_body(encoded, "", encoding, cap=1 << 20)
    assert body.data == HTML and body.truncated == ""


def test_chunked_then_gzip() -> None:
    body = decode_body(chunked(gzip.compress(HTML)), "chunked", "gzip", cap=1 << 20)
    assert body.data == HTML
    assert dechunk(b"not chunked at all") is None
    # A body cut short (truncated record) keeps the complete chunks and the partial one.
    assert dechunk(chunked(HTML)[:2500]) == HTML[:2481]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_decompression_bombs_stop_at_the_cap(encoding: str) -> None:
    bomb_plain = b"<p>" + b"a" * (64 * 1024 * 1024)
    encoded = {
        "gzip": gzip.compress(bomb_plain, 9),
        "deflate": zlib.compress(bomb_plain, 9),
        "br": brotli.compress(bomb_plain, quality=5),
    }[encoding]
    assert len(encoded) < 1024 * 1024
    body = decode_body(encoded, "", encoding, cap=100_000)
    assert len(body.data) == 100_000 and body.truncated == "decompressed"


def test_corrupt_encoded_bodies_never_raise() -> None:
    broken = bytearray(gzip.compress(HTML))
    broken[len(broken) // 2] ^= 0xFF
    for enc in ("gzip", "deflate", "br", "compress", "gzip, br"):
        body = decode_body(bytes(broken), "chunked", enc, cap=1 << 20)
        assert isinstance(body.data, bytes)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.4", "pdf"),
        (b"\x1f\x8b\x08", "gzip"),
        (b"BZh91AY", "bzip2"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff\xdb", "jpeg"),
        (b"\x7fELF\x02", "elf"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8", "webp"),
        (b"\x00\x00\x00\x18ftypmp42", "mp4"),
        (b"<html>\x00\x00\x00\x00", "binary"),
    ],
)
def test_binary_is_recognised(head: bytes, kind: str) -> None:
    assert sniff_binary(head + bytes(range(32)) * 4) == kind


@pytest.mark.parametrize(
    "text",
    [HTML, "<html>ünïcödé</html>".encode(), "<html>日本語</html>".encode("shift_jis"), "\ufeff<html>".encode("utf-16")],
)
def test_text_is_not_binary(text: bytes) -> None:
    assert sniff_binary(text) is None
