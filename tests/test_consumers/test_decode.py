"""Page decoding never raises, whatever charset a hostile page declares."""

from __future__ import annotations

import pytest

from consumers.decode import decode_html, normalise_label

BODIES = [b"<p>caf\xc3\xa9</p>", b"<p>\xff\xfe abc</p>", b"abc\\x", b"\xc3", b"\x00\x01\x02" * 50]


@pytest.mark.parametrize(
    "label", ["idna", "punycode", "undefined", "unicode_escape", "raw_unicode_escape", "base64", "rot13", "hex", "zlib"]
)
@pytest.mark.parametrize("body", BODIES)
def test_codecs_that_are_not_charsets_are_ignored(label: str, body: bytes) -> None:
    """Found by fuzzing: ``charset=idna`` raised UnicodeError (idna refuses "replace"),
    ``charset=base64`` LookupError; one such page made the whole extraction batch fail."""
    assert normalise_label(label) is None
    for text, enc in (
        decode_html(body, f"text/html; charset={label}"),
        decode_html(b"<meta charset=" + label.encode() + b">" + body),
    ):
        assert isinstance(text, str) and label not in enc


@pytest.mark.parametrize("body", BODIES)
def test_invalid_utf8_decodes_with_replacement(body: bytes) -> None:
    text, _ = decode_html(body, "text/html; charset=utf-8")
    assert isinstance(text, str)
    text.encode("utf-8")  # valid UTF-8 out, always


def test_real_charsets_still_work() -> None:
    assert decode_html("café".encode("cp1252"), "text/html; charset=iso-8859-1") == ("café", "cp1252")
    assert decode_html("日本".encode("shift_jis"), "text/html; charset=shift_jis")[0] == "日本"
