"""The record reader: WARC/ARC framing with damage recovery, on top of warcio's header parsers.

warcio parses every record header (WARC 0.17-1.1, ARC converted to WARC headers, HTTP status and
headers, wget's bracketed target URIs). We drive it record by record instead of through
``ArchiveIterator`` because that iterator cannot continue after damage, reads header lines without a
length limit (warcio #122), inflates without a cap, reports a wrong Content-Length only on stderr and
rejects single-member ("non-chunked") gzip files such as the ClueWeb09 samples. Here:

* gzip files are read member by member (:class:`crawler.segment.GzipMember`); after a corrupt or cut
  member the reader rescans the compressed bytes for the next member that inflates to a record header;
* uncompressed files are read record by record; when a record does not end where its Content-Length
  says, the reader rescans from the start of that record's block for the next record header, so
  records swallowed by a too-long Content-Length are read again;
* every record is checked before it is handed out: declared bytes present, an empty line and then a
  record header (or the end) after the block, gzip CRC intact. A record that fails is reported as
  :class:`Damage` with its offset and the reason; nothing else about it is handed out;
* every read is bounded: header blocks, decoded bytes per record, wall-clock time per record.

Positions: a record's ``offset`` is the raw (compressed) offset of its gzip member, or of the record
itself in an uncompressed file. :class:`Position` is where reading can resume; ``skip`` counts records
inside a single-member gzip file, the only case where records do not start at a member boundary.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from warcio.recordloader import ArcWarcRecordLoader

from crawler.headers import parse_headers
from crawler.rawio import RawReader, ReadTimeout, Source
from crawler.replay_config import ReplayConfig
from crawler.segment import GZIP_MAGIC, GzipMember, PlainSegment, Segment

log = logging.getLogger(__name__)

#: A record header: a WARC version line, or an ARC v1 header line (url ip date mime length).
_WARC_HEAD = rb"WARC/[0-9]\.[0-9]+\r?\n"
_ARC_HEAD = rb"[A-Za-z][A-Za-z0-9+.-]*:[^ \r\n]* [^ \r\n]+ [0-9]{8,20} [^ \r\n]* [^ \r\n]+\r?\n"
_STARTS = {"warc": re.compile(_WARC_HEAD), "arc": re.compile(_ARC_HEAD)}
RECORD_START = re.compile(_WARC_HEAD + b"|" + _ARC_HEAD)
RECORD_START_AFTER_NEWLINE = re.compile(rb"\n(?=" + _WARC_HEAD + b"|" + _ARC_HEAD + rb")")
_HTTP_URI = ("http:", "https:")
_TYPE_FIELD = re.compile(rb"\nWARC-Type:[ \t]*([^\r\n]*)", re.I)
_LENGTH_FIELD = re.compile(rb"\nContent-Length:[ \t]*([0-9]{1,18})[ \t]*\r?\n", re.I)
_HTTP_RECORDS = frozenset({"response", "request", "revisit"})


@dataclass(frozen=True, slots=True)
class Position:
    offset: int
    skip: int = 0


@dataclass(slots=True)
class RawRecord:
    offset: int
    length: int | None  # raw bytes the record (or its gzip member) occupies, when known
    fmt: str  # "warc" | "arc"
    rec_type: str
    headers: Any  # warcio StatusAndHeaders (ARC headers converted to WARC names)
    http: Any  # warcio StatusAndHeaders of the HTTP response, or None
    payload: bytes | None  # stored payload bytes (at most the read cap), None when not read
    payload_complete: bool = True  # False when the payload was longer than the read cap
    skip: str | None = None  # why the block was not read (e.g. "record-type:request")
    sep: bytes = b"\r\n\r\n"  # what must follow the block: CRLFCRLF, LFLF (LF-only headers) or LF (ARC)
    declared: str = ""  # Content-Length as written (for messages when headers were not parsed)


@dataclass(frozen=True, slots=True)
class Damage:
    offset: int
    reason: str


#: Decides after the headers: None = read the payload, a string = skip the block with that reason.
Chooser = Callable[[str, Any, Any], str | None]


class _Bad(Exception):
    """One record is damaged; ``resync`` says where to look for the next one."""

    def __init__(self, reason: str, resync: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.resync = resync  # "block" | "next-byte" | "here"


def is_record_start(head: bytes, fmt: str | None = None) -> bool:
    """``head`` begins with a record header (of format ``fmt`` when given)."""
    pattern = _STARTS[fmt] if fmt is not None else RECORD_START
    return pattern.match(head) is not None


class ArchiveReader:
    """Iterate ``(RawRecord | Damage, next Position)`` over one archive; never raises for bad data.

    Only :class:`crawler.rawio.SourceError` propagates: the bytes could not be read (missing file,
    network failure after the retries), which says nothing about the archive and ends this read.
    """

    def __init__(
        self,
        source: Source,
        config: ReplayConfig | None = None,
        start: Position | None = None,
        choose: Chooser | None = None,
        block_types: frozenset[str] | None = None,
    ) -> None:
        self.source = source
        self.config = config or ReplayConfig()
        self.start = start or Position(0)
        self.choose = choose or (lambda _t, _h, _http: None)
        self.block_types = block_types
        self._loader = ArcWarcRecordLoader(verify_http=False, arc2warc=True)
        self.raw: RawReader | None = None
        #: Payload bytes read per record: the page cap plus one byte to notice that it was cut.
        self.payload_read_cap = self.config.max_payload_bytes + 1
        self.compressed: bool | None = None
        self._block_start = 0

    @property
    def bytes_read(self) -> int:
        return self.raw.tell() if self.raw is not None else self.start.offset

    def __iter__(self) -> Iterator[tuple[RawRecord | Damage, Position | None]]:
        self.raw = RawReader(self.source, self.start.offset, retries=self.config.network_retries)
        try:
            head = self.raw.peek(2)
            self.compressed = head == b"\x1f\x8b"
            if self.compressed:
                yield from self._gzip()
            else:
                yield from self._plain()
        finally:
            self.raw.close()

    # -- uncompressed ------------------------------------------------------------------------------
    def _plain(self) -> Iterator[tuple[RawRecord | Damage, Position | None]]:
        assert self.raw is not None  # noqa: S101 - set by __iter__
        seg = PlainSegment(self.raw)
        while True:
            seg.skip_blank_lines()
            if seg.at_end():
                return
            offset = seg.tell()
            self._block_start = offset
            self.raw.deadline = time.monotonic() + self.config.record_time_limit_s
            try:
                rec = self._record(seg, offset)
                end = seg.tell()
                verdict = self._after_block(seg, rec)
                if verdict == "mismatch":
                    raise _Bad(self._mismatch(rec, seg.peek(32)), "block")
                if verdict == "unknown":
                    # Where is the next record header, counted from this record's block?
                    seg.seek(self._block_start)
                    nxt = self._scan(seg)
                    if nxt is not None and nxt < end:
                        raise _Bad(self._mismatch(rec, b""), "block")  # the block swallowed a record
                    seg.seek(end)  # the record is intact; what follows is reported next round
                rec.length = seg.tell() - offset
                self.raw.deadline = None
                yield rec, Position(seg.tell())
            except (_Bad, ReadTimeout) as exc:
                self.raw.deadline = None
                bad = exc if isinstance(exc, _Bad) else _Bad(self._timeout_reason(), "here")
                if bad.resync == "block":
                    seg.seek(max(self._block_start, offset + 1))
                elif bad.resync == "next-byte":
                    seg.seek(offset + 1)
                try:
                    self.raw.deadline = time.monotonic() + self.config.record_time_limit_s
                    nxt = self._scan(seg)
                except ReadTimeout:
                    nxt = None  # the input stalls: give up on it (the position so far is kept)
                finally:
                    self.raw.deadline = None
                yield Damage(offset, bad.reason), (Position(nxt) if nxt is not None else None)
                if nxt is None:
                    return

    def _scan(self, seg: PlainSegment) -> int | None:
        """Move to the next line that starts a record; its offset, or None at the end."""
        if seg.tell() == 0 and is_record_start(seg.peek(256)):
            return 0
        assert self.raw is not None  # noqa: S101
        found = self.raw.find(RECORD_START_AFTER_NEWLINE, seg.tell())
        seg.seek(self.raw.tell())
        if found is None:
            return None
        seg.seek(found + 1)
        return found + 1

    # -- gzip ------------------------------------------------------------------------------------
    def _gzip(self) -> Iterator[tuple[RawRecord | Damage, Position | None]]:
        assert self.raw is not None  # noqa: S101
        raw = self.raw
        skip_first = self.start.skip
        while True:
            member_start = raw.tell()
            if not raw.peek(1):
                return
            if raw.peek(3) != b"\x1f\x8b\x08":
                nxt = self._next_member(member_start + 1)
                yield Damage(member_start, "not a gzip member where one should start"), self._pos(nxt)
                if nxt is None:
                    return
                continue
            member = GzipMember(raw, self.config.max_record_bytes)
            index = 0
            clean_end = False
            while True:
                raw.deadline = time.monotonic() + self.config.record_time_limit_s
                member.cap = member.produced + self.config.max_record_bytes
                try:
                    member.skip_blank_lines()
                    if member.at_end():
                        if member.error is not None and index == 0:
                            raise _Bad(member.error, "next-member")
                        clean_end = member.error is None and not member.over_cap
                        break
                    rec = self._record(member, member_start)
                    if not member.over_cap and self._after_block(member, rec) != "ok":
                        raise _Bad(self._mismatch(rec, member.peek(32)), "in-member")
                    more = not member.at_end()
                    if member.error is not None:
                        raise _Bad(f"record read, but its gzip member is damaged: {member.error}", "next-member")
                    if member.over_cap:
                        # Read what we keep; the rest was not inflated (decompression cap).
                        raw.deadline = None
                        nxt = self._next_member(raw.tell())
                        rec.length = (nxt if nxt is not None else raw.tell()) - member_start
                        if index >= skip_first:
                            yield rec, self._pos(nxt)
                        if nxt is None:
                            return
                        break
                    index += 1
                    if more:
                        nxt_pos: Position | None = Position(member_start, index)
                    else:
                        end = member.end_offset()
                        rec.length = (end - member_start) if end is not None else None
                        nxt_pos = Position(end if end is not None else raw.tell())
                    raw.deadline = None
                    if index > skip_first:
                        yield rec, nxt_pos
                    if not more:
                        clean_end = True
                        break
                except (_Bad, ReadTimeout) as exc:
                    raw.deadline = None
                    bad = exc if isinstance(exc, _Bad) else _Bad(self._timeout_reason(), "scan-here")
                    if bad.resync != "next-member" and member.error is None and not member.over_cap:
                        if self._scan_member(member):
                            index += 1
                            if index > skip_first:  # a resumed read already reported it
                                yield Damage(member_start, bad.reason), Position(member_start, index)
                            continue
                        end = member.end_offset()
                        if end is not None:
                            yield Damage(member_start, bad.reason), Position(end)
                            break
                    if member.ended and member.end_offset() is not None:
                        nxt = member.end_offset()
                    else:
                        origin = raw.tell() if bad.resync == "scan-here" else member_start + 1
                        nxt = self._next_member(max(origin, member_start + 1))
                    yield Damage(member_start, bad.reason), self._pos(nxt)
                    if nxt is None:
                        return
                    raw.seek(nxt)
                    break
            skip_first = 0
            if clean_end:
                end = member.end_offset()
                if end is None:
                    return
                raw.seek(end)

    @staticmethod
    def _pos(offset: int | None) -> Position | None:
        return Position(offset) if offset is not None else None

    def _scan_member(self, member: GzipMember) -> bool:
        """Inside a single-member gzip file: move to the next record header; False at member end."""
        while True:
            window = member.peek(1 << 20)
            if not window:
                return False
            m = RECORD_START_AFTER_NEWLINE.search(window, 1)
            if m is not None:
                member.skip(m.start() + 1)
                return True
            if len(window) < 128:
                member.skip(len(window))
                return False
            member.skip(len(window) - 100)

    def _next_member(self, start: int) -> int | None:
        """Offset of the next gzip member at or after ``start`` that inflates to a record header."""
        assert self.raw is not None  # noqa: S101
        raw = self.raw
        pos = start
        while True:
            found = raw.find(GZIP_MAGIC, pos)
            if found is None:
                return None
            if self._member_starts_record(found):
                raw.seek(found)
                return found
            pos = found + 1

    def _member_starts_record(self, offset: int) -> bool:
        assert self.raw is not None  # noqa: S101
        self.raw.seek(offset)
        data = self.raw.peek(8192)
        z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = z.decompress(data, 256)
        except zlib.error:
            return False
        return is_record_start(out.lstrip(b"\r\n"))

    # -- one record ------------------------------------------------------------------------------
    def _record(self, seg: Segment, offset: int) -> RawRecord:
        """Parse one record at the segment's position; raises :class:`_Bad`. Sets ``_block_start``
        (the raw offset of the block, where rescans of uncompressed files begin)."""
        limit = self.config.max_header_bytes
        first = seg.peek(16)
        if first.startswith(b"WARC/"):
            head, complete = seg.read_block(limit)
            if not complete:
                raise _Bad(f"WARC header block not terminated within {limit} bytes", "next-byte")
            quick = self._quick_skip(seg, head, offset)
            if quick is not None:
                return quick
            headers = parse_headers(head, self._loader.WARC_TYPES)
            if headers is None:
                try:
                    headers = self._loader.warc_parser.parse(BytesIO(head))
                except Exception as exc:
                    raise _Bad(f"unparsable WARC header: {_short(exc)}", "next-byte") from exc
            fmt = "warc"
            rec_type = (headers.get_header("WARC-Type") or "").strip().lower()
            declared = headers.get_header("Content-Length")
            sub_len = 0
            sep = b"\r\n\r\n" if head.endswith(b"\r\n\r\n") else b"\n\n"
        else:
            line = seg.readline(limit)
            if not line.endswith(b"\n") or not (line.startswith(b"filedesc://") or is_record_start(line, "arc")):
                what = "not a WARC or ARC file" if offset == 0 else "not a WARC/ARC record header"
                raise _Bad(f"{what}: starts with {_show(line)}", "next-byte")
            if line.startswith(b"filedesc://"):
                line += seg.readline(limit) + seg.readline(limit)
            try:
                headers = self._loader.arc_parser.parse(BytesIO(line))
            except Exception as exc:
                raise _Bad(f"not a WARC/ARC record header: {_show(line)}", "next-byte") from exc
            fmt = "arc"
            rec_type = (headers.get_header("WARC-Type") or "").strip().lower()
            declared = headers.get_header("Content-Length")
            sub_len = headers.total_len
            sep = b"\n"
        if isinstance(seg, PlainSegment):
            self._block_start = seg.tell()
        if declared is None:
            raise _Bad("record has no Content-Length", "block")
        try:
            length = int(declared.strip()) - sub_len
        except ValueError:
            raise _Bad(f"invalid Content-Length {declared.strip()[:40]!r}", "block") from None
        if length < 0:
            raise _Bad(f"negative Content-Length {length}", "block")
        uri = headers.get_header("WARC-Target-URI") or ""
        if uri.startswith("<") or " " in uri:  # wget's <uri>, spaces: warcio's repair
            try:
                uri = self._loader._ensure_target_uri_format(headers) or ""
            except Exception:
                log.debug("cannot repair target URI %r", uri)
        rec = RawRecord(offset, None, fmt, rec_type, headers, None, None, sep=sep)
        if self.block_types is not None and rec_type not in self.block_types:
            rec.skip = f"record-type:{rec_type or 'missing'}"
            self._skip(seg, length, length)
            return rec
        used = 0
        prefix = b""
        if length and rec_type in _HTTP_RECORDS and uri.startswith(_HTTP_URI):
            block, complete = seg.read_block(min(length, limit))
            used = len(block)
            if complete:
                rec.http = parse_headers(block, None)
                if rec.http is None:
                    try:
                        rec.http = self._loader.http_parser.parse(BytesIO(block))
                    except Exception:
                        rec.http = None
            if rec.http is None:
                prefix = block  # not HTTP headers after all: the bytes belong to the payload
            if used < min(length, limit) and not complete:
                raise _Bad(self._missing(length, used), "block")
        rec.skip = self.choose(rec_type, headers, rec.http)
        if rec.skip is not None:
            self._skip(seg, length - used, length)
            return rec
        take = min(length - used, self.payload_read_cap)
        body = seg.read(take)
        if len(body) < take:
            if not (isinstance(seg, GzipMember) and seg.over_cap):
                raise _Bad(self._missing(length, used + len(body)), "block")
            take = len(body)
        rest = length - used - take
        rec.payload = prefix + body if prefix else body
        rec.payload_complete = rest == 0
        if rest:
            self._skip(seg, rest, length)
        return rec

    def _after_block(self, seg: Segment, rec: RawRecord) -> str:
        """Check what follows the block: ``"ok"`` (line breaks, then a record header or the end),
        ``"mismatch"`` (the Content-Length is wrong) or ``"unknown"`` (line breaks, then bytes that are
        not a record: garbage after an intact record, or a too-long Content-Length ending on a line break).

        Writers differ (one or two CRLFs, LF only, extra CRLFs as in Common Crawl 2018-34, none at all
        in ClueWeb09), so any run of line breaks is accepted, except a lone LF after CRLF headers: the
        block ended inside a CRLF.
        """
        first = seg.peek(1)
        if not first:
            return "ok"
        if first not in (b"\r", b"\n"):
            # ClueWeb09 (WARC/0.18) counts the blank lines in the Content-Length: a header follows at once.
            return "ok" if is_record_start(seg.peek(256), rec.fmt) else "mismatch"
        if first == b"\n" and rec.sep.startswith(b"\r"):
            return "mismatch"
        seg.skip_blank_lines()
        if seg.at_end() or is_record_start(seg.peek(256), rec.fmt):
            return "ok"
        return "unknown"

    def _quick_skip(self, seg: Segment, head: bytes, offset: int) -> RawRecord | None:
        """Records whose type is not wanted (requests, metadata: most of a crawl's records) are skipped
        from two header fields, without parsing the rest; None when the full parse is needed."""
        if self.block_types is None:
            return None
        m = _TYPE_FIELD.search(head)
        cl = _LENGTH_FIELD.search(head)
        if m is None or cl is None:
            return None
        rec_type = m.group(1).decode("latin-1").strip().lower()
        if rec_type in self.block_types:
            return None
        try:
            length = int(cl.group(1))
        except ValueError:
            return None  # the full parse reports it
        if length < 0:
            return None
        if isinstance(seg, PlainSegment):
            self._block_start = seg.tell()
        sep = b"\r\n\r\n" if head.endswith(b"\r\n\r\n") else b"\n\n"
        rec = RawRecord(offset, None, "warc", rec_type, None, None, None, skip=f"record-type:{rec_type}", sep=sep)
        rec.declared = cl.group(1).decode("latin-1").strip()
        self._skip(seg, length, length)
        return rec

    def _skip(self, seg: Segment, n: int, length: int) -> None:
        got = seg.skip(n)
        if got < n:
            if isinstance(seg, GzipMember) and seg.over_cap:
                return  # past the decompression cap: the caller rescans, the record is kept
            if isinstance(seg, GzipMember) and seg.error is not None:
                raise _Bad(f"{seg.error} (record declares {length} bytes)", "next-member")
            raise _Bad(self._missing(length, length - (n - got)), "block")

    @staticmethod
    def _missing(length: int, have: int) -> str:
        return f"record cut short: Content-Length {length}, only {have} bytes present"

    @staticmethod
    def _mismatch(rec: RawRecord, after: bytes) -> str:
        length = rec.headers.get_header("Content-Length") if rec.headers is not None else rec.declared or "?"
        shown = f" (next bytes {_show(after)})" if after else ""
        return f"Content-Length {length} does not end at a record boundary{shown}"

    def _timeout_reason(self) -> str:
        return f"record took longer than {self.config.record_time_limit_s:g}s to read"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text[:160]}"


def _show(data: bytes) -> str:
    return repr(data[:32].decode("latin-1"))
