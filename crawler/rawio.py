"""Buffered reading of one archive's raw bytes, with absolute offsets and seeks on any source.

Every source (local file, http(s), s3) can be (re)opened at a byte offset, so the reader can resume at a
checkpoint, skip a long record without reading it, rescan after damage, and reconnect after a network
error at the offset it had reached.
"""

from __future__ import annotations

import logging
import re
import time
from typing import BinaryIO, Protocol

log = logging.getLogger(__name__)

BLOCK = 1 << 20


class SourceError(OSError):
    """The bytes of an input could not be read (missing file, HTTP error, network failure)."""


class Source(Protocol):
    """One input archive."""

    #: Stable name used in lineage, checkpoints and dead letters (path or URL).
    name: str

    def open(self, offset: int) -> BinaryIO:
        """A stream positioned at ``offset``; raises :class:`SourceError`."""
        ...

    def size(self) -> int | None:
        """Total size in bytes when known (after the first ``open`` for network sources)."""
        ...


class ReadTimeout(Exception):
    """Reading one record took longer than its time limit."""


class RawReader:
    """Forward reads over a :class:`Source` with a small buffer; seeks by buffer, ``seek()`` or reopen."""

    def __init__(self, source: Source, start: int = 0, retries: int = 3) -> None:
        self.source = source
        self.retries = retries
        self._fh: BinaryIO | None = source.open(start)
        self._base = start  # absolute offset of self._buf[0]
        self._buf = b""
        self._pos = 0
        self.eof = False
        #: Monotonic deadline for the record being read; None = no limit.
        self.deadline: float | None = None

    # -- position ---------------------------------------------------------------------------------
    def tell(self) -> int:
        return self._base + self._pos

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                log.debug("close failed", exc_info=True)
            self._fh = None

    def _read_raw(self, n: int) -> bytes:
        attempt = 0
        while True:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise ReadTimeout("record time limit exceeded")
            try:
                if self._fh is None:
                    self._fh = self.source.open(self._base + len(self._buf))
                return self._fh.read(n)
            except (OSError, ValueError) as exc:
                attempt += 1
                if attempt > self.retries:
                    raise SourceError(f"read failed at offset {self._base + len(self._buf)}: {exc}") from exc
                log.warning("%s: read failed (%s); reopening at %d", self.source.name, exc, self._base + len(self._buf))
                self.close()
                time.sleep(min(0.2 * 2**attempt, 5.0))

    def _fill(self, need: int) -> bool:
        """Make ``need`` bytes available after the position; False if the input ends first."""
        while len(self._buf) - self._pos < need:
            if self.eof:
                return False
            chunk = self._read_raw(max(BLOCK, need))
            if not chunk:
                self.eof = True
                return False
            if self._pos:
                self._buf = self._buf[self._pos :]
                self._base += self._pos
                self._pos = 0
            self._buf = self._buf + chunk if self._buf else chunk
        return True

    def available(self) -> int:
        return len(self._buf) - self._pos

    # -- reads ------------------------------------------------------------------------------------
    def read_some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes (at least one unless at the end), without copying the buffer twice."""
        if self._pos >= len(self._buf) and not self._fill(1):
            return b""
        end = min(len(self._buf), self._pos + limit)
        data = self._buf[self._pos : end]
        self._pos = end
        return data

    def unread(self, n: int) -> None:
        """Give back the last ``n`` bytes returned by :meth:`read_some` (they are still buffered)."""
        if n > self._pos:
            raise ValueError("cannot unread past the buffer")
        self._pos -= n

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self._buf[self._pos : self._pos + n]

    def read(self, n: int) -> bytes:
        self._fill(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def skip(self, n: int) -> int:
        """Advance ``n`` bytes (by seeking when that is cheaper); returns how many existed."""
        have = len(self._buf) - self._pos
        if n <= have:
            self._pos += n
            return n
        target = self.tell() + n
        size = self.source.size()
        if size is not None and n - have > BLOCK:
            reach = min(target, size)
            self.seek(reach)
            if reach < target:
                self.eof = True
            return reach - (target - n)
        done = have
        self._pos = len(self._buf)
        while done < n:
            got = self.read_some(min(n - done, BLOCK))
            if not got:
                break
            done += len(got)
        return done

    def seek(self, offset: int) -> None:
        if self._base <= offset <= self._base + len(self._buf):
            self._pos = offset - self._base
            if offset < self._base + len(self._buf):
                self.eof = False
            return
        fh = self._fh
        if fh is not None and fh.seekable():
            try:
                fh.seek(offset)
            except OSError:
                self.close()
        else:
            self.close()
        self._base = offset
        self._buf = b""
        self._pos = 0
        self.eof = False

    def find(self, pattern: re.Pattern[bytes], start: int, max_scan: int | None = None) -> int | None:
        """Absolute offset of the first match of ``pattern`` at or after ``start``; the reader is left
        at the match (or at the end). ``pattern`` must match at most 64 bytes."""
        self.seek(start)
        overlap = 64
        scanned = 0
        while True:
            if not self._fill(overlap + 1) and self.available() == 0:
                return None
            window = self._buf[self._pos :]
            m = pattern.search(window)
            if m is not None:
                self._pos += m.start()
                return self.tell()
            if self.eof:
                self._pos = len(self._buf)
                return None
            step = max(1, len(window) - overlap)
            self._pos += step
            scanned += step
            if max_scan is not None and scanned > max_scan:
                return None
            self._fill(BLOCK)
