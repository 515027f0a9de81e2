"""The header fast path gives exactly what warcio's parser gives, or defers to it."""

from __future__ import annotations

from io import BytesIO

from hypothesis import given, settings
from hypothesis import strategies as st
from warcio.recordloader import ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeadersParser

from crawler.headers import parse_headers

LOADER = ArcWarcRecordLoader(verify_http=False)
NAMES = st.sampled_from(["WARC-Type", "Content-Length", "content-type", "X-Odd", "", "WARC-Target-URI", "A B"])
VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=30)
LINE = st.one_of(
    st.tuples(NAMES, st.sampled_from([":", ": ", " : ", ":\t"]), VALUES).map("".join),
    st.text(alphabet=" \tabc:", max_size=8),
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["WARC/1.0", "WARC/0.18", "HTTP/1.1 200 OK", "HTTP/1.0 404 Not Found", "warc/1.1", "GET / x"]),
    st.lists(LINE, max_size=8),
    st.sampled_from(["\r\n", "\n"]),
)
def test_same_result_as_warcio(status: str, lines: list[str], eol: str) -> None:
    block = (eol.join([status, *lines]) + eol + eol).encode("utf-8")
    for statuslist, parser in ((LOADER.WARC_TYPES, LOADER.warc_parser), (None, StatusAndHeadersParser([], False))):
        fast = parse_headers(block, statuslist)
        if fast is None:
            continue  # deferred to warcio
        ref = parser.parse(BytesIO(block))
        assert (fast.protocol, fast.statusline, fast.headers) == (ref.protocol, ref.statusline, ref.headers)
        for name, _ in ref.headers:
            assert fast.get_header(name) == ref.get_header(name)
        assert fast.get_header("missing", "d") == "d"


def test_defers_on_continuation_lines_and_bad_utf8() -> None:
    assert parse_headers(b"WARC/1.0\r\nA: b\r\n  c\r\n\r\n", LOADER.WARC_TYPES) is None
    assert parse_headers(b"WARC/1.0\r\nA: \xff\r\n\r\n", LOADER.WARC_TYPES) is None
    assert parse_headers(b"NOTWARC\r\nA: b\r\n\r\n", LOADER.WARC_TYPES) is None
    h = parse_headers(b"WARC/1.0\r\nA: 1\r\na: 2\r\n\r\n", LOADER.WARC_TYPES)
    assert h is not None and h.get_header("A") == "1"  # first wins, like warcio
    h = parse_headers(b"WARC/1.0\r\nA: 1\r\n\r\n", LOADER.WARC_TYPES)
    assert h is not None
    h.replace_header("a", "3")  # the index follows changes (warcio's URI repair uses this)
    assert h.get_header("A") == "3"
