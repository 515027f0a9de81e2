"""HTTP payload handling with hard limits: de-chunking, Content-Encoding, binary sniffing.

Archives store payloads as they came off the wire (chunked, gzip, brotli) or already decoded with the
original headers kept (wget, some Heritrix versions). Like warcio we try the declared transfer and
content codings and fall back to the stored bytes when they do not apply. Unlike warcio every decoder
here is bounded: output stops at the cap and the body is marked truncated.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

try:  # brotli ships with the core dependencies; stay importable without it.
    import brotli
except ImportError:  # pragma: no cover - exercised only in stripped-down installs
    brotli = None

_STEP = 256 * 1024

#: Leading bytes of formats that are never HTML, with the name given in the skip reason.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"\x1f\x8b", "gzip"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x7fELF", "elf"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ms-office"),
    (b"MZ", "exe"),
    (b"\xca\xfe\xba\xbe", "java-class"),
    (b"\x00asm", "wasm"),
    (b"wOFF", "woff"),
    (b"wOF2", "woff2"),
    (b"OggS", "ogg"),
    (b"ID3", "mp3"),
    (b"fLaC", "flac"),
    (b"FWS", "swf"),
    (b"CWS", "swf"),
    (b"%!PS", "postscript"),
    (b"{\\rtf", "rtf"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_RIFF_KINDS = {b"WEBP": "webp", b"WAVE": "wav", b"AVI ": "avi"}
#: C0 control bytes that do not occur in text (tab, newlines, form feed and escape do).
_CONTROL = bytes(b for b in range(0x20) if b not in b"\t\n\r\f\x1b")


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes
    truncated: str = ""  # "" | "length" | "decompressed"
    note: str = ""  # e.g. "content-encoding gzip did not apply; stored bytes kept"


def dechunk(data: bytes) -> bytes | None:
    """Decode HTTP/1.1 chunked transfer coding; None if ``data`` is not chunked.

    A body cut short (the record was truncated) yields the chunks that are complete plus the partial one.
    """
    out: list[bytes] = []
    pos = 0
    n = len(data)
    while pos < n:
        eol = data.find(b"\n", pos, pos + 1024)
        if eol < 0:
            return b"".join(out) if out else None
        size_field = data[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            return b"".join(out) if out else None
        if size < 0:
            return None
        start = eol + 1
        if size == 0:
            return b"".join(out)
        out.append(data[start : start + size])
        pos = start + size
        if data[pos : pos + 2] == b"\r\n":
            pos += 2
        elif data[pos : pos + 1] == b"\n":
            pos += 1
        elif pos < n:
            return None
    return b"".join(out)


def _inflate(data: bytes, wbits: int, cap: int) -> tuple[bytes, bool] | None:
    """Bounded zlib inflate: ``(output, over_cap)``, or None if the data is not in this format."""
    z = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    total = 0
    pending = data
    try:
        while pending:
            out = z.decompress(pending, min(_STEP, cap + 1 - total))
            parts.append(out)
            total += len(out)
            if total > cap:
                return b"".join(parts)[:cap], True
            if z.eof:
                break
            pending = z.unconsumed_tail
            if not out and not pending:
                break
    except zlib.error:
        if total == 0:
            return None
        # Decoded a part, then hit corrupt data: keep the part (the record itself was cut short).
    return b"".join(parts), False


def _unbrotli(data: bytes, cap: int) -> tuple[bytes, bool] | None:
    if brotli is None:
        return None
    d = brotli.Decompressor()
    parts: list[bytes] = []
    total = 0
    try:
        out = d.process(data, output_buffer_limit=_STEP)
        while True:
            parts.append(out)
            total += len(out)
            if total > cap:
                return b"".join(parts)[:cap], True
            if d.is_finished() or d.can_accept_more_data():
                break
            out = d.process(b"", output_buffer_limit=_STEP)
    except brotli.error:
        if total == 0:
            return None
    return b"".join(parts), False


def decode_body(raw: bytes, transfer_encoding: str, content_encoding: str, cap: int) -> Body:
    """The payload as a browser would see it, at most ``cap`` bytes; never raises."""
    data = raw
    notes: list[str] = []
    if "chunked" in transfer_encoding.lower():
        dechunked = dechunk(data)
        if dechunked is None:
            notes.append("not chunked despite Transfer-Encoding")
        else:
            data = dechunked
    truncated = ""
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding in ("identity", "none", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            res = _inflate(data, 16 + zlib.MAX_WBITS, cap)
        elif coding == "deflate":
            res = _inflate(data, zlib.MAX_WBITS, cap) or _inflate(data, -zlib.MAX_WBITS, cap)
        elif coding == "br":
            res = _unbrotli(data, cap)
        else:
            notes.append(f"unknown content-encoding {coding}")
            break
        if res is None:
            # Stored already decoded (common in wget and Heritrix archives): keep the bytes.
            notes.append(f"content-encoding {coding} did not apply")
            break
        data, over = res
        if over:
            truncated = "decompressed"
            break
    if len(data) > cap:
        data = data[:cap]
        truncated = truncated or "length"
    return Body(data, truncated, "; ".join(notes))


def sniff_binary(head: bytes) -> str | None:
    """Name of a non-HTML format recognised from the first bytes, else None.

    Magic numbers first; then a text test (UTF-16 BOMs allowed): more than 5 % control bytes or any
    NUL in the first KiB means the payload is not text, whatever its Content-Type says.
    """
    lead = head.lstrip(b" \t\r\n")[:16]
    for magic, kind in MAGIC:
        if lead.startswith(magic):
            return kind
    if lead[:4] == b"RIFF" and len(lead) >= 12:
        return _RIFF_KINDS.get(lead[8:12], "riff")
    if lead[4:8] == b"ftyp":
        return "mp4"
    sample = head[:1024]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    if not sample:
        return None
    if b"\x00" in sample:
        return "binary"
    control = len(sample) - len(sample.translate(None, _CONTROL))
    if control * 20 > len(sample):
        return "binary"
    return None
