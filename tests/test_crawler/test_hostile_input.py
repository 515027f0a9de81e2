"""Hostile input never crashes the signal readers: they return signals or raise their declared error."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.policy import OptOutPolicy
from crawler.optout import AiTxt, TdmRepFile, meta_tags, response_signals
from crawler.robots import FetchOutcome, RobotsCache, RobotsConfig
from crawler.sfv import SFVError, parse_dictionary

HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=80)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=2000),
    st.dictionaries(
        st.sampled_from(
            ["x-robots-tag", "X-Robots-Tag", "tdm-reservation", "tdm-policy", "content-usage", "content-signal"]
        ),
        st.lists(HEADER_TEXT, max_size=3),
        max_size=6,
    ),
)
def test_response_signals_never_raise(body: bytes, headers: dict[str, list[str]]) -> None:
    sigs = response_signals("http://a.example/p", headers, body, "text/html", "headrace", ("CCBot",), "t")
    assert OptOutPolicy().decide(sigs).kind == "policy"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_sfv_raises_only_its_error(value: str) -> None:
    with contextlib.suppress(SFVError):
        parse_dictionary(value)


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=3000),
    st.sampled_from(["http://a.example/", "http://a.example/x?y=%zz", "http://a.example/ツ*$"]),
)
def test_robots_and_files_never_raise(body: bytes, url: str) -> None:
    cache = RobotsCache(RobotsConfig(), "headrace", clock=lambda: 0.0)
    entry = cache.record("http://a.example:80", FetchOutcome("http://a.example/robots.txt", 200, body))
    cache.decide(url, entry)
    assert entry.rules is not None
    entry.rules.applicable_extension(url, "headrace", "content-usage")
    TdmRepFile.parse("u", body).lookup(url)
    AiTxt.parse("u", body, "headrace").check(url)
    meta_tags(body)


def test_meta_scan_is_bounded_on_hostile_markup() -> None:
    import time

    hostile = [
        b'<meta content="' * 20000 + b"x" * 100000,
        b"<!--" * 50000 + b'<meta name="robots" content="noai">',
        b"<meta " * 50000,
    ]
    t0 = time.perf_counter()
    for body in hostile:
        meta_tags(body)
    # a guard against quadratic scanning (minutes before the fix), not a benchmark
    assert time.perf_counter() - t0 < 30.0
    assert meta_tags(b'<!-- x --><meta name="robots" content="noai"><!-- <meta name=a content=b>') == [
        ("robots", "noai")
    ]
