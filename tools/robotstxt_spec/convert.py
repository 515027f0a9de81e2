"""Convert the robots.txt compliance test cases (protobuf text format) into our JSON data file.

The cases come from google/robotstxt-spec-test (Apache-2.0), ``src/main/resources/CTC/{correctness,stress}``.
The JSON keeps every expectation with its file, test index, robots.txt bytes and test type so the test
suite can run them through headrace's own robots decision path without protobuf tooling::

    python tools/robotstxt_spec/convert.py <checkout>/src/main/resources/CTC \\
        tests/test_crawler/data/robotstxt_spec_cases.json --commit <sha>

Only the small subset of the text format that those files use is understood: messages in braces,
lists in brackets, adjacent string literals (C escapes, octal and ``\\x`` hex), enum identifiers.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<punct>[{}\[\]:,])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)

_SIMPLE_ESCAPES = {
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    '"': b'"',
    "'": b"'",
    "\\": b"\\",
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "v": b"\v",
    "?": b"?",
}


class TextprotoError(ValueError):
    pass


def unescape(literal: str) -> bytes:
    """Bytes of one text-format string literal (without its quotes)."""
    raw = literal.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != 0x5C:  # backslash
            out.append(c)
            i += 1
            continue
        i += 1
        e = chr(raw[i])
        if e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e]
            i += 1
        elif e in "xX":
            m = re.match(rb"[0-9A-Fa-f]{1,2}", raw[i + 1 :])
            if not m:
                raise TextprotoError(f"bad \\x escape in {literal!r}")
            out.append(int(m.group(), 16))
            i += 1 + len(m.group())
        elif e in "01234567":
            m = re.match(rb"[0-7]{1,3}", raw[i:])
            if m is None:  # pragma: no cover - the branch is only taken on an octal digit
                raise TextprotoError(f"bad octal escape in {literal!r}")
            out.append(int(m.group(), 8) & 0xFF)
            i += len(m.group())
        else:
            raise TextprotoError(f"unknown escape \\{e} in {literal!r}")
    return bytes(out)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise TextprotoError(f"cannot read text format at {text[pos : pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, m.group()))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise TextprotoError(f"expected {value!r}, got {tok!r}")
        self.i += 1
        return tok

    def message(self, end: str | None) -> dict[str, list[Any]]:
        fields: dict[str, list[Any]] = {}
        while (tok := self.peek()) is not None and tok[1] != end:
            name = self.take()[1]
            if self.peek() == ("punct", ":"):
                self.take(":")
            fields.setdefault(name, []).extend(self.value())
            if self.peek() in (("punct", ","), ("punct", ";")):
                self.take()
        if end is not None:
            self.take(end)
        return fields

    def value(self) -> list[Any]:
        kind, tok = self.take()
        if tok == "{":
            return [self.message("}")]
        if tok == "[":
            items: list[Any] = []
            while self.peek() != ("punct", "]"):
                items.extend(self.value())
                if self.peek() == ("punct", ","):
                    self.take(",")
            self.take("]")
            return items
        if kind == "str":
            data = unescape(tok[1:-1])
            while (nxt := self.peek()) is not None and nxt[0] == "str":
                data += unescape(self.take()[1][1:-1])
            return [data]
        if kind == "ident":
            return [tok]
        raise TextprotoError(f"unexpected token {tok!r}")


def parse_textproto(text: str) -> dict[str, list[Any]]:
    return _Parser(tokenize(text)).message(None)


def _one(fields: dict[str, list[Any]], name: str, default: Any = None) -> Any:
    values = fields.get(name) or [default]
    return values[-1]


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8")


def convert(ctc_dir: Path) -> list[dict[str, Any]]:
    """One entry per robots.txt body, with its expectations (ids are ``file#test.expectation``)."""
    tests: list[dict[str, Any]] = []
    for path in sorted(ctc_dir.glob("*/*.textproto")):
        rel = path.relative_to(ctc_dir).as_posix()
        spec = parse_textproto(path.read_text(encoding="utf-8"))
        for t_index, test in enumerate(spec.get("tests", [])):
            body: bytes = _one(test, "robotstxt", b"")
            entry: dict[str, Any] = {"id": f"{rel}#{t_index}"}
            try:
                entry["robotstxt"] = body.decode("utf-8")
            except UnicodeDecodeError:
                entry["robotstxt_base64"] = base64.b64encode(body).decode("ascii")
            entry["expectations"] = [
                {
                    "id": f"{rel}#{t_index}.{e_index}",
                    "url": _text(_one(exp, "testurl", b"")),
                    "useragent": _text(_one(exp, "useragent", b"")),
                    "expected": _one(exp, "expected_outcome", "UNSPECIFIED"),
                    "type": _one(exp, "test_type", "STANDARD"),
                }
                for e_index, exp in enumerate(test.get("test_expectations", []))
            ]
            tests.append(entry)
    return tests


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ctc_dir", type=Path, help="src/main/resources/CTC of a robotstxt-spec-test checkout")
    ap.add_argument("out", type=Path, help="JSON file to write")
    ap.add_argument("--commit", default="", help="commit of the checkout, recorded as the origin")
    args = ap.parse_args(argv)
    tests = convert(args.ctc_dir)
    cases = [e for t in tests for e in t["expectations"]]
    doc = {
        "origin": "google/robotstxt-spec-test, src/main/resources/CTC/{correctness,stress}/*.textproto",
        "commit": args.commit,
        "license": "Apache-2.0 (Copyright 2020 Google LLC); converted to JSON by tools/robotstxt_spec/convert.py",
        "counts": {
            "total": len(cases),
            "STANDARD": sum(c["type"] == "STANDARD" for c in cases),
            "GOOGLE_SPECIFIC": sum(c["type"] == "GOOGLE_SPECIFIC" for c in cases),
        },
        "tests": tests,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(doc["counts"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
