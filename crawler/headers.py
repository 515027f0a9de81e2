"""A fast path for warcio's header parser, producing warcio's own ``StatusAndHeaders``.

warcio's ``StatusAndHeadersParser`` decodes and strips one line at a time in Python and looks headers
up by scanning the list; on our corpus that was half of the reader's time. :func:`parse_headers` gives
the same result for the common case (a UTF-8 block without continuation lines) in a few C-level string
operations and returns ``None`` for anything else, so the caller falls back to warcio itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from warcio.statusandheaders import StatusAndHeaders

_HEADER_LINE = re.compile(r"^([^:\n]*):([^\n]*)$", re.M)
_CONTINUATION = re.compile(r"\n[ \t]")
_END = re.compile(r"^\s*$", re.M)


class IndexedHeaders(StatusAndHeaders):
    """``StatusAndHeaders`` whose ``get_header`` is a dict lookup (first occurrence wins, as in warcio)."""

    def __init__(self, statusline: str, headers: list[tuple[str, str]], protocol: str, total_len: int) -> None:
        # Skip warcio's per-header bytes->str conversion: the values are already str.
        self.statusline = statusline
        self.headers = headers
        self.protocol = protocol
        self.total_len = total_len
        self.headers_buff = None
        self._index: dict[str, str] | None = None

    def get_header(self, name: str, default_value: Any = None) -> Any:
        index = self._index
        if index is None:
            index = self._index = {key.lower(): value for key, value in reversed(self.headers)}
        return index.get(name.lower(), default_value)

    def replace_header(self, name: str, value: str) -> Any:
        self._index = None
        return super().replace_header(name, value)

    def add_header(self, name: str, value: str) -> None:
        self._index = None
        super().add_header(name, value)

    def remove_header(self, name: str) -> bool:
        self._index = None
        return bool(super().remove_header(name))


def parse_headers(block: bytes, statuslist: Sequence[str] | None) -> IndexedHeaders | None:
    """Parse a header block (status line, headers, empty line) like warcio's parser would.

    ``statuslist``: accepted status-line prefixes (warcio's ``verify``), or None to accept any line.
    Returns None when the block needs warcio's own parser (not UTF-8, continuation lines, unexpected
    status line), which then gives the authoritative answer or error.
    """
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    first, _, rest = text.partition("\n")
    first = first.rstrip()
    end = _END.search(rest)  # warcio stops at the first line that is empty once stripped
    if end is not None:
        rest = rest[: end.start()]
    if not first or rest[:1] in (" ", "\t") or _CONTINUATION.search(rest) is not None:
        return None  # continuation lines, or a blank-looking line that ends warcio's header loop
    # warcio: line.rstrip(), split(":", 1), name.rstrip(" \t"), value.lstrip(); lines without ":" dropped.
    headers = [(name.rstrip(" \t"), value.strip()) for name, value in _HEADER_LINE.findall(rest)]
    if statuslist is not None:
        upper = first.upper()
        for prefix in statuslist:
            if upper.startswith(prefix):
                protocol, rest = upper[: len(prefix)], first[len(prefix) :]
                break
        else:
            return None
        return IndexedHeaders(rest.strip(), headers, protocol, len(block))
    parts = first.split(" ", 1)
    return IndexedHeaders(parts[1].strip() if len(parts) > 1 else "", headers, parts[0], len(block))
