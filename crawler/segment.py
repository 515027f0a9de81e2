"""Decoded views of an archive: the whole file (uncompressed) or one gzip member at a time.

Records are parsed from a :class:`Segment`. A gzip member is decompressed in bounded steps (never more
than ``CHUNK_OUT`` bytes per zlib call, never more than the segment's cap in total), so a decompression
bomb costs bounded memory and time; past the cap the member is *abandoned* and the caller rescans the
compressed bytes for the next member instead of inflating the rest.
"""

from __future__ import annotations

import re
import time
import zlib

from crawler.rawio import RawReader, ReadTimeout

CHUNK_IN = 64 * 1024
CHUNK_OUT = 1 << 20

GZIP_MAGIC = re.compile(rb"\x1f\x8b\x08")
_BLANK = frozenset(b"\r\n")
_EMPTY_LINE = re.compile(rb"\n\r?\n")


class Segment:
    """A decoded byte stream with a line-oriented reading API; subclasses supply ``_more``."""

    def __init__(self, start: int) -> None:
        #: Raw (compressed) offset where the segment starts.
        self.start = start
        self._out = b""
        self._opos = 0
        #: Decoded bytes handed out so far (position within the segment).
        self.consumed = 0
        #: Why the segment ended early: corrupt data, input cut short, cap reached. None = clean.
        self.error: str | None = None
        self.over_cap = False

    # Subclass hook: next decoded bytes, or b"" at the end of the segment.
    def _more(self) -> bytes:
        raise NotImplementedError

    def _fill(self, need: int) -> bool:
        while len(self._out) - self._opos < need:
            chunk = self._more()
            if not chunk:
                return False
            if self._opos:
                self._out = self._out[self._opos :]
                self._opos = 0
            self._out = self._out + chunk if self._out else chunk
        return True

    def at_end(self) -> bool:
        return not self._fill(1)

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self._out[self._opos : self._opos + n]

    def read(self, n: int) -> bytes:
        avail = len(self._out) - self._opos
        if avail >= n:
            data = self._out[self._opos : self._opos + n]
            self._opos += n
        else:
            parts = [self._out[self._opos :]]
            have = avail
            self._out, self._opos = b"", 0
            while have < n:
                chunk = self._more()
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
            joined = b"".join(parts)
            data, self._out = joined[:n], joined[n:]
        self.consumed += len(data)
        return data

    def skip(self, n: int) -> int:
        have = len(self._out) - self._opos
        if n <= have:
            self._opos += n
            self.consumed += n
            return n
        self._out, self._opos = b"", 0
        done = have + self._skip_more(n - have)
        self.consumed += done
        return done

    def _skip_more(self, n: int) -> int:
        done = 0
        while done < n:
            chunk = self._more()
            if not chunk:
                break
            if done + len(chunk) > n:
                keep = done + len(chunk) - n
                self._out, self._opos = chunk[-keep:], 0
                return n
            done += len(chunk)
        return done

    def read_block(self, limit: int) -> tuple[bytes, bool]:
        """Bytes through the first empty line (``\\n\\n`` or ``\\n\\r\\n``), at most ``limit``.

        Returns ``(data, complete)``; ``complete`` is False when no empty line came within the limit.
        """
        searched = 0  # bytes after the position already searched
        while True:
            m = _EMPTY_LINE.search(self._out, self._opos + max(0, searched - 2), self._opos + limit)
            if m is not None:
                return self.read(m.end() - self._opos), True
            have = len(self._out) - self._opos
            if have >= limit:
                return self.read(limit), False
            searched = have
            if not self._fill(have + 1):
                return self.read(have), False

    def readline(self, limit: int) -> bytes:
        while True:
            i = self._out.find(b"\n", self._opos, self._opos + limit)
            if i >= 0:
                return self.read(i + 1 - self._opos)
            have = len(self._out) - self._opos
            if have >= limit or not self._fill(have + 1):
                return self.read(min(have, limit))

    def skip_blank_lines(self) -> int:
        """Skip CR/LF bytes between records; returns how many."""
        n = 0
        while self._fill(1):
            buf = self._out
            i = self._opos
            end = len(buf)
            while i < end and buf[i] in _BLANK:
                i += 1
            n += i - self._opos
            self.consumed += i - self._opos
            self._opos = i
            if i < end:
                break
        return n


class PlainSegment(Segment):
    """The uncompressed file itself: decoded offset == raw offset."""

    def __init__(self, raw: RawReader) -> None:
        super().__init__(raw.tell())
        self.raw = raw

    def _more(self) -> bytes:
        return self.raw.read_some(CHUNK_OUT)

    def tell(self) -> int:
        """Absolute offset of the next unread byte."""
        return self.raw.tell() - (len(self._out) - self._opos)

    def seek(self, offset: int) -> None:
        self._out, self._opos = b"", 0
        self.raw.seek(offset)

    def skip(self, n: int) -> int:
        have = len(self._out) - self._opos
        if n <= have:
            return super().skip(n)
        self._out, self._opos = b"", 0
        done = have + self.raw.skip(n - have)
        self.consumed += done
        return done


class GzipMember(Segment):
    """One gzip member, inflated in bounded steps; ``ended`` once zlib reports the member's end."""

    def __init__(self, raw: RawReader, cap: int) -> None:
        super().__init__(raw.tell())
        self.raw = raw
        self.cap = cap
        self.produced = 0
        self.ended = False
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _more(self) -> bytes:
        if self.ended:
            return b""
        if self.produced >= self.cap:
            self.over_cap = True
            self.ended = True
            return b""
        z = self._z
        deadline = self.raw.deadline
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise ReadTimeout("record time limit exceeded")
            data = z.unconsumed_tail or self.raw.read_some(CHUNK_IN)
            if not data:
                self.error = "file ends inside a gzip member"
                self.ended = True
                return b""
            try:
                out = z.decompress(data, min(CHUNK_OUT, self.cap - self.produced + 1))
            except zlib.error as exc:
                self.error = f"corrupt gzip data: {exc}"
                self.ended = True
                return b""
            if z.eof:
                self.ended = True
                if z.unused_data:
                    self.raw.unread(len(z.unused_data))
            if out or self.ended:
                self.produced += len(out)
                return out

    def end_offset(self) -> int | None:
        """Raw offset just after this member, when it ended cleanly."""
        if self.ended and self.error is None and not self.over_cap and self._z.eof:
            return self.raw.tell()
        return None

    def finish(self) -> bool:
        """Inflate and drop the rest of the member (within the cap); True if it ended cleanly."""
        self._out, self._opos = b"", 0
        while self._more():
            pass
        return self.end_offset() is not None
