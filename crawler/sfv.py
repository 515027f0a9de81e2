"""A small parser for Structured Field Dictionaries (RFC 9651 §4.2.2), as used by ``Content-Usage``.

The AI-preferences vocabulary (draft-ietf-aipref-vocab) says: parse the bytes as a Dictionary; a parse
failure means every preference is unknown; a key's value counts only when it is the Token ``y`` or
``n``; the last occurrence of a key wins; parameters are ignored. Tokens are returned as :class:`Token`
so ``train-ai=n`` (a Token) and ``train-ai="n"`` (a String) stay distinguishable.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from typing import Any


class SFVError(ValueError):
    """The field value is not a valid Structured Field Dictionary."""


class Token(str):
    """A bare Token item (as opposed to a quoted String)."""

    __slots__ = ()


_KEY_START = frozenset(string.ascii_lowercase + "*")
_KEY_CHARS = frozenset(string.ascii_lowercase + string.digits + "_-.*")
_TOKEN_START = frozenset(string.ascii_letters + "*")
_TCHAR = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits + ":/")
_INT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,3})?")


class _Reader:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def eof(self) -> bool:
        return self.i >= len(self.s)

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def key(self) -> str:
        if self.peek() not in _KEY_START or not self.peek():
            raise SFVError(f"bad key at {self.i}")
        start = self.i
        while self.peek() and self.peek() in _KEY_CHARS:
            self.i += 1
        return self.s[start : self.i]

    def bare_item(self) -> Any:
        c = self.peek()
        if c == "-" or c.isdigit():
            m = _INT.match(self.s, self.i)
            if not m or (m.group().endswith(".")):
                raise SFVError(f"bad number at {self.i}")
            self.i = m.end()
            text = m.group()
            return float(text) if "." in text else int(text)
        if c == '"':
            return self.string()
        if c and c in _TOKEN_START:
            start = self.i
            self.i += 1
            while self.peek() and self.peek() in _TCHAR:
                self.i += 1
            return Token(self.s[start : self.i])
        if c == ":":
            end = self.s.find(":", self.i + 1)
            if end < 0:
                raise SFVError("unterminated byte sequence")
            raw = self.s[self.i + 1 : end]
            self.i = end + 1
            try:
                return base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise SFVError("bad byte sequence") from exc
        if c == "?":
            flag = self.s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                raise SFVError("bad boolean")
            self.i += 2
            return flag == "1"
        if c == "@":
            self.i += 1
            m = re.compile(r"-?[0-9]{1,15}").match(self.s, self.i)
            if not m:
                raise SFVError("bad date")
            self.i = m.end()
            return int(m.group())
        if c == "%" and self.s[self.i + 1 : self.i + 2] == '"':
            self.i += 1
            return self.string()
        raise SFVError(f"unexpected character {c!r} at {self.i}")

    def string(self) -> str:
        self.i += 1  # opening quote
        out: list[str] = []
        while not self.eof():
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\"):
                    raise SFVError("bad escape in string")
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not (" " <= c <= "~"):
                raise SFVError("non-printable character in string")
            else:
                out.append(c)
        raise SFVError("unterminated string")

    def parameters(self) -> None:
        while self.peek() == ";":
            self.i += 1
            self.skip_sp()
            self.key()
            if self.peek() == "=":
                self.i += 1
                self.bare_item()

    def inner_list(self) -> list[Any]:
        self.i += 1  # "("
        items: list[Any] = []
        while not self.eof():
            self.skip_sp()
            if self.peek() == ")":
                self.i += 1
                self.parameters()
                return items
            items.append(self.bare_item())
            self.parameters()
            if self.peek() not in (" ", ")"):
                raise SFVError("bad inner list")
        raise SFVError("unterminated inner list")


def parse_dictionary(value: str) -> dict[str, Any]:
    """Parse a Dictionary; keys without ``=`` get ``True``; the last duplicate key wins."""
    r = _Reader(value.strip(" \t"))
    out: dict[str, Any] = {}
    if r.eof():
        return out
    while True:
        key = r.key()
        if r.peek() == "=":
            r.i += 1
            item = r.inner_list() if r.peek() == "(" else r.bare_item()
        else:
            item = True
        r.parameters()
        out.pop(key, None)
        out[key] = item
        r.skip_ows()
        if r.eof():
            return out
        if r.peek() != ",":
            raise SFVError(f"expected ',' at {r.i}")
        r.i += 1
        r.skip_ows()
        if r.eof():
            raise SFVError("trailing comma")
