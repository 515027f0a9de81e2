"""Build small WARC/ARC files record by record, with the damage a test wants."""

from __future__ import annotations

import gzip
import uuid
import zlib


def http_response(
    body: bytes,
    content_type: str = "text/html; charset=utf-8",
    status: int = 200,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    head = [f"HTTP/1.1 {status} OK", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def warc_record(
    rec_type: str = "response",
    url: str = "http://example.com/",
    block: bytes = b"",
    content_type: str = "application/http; msgtype=response",
    cl_delta: int = 0,
    content_length: str | None = None,
    rid: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    version: str = "1.0",
) -> bytes:
    rid = rid or f"<urn:uuid:{uuid.uuid4()}>"
    length = content_length if content_length is not None else str(len(block) + cl_delta)
    lines = [
        f"WARC/{version}",
        f"WARC-Type: {rec_type}",
        f"WARC-Record-ID: {rid}",
        "WARC-Date: 2024-05-01T12:00:00Z",
        f"WARC-Target-URI: {url}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
    ]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + block + b"\r\n\r\n"


def warcinfo(crawl: str = "TEST-CRAWL") -> bytes:
    block = f"software: warcgen\r\nisPartOf: {crawl}\r\n".encode()
    return warc_record("warcinfo", url="", block=block, content_type="application/warc-fields")


def page(n: int, body: bytes | None = None, **kw: object) -> bytes:
    body = body if body is not None else f"<!doctype html><html><body><p>page {n}</p></body></html>".encode()
    ct = str(kw.pop("http_content_type", "text/html; charset=utf-8"))
    extra = kw.pop("http_extra", ())
    return warc_record(url=f"http://example.com/{n}", block=http_response(body, ct, extra=extra), **kw)  # type: ignore[arg-type]


def request(n: int) -> bytes:
    block = f"GET /{n} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode()
    return warc_record(
        "request", url=f"http://example.com/{n}", block=block, content_type="application/http; msgtype=request"
    )


def gz_members(records: list[bytes]) -> bytes:
    return b"".join(gzip.compress(r) for r in records)


def gzip_bomb_member(record_head: bytes, zeros: int, tail: bytes = b"\r\n\r\n") -> bytes:
    """One gzip member holding ``record_head`` followed by ``zeros`` NUL bytes, built without
    materialising them."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [z.compress(record_head)]
    chunk = b"\x00" * (1 << 20)
    left = zeros
    while left:
        n = min(left, len(chunk))
        out.append(z.compress(chunk[:n]))
        left -= n
    out.append(z.compress(tail))
    out.append(z.flush())
    return b"".join(out)


def arc_file(pages: list[tuple[str, bytes]]) -> bytes:
    spec = b"1 0 test\nURL IP-address Archive-date Content-type Archive-length\n"
    out = [f"filedesc://test.arc 0.0.0.0 20240101000000 text/plain {len(spec)}\n".encode() + spec + b"\n"]
    for url, body in pages:
        block = http_response(body)
        out.append(f"{url} 93.184.216.34 20240101000000 text/html {len(block)}\n".encode() + block + b"\n")
    return b"".join(out)
