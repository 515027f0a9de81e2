"""The opt-out signal readers of ``crawler.optout`` (reliability case C-7, unit level)."""

from __future__ import annotations

import logging

import pytest

from compliance.policy import OptOutPolicy
from crawler.optout import (
    AiTxt,
    TdmRepFile,
    ai_txt_signals,
    content_signal_preference,
    content_usage_header_signals,
    meta_tags,
    noai_signals,
    response_signals,
    robots_signals,
    tdmrep_file_signals,
    tdmrep_page_signals,
    usage_preference,
)
from crawler.robots import RobotsRules
from streams.records import Signal

TOKEN = "headrace"
AGENTS = ("CCBot", "GPTBot", "Google-Extended")
HTML = "text/html; charset=utf-8"


def kinds(signals: list[Signal]) -> list[tuple[str, str, str]]:
    return [(s.kind, s.verdict, s.source) for s in signals]


# ----------------------------------------------------------------------------------- noai / meta
def test_x_robots_tag_noai_case_insensitive_name_and_value() -> None:
    for headers in ({"x-robots-tag": ["noai"]}, {"X-Robots-Tag": ["NoAI"]}, {"X-ROBOTS-TAG": ["noindex, NOAI"]}):
        assert kinds(noai_signals(headers, [], TOKEN, AGENTS)) == [("noai", "deny", "header:x-robots-tag")]


def test_x_robots_tag_repeated_header_lines_all_count() -> None:
    headers = {"x-robots-tag": ["noindex", "noimageai", "nofollow, noai"]}
    assert sorted(kinds(noai_signals(headers, [], TOKEN, AGENTS))) == [
        ("noai", "deny", "header:x-robots-tag"),
        ("noimageai", "deny", "header:x-robots-tag"),
    ]


def test_x_robots_tag_scoped_values() -> None:
    ours = noai_signals({"x-robots-tag": ["HeadRace: noai"]}, [], TOKEN, AGENTS)
    assert kinds(ours) == [("noai", "deny", "header:x-robots-tag")]
    other = noai_signals({"x-robots-tag": ["googlebot: noai"]}, [], TOKEN, AGENTS)
    assert other == []
    ai = noai_signals({"x-robots-tag": ["ccbot: noai, noimageai"]}, [], TOKEN, AGENTS)
    assert {(s.kind, s.verdict) for s in ai} == {("noai", "deny-ai-agent"), ("noimageai", "deny-ai-agent")}
    # a directive with its own colon is not a scope
    not_scope = noai_signals({"x-robots-tag": ["unavailable_after: 25 Jun 2010 15:00:00 PST"]}, [], TOKEN, AGENTS)
    assert not_scope == []


def test_meta_robots_noai_and_agent_meta() -> None:
    body = b"""<html><head>
    <!-- <meta name="robots" content="noai"> commented out -->
    <META NAME='Robots' CONTENT='noimageai'>
    <meta content="noai" name="headrace">
    <meta name="ccbot" content="noai">
    </head><body>x</body></html>"""
    metas = meta_tags(body)
    assert ("robots", "noimageai") in metas and ("headrace", "noai") in metas
    assert ("robots", "noai") not in metas
    got = {(s.kind, s.verdict, s.source) for s in noai_signals({}, metas, TOKEN, AGENTS)}
    assert got == {
        ("noimageai", "deny", "meta:robots"),
        ("noai", "deny", "meta:headrace"),
        ("noai", "deny-ai-agent", "meta:ccbot"),
    }


def test_meta_parsing_survives_garbage() -> None:
    assert meta_tags(b"<meta name=robots content=noai") == []
    assert meta_tags(b"\xff\xfe<meta name=robots content=noai>") == [("robots", "noai")]
    assert meta_tags(b"<meta name='x' content=\"a>b\">") == [("x", "a>b")]


# ------------------------------------------------------------------------------------------ TDMRep
def test_tdmrep_file_first_matching_rule_wins() -> None:
    body = b"""[
      {"location": "/directory-a/", "tdm-reservation": 1},
      {"location": "/directory-b/html/", "tdm-reservation": 1, "tdm-policy": "https://p.example/policy.json"},
      {"location": "/directory-b/images/*.jpg", "tdm-reservation": 0},
      {"location": "/", "tdm-reservation": 0}
    ]"""
    f = TdmRepFile.parse("http://x/.well-known/tdmrep.json", body, "2025-01-01T00:00:00Z")
    assert not f.error and len(f.rules) == 4
    s = tdmrep_file_signals("http://x/directory-b/html/page.html", f)
    assert [(x.verdict, x.source) for x in s] == [("reserved", "tdmrep.json")]
    assert "tdm-policy=https://p.example/policy.json" in s[0].detail
    assert tdmrep_file_signals("http://x/directory-b/images/a.jpg", f)[0].verdict == "not-reserved"
    assert tdmrep_file_signals("http://x/other", f)[0].verdict == "not-reserved"
    # first in sequence, not longest: "/" listed first would win for everything
    g = TdmRepFile.parse("u", b'[{"location": "/", "tdm-reservation": 0}, {"location": "/a/", "tdm-reservation": 1}]')
    assert tdmrep_file_signals("http://x/a/b", g)[0].verdict == "not-reserved"


def test_tdmrep_file_no_match_is_unset() -> None:
    f = TdmRepFile.parse("u", b'[{"location": "/only/", "tdm-reservation": 1}]')
    assert tdmrep_file_signals("http://x/elsewhere", f) == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"location": "/", "tdm-reservation": 1}',
        b'[{"tdm-reservation": 1}]',
        b'[{"location": "/"}]',
        b'[{"location": "/", "tdm-reservation": 2}]',
        b'[{"location": "/", "tdm-reservation": true}]',
        b'["/"]',
        b"\xff\xfe\x00",
    ],
)
def test_malformed_tdmrep_file_is_unset_and_logged(body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crawler.optout"):
        f = TdmRepFile.parse("http://x/.well-known/tdmrep.json", body)
    assert f.error and f.rules == ()
    assert any("malformed TDMRep" in r.message for r in caplog.records)
    (sig,) = tdmrep_file_signals("http://x/a", f)
    assert sig.verdict == "unset" and "malformed" in sig.detail
    assert OptOutPolicy().decide([sig]).verdict == "allow"


def test_tdmrep_header_and_meta() -> None:
    got = tdmrep_page_signals({"TDM-Reservation": ["1"], "tdm-policy": ["https://p/x.json"]}, [], "t")
    assert [(s.verdict, s.source) for s in got] == [("reserved", "header:tdm-reservation")]
    got = tdmrep_page_signals({}, [("tdm-reservation", "1")], "t")
    assert [(s.verdict, s.source) for s in got] == [("reserved", "meta:tdm-reservation")]
    got = tdmrep_page_signals({"tdm-reservation": ["yes"]}, [], "t")
    assert got[0].verdict == "unset" and "invalid" in got[0].detail


def test_tdmrep_precedence_header_beats_file_meta_beats_header() -> None:
    policy = OptOutPolicy()
    file_reserved = Signal(kind="tdmrep", verdict="reserved", source="tdmrep.json")
    header_free = tdmrep_page_signals({"tdm-reservation": ["0"]}, [], "t")
    assert policy.decide([file_reserved, *header_free]).verdict == "allow"
    meta_reserved = tdmrep_page_signals({}, [("tdm-reservation", "1")], "t")
    assert policy.decide([file_reserved, *header_free, *meta_reserved]).verdict == "deny"
    # absence never resets: a header with only tdm-policy keeps the file's value
    header_policy_only = tdmrep_page_signals({"tdm-policy": ["https://p"]}, [], "t")
    assert header_policy_only[0].verdict == "unset"
    assert policy.decide([file_reserved, *header_policy_only]).verdict == "deny"


# ----------------------------------------------------------------------------------- Content-Usage
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("train-ai=n", "deny"),
        ("train-ai=y", "allow"),
        ("train-ai=n, search=y", "deny"),
        ("search=n", "unknown"),
        ('train-ai="n"', "unknown"),  # a String, not the Token n
        ("train-ai", "unknown"),  # boolean true
        ("Train-AI=n", "unknown"),  # uppercase key: parse failure
        ("train-ai=y, train-ai=n", "deny"),  # last one wins
        ("train-ai=n, train-ai=y", "allow"),
        ("train-ai;allow=n, train-ai=y", "allow"),  # parameters ignored
        ("train-ai=n;x=1", "deny"),
        ("train-genai=n", "deny"),
        ("train-ai=n,", "unknown"),  # trailing comma: parse failure
        ("", "unknown"),
    ],
)
def test_content_usage_vocabulary(value: str, expected: str) -> None:
    assert usage_preference(value) == expected


def test_content_usage_header_joins_repeated_lines() -> None:
    (s,) = content_usage_header_signals({"Content-Usage": ["search=y", "train-ai=n"]}, "t")
    assert (s.kind, s.verdict, s.source) == ("content-usage", "deny", "header:content-usage")


def test_content_usage_and_content_signal_in_robots() -> None:
    rules = RobotsRules(
        "User-Agent: *\nAllow: /\nDisallow: /never/\nContent-Usage: train-ai=n\nContent-Usage: /ai-ok/ train-ai=y\n"
        "Content-Signal: ai-train=no, search=yes\n\nUser-Agent: GPTBot\nDisallow: /\n"
    )
    sigs = robots_signals("http://x/page", rules, "http://x/robots.txt", TOKEN, AGENTS, "t")
    assert ("ai-robots", "deny", "http://x/robots.txt") in kinds(sigs)
    assert ("content-usage", "deny", "http://x/robots.txt") in kinds(sigs)
    assert ("content-signal", "deny", "http://x/robots.txt") in kinds(sigs)
    ok = robots_signals("http://x/ai-ok/page", rules, "http://x/robots.txt", TOKEN, AGENTS, "t")
    assert [s.verdict for s in ok if s.kind == "content-usage"] == ["allow"]
    # CCBot and Google-Extended have no group of their own: no signal for them
    assert [s.detail for s in sigs if s.kind == "ai-robots"] == ["agent=GPTBot; rule=disallow /"]


def test_content_usage_rules_with_identical_paths_combine_most_restrictive() -> None:
    rules = RobotsRules("User-Agent: *\nContent-Usage: /a/ train-ai=y\nContent-Usage: /a/ train-ai=n\n")
    sigs = robots_signals("http://x/a/b", rules, "http://x/robots.txt", TOKEN, (), "t")
    assert [s.verdict for s in sigs] == ["deny"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ai-train=no", "deny"), ("search=yes, ai-train=yes", "allow"), ("search=no", "unknown"), ("AI-Train=No", "deny")],
)
def test_content_signal(value: str, expected: str) -> None:
    assert content_signal_preference(value) == expected


# ------------------------------------------------------------------------------------------ ai.txt
def test_ai_txt() -> None:
    body = b"# Spawning AI\nUser-Agent: *\nDisallow: *.jpg\nDisallow: /texts/\nAllow: /texts/open/\n"
    ai = AiTxt.parse("http://x/ai.txt", body, TOKEN, "t")
    assert ai_txt_signals("http://x/pics/a.jpg", ai)[0].verdict == "deny"
    assert ai_txt_signals("http://x/texts/a.html", ai)[0].verdict == "deny"
    assert ai_txt_signals("http://x/texts/open/a.html", ai)[0].verdict == "allow"
    assert ai_txt_signals("http://x/other.html", ai) == []


# ---------------------------------------------------------------------------------- one response
def test_response_signals_reads_headers_and_meta_only_for_html() -> None:
    headers = {"x-robots-tag": ["noai"], "content-usage": ["train-ai=n"], "content-signal": ["ai-train=no"]}
    body = b'<meta name="robots" content="noai"><meta name="tdm-reservation" content="1">'
    got = {(s.kind, s.source) for s in response_signals("http://x/", headers, body, HTML, TOKEN, AGENTS, "t")}
    assert got == {
        ("noai", "header:x-robots-tag"),
        ("noai", "meta:robots"),
        ("tdmrep", "meta:tdm-reservation"),
        ("content-usage", "header:content-usage"),
        ("content-signal", "header:content-signal"),
    }
    plain = {(s.kind, s.source) for s in response_signals("http://x/", {}, body, "text/plain", TOKEN, AGENTS, "t")}
    assert plain == set()


def test_page_without_signals_has_none() -> None:
    body = b'<html><head><meta name="robots" content="noindex, nofollow"></head><body>hi</body></html>'
    headers = {"x-robots-tag": ["noarchive"], "content-usage": ["search=y"]}
    sigs = response_signals("http://x/", headers, body, HTML, TOKEN, AGENTS, "t")
    assert OptOutPolicy().decide(sigs).verdict == "allow"
