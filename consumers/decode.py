"""Turn page bytes into text without ever raising.

Order: byte-order mark, HTTP ``charset``, ``<meta charset>`` in the first 4 KiB, then UTF-8, then
cp1252 with replacement. Labels are mapped as WHATWG does (``iso-8859-1``/``ascii`` -> ``cp1252``,
``utf-7`` -> ``utf-8``) because that is what browsers show for those pages.
"""

from __future__ import annotations

import codecs
import re

_META = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)
_HEADER = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]{1,40})", re.I)
_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "utf-7": "utf-8",
    "utf7": "utf-8",
    "x-sjis": "shift_jis",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "tis-620": "cp874",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


#: Python codecs that a page may name but that are not character sets: they refuse the ``replace``
#: error handler (idna), reject most bytes by design (undefined, punycode) or interpret escapes.
_NOT_CHARSETS = frozenset({"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"})


def normalise_label(label: str) -> str | None:
    """The Python codec for a charset label, or None for unknown labels and for codecs that are not
    text charsets (``base64``, ``rot13``, ``idna``, ... are all valid Python codec names)."""
    label = label.strip().lower()
    label = _ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def charset_from_content_type(content_type: str) -> str | None:
    m = _HEADER.search(content_type or "")
    return normalise_label(m.group(1)) if m else None


def sniff_meta_charset(head: bytes) -> str | None:
    m = _META.search(head[:4096])
    return normalise_label(m.group(1).decode("ascii", "ignore")) if m else None


def decode_html(body: bytes, content_type: str = "") -> tuple[str, str]:
    """Return ``(text, encoding_used)``; the encoding ends in ``+replace`` if bytes were replaced."""
    for bom, bom_enc in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(bom_enc, "replace"), bom_enc
    candidates = [charset_from_content_type(content_type), sniff_meta_charset(body)]
    for enc in candidates:
        if not enc:
            continue
        try:
            return body.decode(enc), enc
        except (UnicodeError, LookupError):
            continue
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = next((c for c in candidates if c), None)
    if declared and declared not in ("utf-8",):
        try:
            return body.decode(declared, "replace"), f"{declared}+replace"
        except (UnicodeError, LookupError):
            pass  # a codec that cannot replace: fall back like an undeclared page
    # Mostly-UTF-8 pages with a few bad bytes stay UTF-8; otherwise cp1252 is the web's usual fallback.
    text = body.decode("utf-8", "replace")
    if text.count("\ufffd") * 200 <= len(text):
        return text, "utf-8+replace"
    return body.decode("cp1252", "replace"), "cp1252+replace"
