"""One WARC of hostile pages, each with the outcome it must get (sealed, or quarantined with a reason)."""

from __future__ import annotations

import gzip
import random
import zlib
from pathlib import Path

from integration.crash_harness import page_html, page_text
from warcgen import gzip_bomb_member, http_response, warc_record

MIB = 1024 * 1024


def _stream_gzip(prefix: bytes, filler: bytes, total: int, suffix: bytes) -> bytes:
    """gzip of prefix + filler repeated to ``total`` bytes + suffix, without building it in memory."""
    z = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [z.compress(prefix)]
    chunk = filler * max(1, (1 << 20) // len(filler))
    left = total
    while left > 0:
        piece = chunk[: min(left, len(chunk))]
        out.append(z.compress(piece))
        left -= len(piece)
    out.append(z.compress(suffix))
    out.append(z.flush())
    return b"".join(out)


def _huge_record(
    url: str, body_len: int, filler: bytes, head: bytes = b"<html><body><p>", tail: bytes = b"</p></body></html>"
) -> bytes:
    """A gzip member holding a WARC response whose HTML body is ``body_len`` bytes (mostly ``filler``)."""
    http_head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {body_len}\r\n\r\n".encode()
    block_len = len(http_head) + body_len
    warc_head = (
        "WARC/1.0\r\nWARC-Type: response\r\n"
        f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{len(url) * 7919 % 10**12:012d}>\r\n"
        f"WARC-Date: 2024-05-01T12:00:00Z\r\nWARC-Target-URI: {url}\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {block_len}\r\n\r\n"
    ).encode()
    return _stream_gzip(warc_head + http_head + head, filler, body_len - len(head) - len(tail), tail + b"\r\n\r\n")


def hostile_warc(path: Path, big_mib: int = 100) -> dict[str, str]:
    """Write the archive; returns url -> what must happen ("sealed" or "quarantined")."""
    rng = random.Random(5)
    expect: dict[str, str] = {}
    members: list[bytes] = []

    def add(url: str, record: bytes, outcome: str, compress: bool = True) -> None:
        expect[url] = outcome
        members.append(gzip.compress(record) if compress else record)

    def good(n: int) -> None:
        url = f"http://good.example/{n}"
        add(url, warc_record(url=url, block=http_response(page_html(f"Good {n}", page_text(rng)))), "sealed")

    good(1)
    # 100 MB page: the body is cut at the payload cap and marked truncated; extraction sees 5 MiB.
    url = "http://hostile.example/huge-100mb"
    sentence = b"The river runs past the old mill and the people of the town walk along it. "
    expect[url] = "any"
    members.append(_huge_record(url, big_mib * MIB, b"</p><p>" + sentence * 3))
    good(2)
    # One 20 MB text node (no markup inside).
    url = "http://hostile.example/text-node-20mb"
    expect[url] = "any"
    members.append(_huge_record(url, 20 * MIB, sentence))
    # 10,000-deep nesting.
    url = "http://hostile.example/deep"
    deep = b"<html><body>" + b"<div>" * 10_000 + page_text(rng).encode() + b"</div>" * 10_000 + b"</body></html>"
    add(url, warc_record(url=url, block=http_response(deep)), "any")
    good(3)
    # Binary labelled as HTML: PNG, PDF, ELF, gzip.
    for name, blob in (
        ("png", b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(3000))),
        ("pdf", b"%PDF-1.7\n" + bytes(rng.randrange(256) for _ in range(3000))),
        ("elf", b"\x7fELF\x02\x01\x01" + bytes(rng.randrange(256) for _ in range(3000))),
        ("gzip", gzip.compress(bytes(rng.randrange(256) for _ in range(3000)))),
    ):
        url = f"http://hostile.example/binary-{name}"
        add(url, warc_record(url=url, block=http_response(blob)), "not-sealed")
    # Invalid UTF-8 declared as UTF-8, and non-charset codecs declared as charsets.
    text = page_text(rng).encode()
    url = "http://hostile.example/invalid-utf8"
    body = b"<html><body><p>" + text.replace(b"e", b"\xff", 40) + b"</p></body></html>"
    add(url, warc_record(url=url, block=http_response(body)), "any")
    for cs in ("idna", "base64", "undefined"):
        url = f"http://hostile.example/charset-{cs}"
        body = page_html("Charset", page_text(rng))
        add(url, warc_record(url=url, block=http_response(body, content_type=f"text/html; charset={cs}")), "sealed")
    # Content-Encoding: gzip bomb inside the record (256 MiB of NULs).
    url = "http://hostile.example/content-encoding-bomb"
    bomb = gzip_bomb_member(b"<html><body>", 256 * MIB, b"</body></html>")
    head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
    block = f"{head}Content-Length: {len(bomb)}\r\n\r\n".encode() + bomb
    add(url, warc_record(url=url, block=block), "not-sealed")
    # A gzip-member bomb: the WARC record itself decompresses to 256 MiB.
    url = "http://hostile.example/member-bomb"
    expect[url] = "not-sealed"
    head = (
        f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {url}\r\nContent-Length: {256 * MIB + 44}\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    ).encode()
    members.append(gzip_bomb_member(head, 256 * MIB))
    good(4)
    # Undecodable record header, then a good page after it.
    members.append(gzip.compress(b"WARC/1.0\r\nContent-Length: banana\r\n\r\nxx\r\n\r\n"))
    good(5)
    with path.open("wb") as fh:
        for m in members:
            fh.write(m)
    return expect
