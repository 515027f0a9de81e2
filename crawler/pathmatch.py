"""robots.txt-style path patterns (``*`` and a trailing ``$``) for the signals that borrow them.

TDMRep ``location`` values, Content-Usage / Content-Signal path prefixes in robots.txt and Spawning's
ai.txt rules all reuse RFC 9309 §2.2.3 matching: a pattern matches a prefix of the URL's path and query,
``*`` matches any run of characters and ``$`` anchors the end. Allow/Disallow themselves go through
Protego (``crawler.robots``); this module serves the other readers so they agree with each other.

Both sides are normalised the same way before comparison: percent-escapes of unreserved characters are
decoded, other escapes are upper-cased, and non-ASCII characters are UTF-8 percent-encoded.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, urlsplit

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# Characters kept verbatim when encoding: what RFC 3986 allows in a path and query, except ``$`` and
# ``*``, which are special in patterns and so always compared in their %-encoded form.
_SAFE = "/?&=;:@!'()+,-._~%[]"


def _normalise_escape(m: re.Match[str]) -> str:
    ch = chr(int(m.group(1), 16))
    return ch if ch in _UNRESERVED else f"%{m.group(1).upper()}"


def normalise(path: str) -> str:
    """Canonical percent-encoding of a path (or pattern) for byte-wise comparison."""
    path = _ESCAPE.sub(_normalise_escape, path)
    return quote(path, safe=_SAFE)


def url_path(url: str) -> str:
    """Path plus query of ``url`` (``/`` when empty), the part rules match against."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    path = parts.path or "/"
    if parts.query or url.split("#", 1)[0].endswith("?"):
        path = f"{path}?{parts.query}"
    return normalise(path)


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> tuple[tuple[str, ...], bool]:
    """Normalised literal parts between ``*`` and whether the pattern is anchored with ``$``."""
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    return tuple(normalise(part) for part in body.split("*")), anchored


def _match(parts: tuple[str, ...], anchored: bool, path: str) -> bool:
    # Leftmost-first matching of the literal parts: linear, no regex backtracking on hostile patterns.
    first = parts[0]
    if not path.startswith(first):
        return False
    if len(parts) == 1:
        return path == first if anchored else True
    pos = len(first)
    for part in parts[1:-1]:
        idx = path.find(part, pos)
        if idx < 0:
            return False
        pos = idx + len(part)
    last = parts[-1]
    if anchored:
        return len(path) - len(last) >= pos and path.endswith(last)
    return path.find(last, pos) >= 0


class PathPattern:
    """One pattern; ``specificity`` is its length in octets (longer = more specific, RFC 9309)."""

    __slots__ = ("pattern", "specificity")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        body = pattern.removesuffix("$")
        # RFC 9309 / aipref-attach: octets of the encoded path (wildcards count as one each)
        self.specificity = len(normalise(body.replace("*", ""))) + body.count("*")

    def matches(self, path: str) -> bool:
        """``path`` must already be normalised (see :func:`url_path`)."""
        if not self.pattern:
            return True  # an empty path applies to everything
        parts, anchored = _compile(self.pattern)
        return _match(parts, anchored, path)

    def __repr__(self) -> str:
        return f"PathPattern({self.pattern!r})"
