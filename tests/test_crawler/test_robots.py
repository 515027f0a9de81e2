"""RFC 9309 parsing (ports of google/robotstxt ``robots_test.cc`` ID_* behaviours) and the fetch-status
state machine / cache of ``crawler.robots`` with a controllable clock."""

from __future__ import annotations

import pytest

from crawler.robots import (
    FetchOutcome,
    RobotsCache,
    RobotsConfig,
    RobotsConfigError,
    RobotsRules,
    RobotsState,
    cap_body,
    origin_of,
    robots_url,
    validate_token,
)

ORIGIN = "http://foo.bar:80"
RURL = "http://foo.bar/robots.txt"


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def allowed(robotstxt: str | bytes, agent: str, url: str) -> bool:
    """The production path: a 200 response recorded in the cache, then decided."""
    body = robotstxt.encode("utf-8") if isinstance(robotstxt, str) else robotstxt
    cache = RobotsCache(RobotsConfig(), "headrace", clock=Clock())
    entry = cache.record(ORIGIN, FetchOutcome(RURL, 200, body))
    return cache.decide(url, entry, agent).allowed


# ------------------------------------------------------------------------------- ID_* behaviours
def test_id_line_syntax_line() -> None:
    url = "http://foo.bar/x/y"
    assert not allowed("user-agent: FooBot\ndisallow: /\n", "FooBot", url)
    assert allowed("foo: FooBot\nbar: /\n", "FooBot", url)


def test_id_line_syntax_groups_and_rules_outside_groups_ignored() -> None:
    robots = (
        "allow: /foo/bar/\n\nuser-agent: FooBot\ndisallow: /\nallow: /x/\nuser-agent: BarBot\n"
        "disallow: /\nallow: /y/\n\n\nallow: /w/\nuser-agent: BazBot\n\nuser-agent: FooBot\n"
        "allow: /z/\ndisallow: /\n"
    )
    assert allowed(robots, "FooBot", "http://foo.bar/x/b")
    assert allowed(robots, "FooBot", "http://foo.bar/z/d")
    assert not allowed(robots, "FooBot", "http://foo.bar/y/c")
    assert allowed(robots, "BarBot", "http://foo.bar/y/c")
    assert allowed(robots, "BarBot", "http://foo.bar/w/a")
    assert not allowed(robots, "BarBot", "http://foo.bar/z/d")
    assert allowed(robots, "BazBot", "http://foo.bar/z/d")
    for bot in ("FooBot", "BarBot", "BazBot"):
        assert not allowed(robots, bot, "http://foo.bar/foo/bar/")  # the rule before any group is ignored


@pytest.mark.parametrize(
    "robots",
    [
        "USER-AGENT: FooBot\nALLOW: /x/\nDISALLOW: /\n",
        "user-agent: FooBot\nallow: /x/\ndisallow: /\n",
        "uSeR-aGeNt: FooBot\nAlLoW: /x/\ndIsAlLoW: /\n",
    ],
)
def test_id_rep_line_names_case_insensitive(robots: str) -> None:
    assert allowed(robots, "FooBot", "http://foo.bar/x/y")
    assert not allowed(robots, "FooBot", "http://foo.bar/a/b")


@pytest.mark.parametrize("value", ["FOO BAR", "foo bar", "FoO bAr", "FOO", "foo", "FoO"])
@pytest.mark.parametrize("agent", ["Foo", "foo"])
def test_id_user_agent_value_case_insensitive(value: str, agent: str) -> None:
    robots = f"User-Agent: {value}\nAllow: /x/\nDisallow: /\n"
    assert allowed(robots, agent, "http://foo.bar/x/y")
    assert not allowed(robots, agent, "http://foo.bar/a/b")


def test_user_agent_value_up_to_first_space() -> None:
    robots = "User-Agent: *\nDisallow: /\nUser-Agent: Foo Bar\nAllow: /x/\nDisallow: /\n"
    assert allowed(robots, "Foo", "http://foo.bar/x/y")


def test_id_verify_valid_user_agents_to_obey() -> None:
    for ok in ("Foobot", "Foobot-Bar", "Foo_Bar"):
        assert validate_token(ok) == ok
    for bad in ("", "ツ", "Foobot*", " Foobot ", "Foobot/2.1", "Foobot Bar", "AB42bot"):
        with pytest.raises(RobotsConfigError):
            validate_token(bad)


def test_id_global_groups_secondary() -> None:
    url = "http://foo.bar/x/y"
    assert allowed("", "FooBot", url)
    global_ = "user-agent: *\nallow: /\nuser-agent: FooBot\ndisallow: /\n"
    assert not allowed(global_, "FooBot", url)
    assert allowed(global_, "BarBot", url)
    only_specific = "user-agent: FooBot\nallow: /\nuser-agent: BarBot\ndisallow: /\nuser-agent: BazBot\ndisallow: /\n"
    assert allowed(only_specific, "QuxBot", url)


def test_id_allow_disallow_value_case_sensitive() -> None:
    url = "http://foo.bar/x/y"
    assert not allowed("user-agent: FooBot\ndisallow: /x/\n", "FooBot", url)
    assert allowed("user-agent: FooBot\ndisallow: /X/\n", "FooBot", url)


def test_id_longest_match_and_allow_wins_ties() -> None:
    url = "http://foo.bar/x/page.html"
    assert not allowed("user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/\n", "FooBot", url)
    r = "user-agent: FooBot\nallow: /x/page.html\ndisallow: /x/\n"
    assert allowed(r, "FooBot", url)
    assert not allowed(r, "FooBot", "http://foo.bar/x/")
    assert allowed("user-agent: FooBot\ndisallow: \nallow: \n", "FooBot", url)
    assert allowed("user-agent: FooBot\ndisallow: /\nallow: /\n", "FooBot", url)
    r = "user-agent: FooBot\ndisallow: /x\nallow: /x/\n"
    assert not allowed(r, "FooBot", "http://foo.bar/x")
    assert allowed(r, "FooBot", "http://foo.bar/x/")
    assert allowed("user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/page.html\n", "FooBot", url)
    r = "user-agent: FooBot\nallow: /page\ndisallow: /*.html\n"
    assert not allowed(r, "FooBot", "http://foo.bar/page.html")
    assert allowed(r, "FooBot", "http://foo.bar/page")
    r = "user-agent: FooBot\nallow: /x/page.\ndisallow: /*.html\n"
    assert allowed(r, "FooBot", url)
    assert not allowed(r, "FooBot", "http://foo.bar/x/y.html")
    r = "User-agent: *\nDisallow: /x/\nUser-agent: FooBot\nDisallow: /y/\n"
    assert allowed(r, "FooBot", "http://foo.bar/x/page")
    assert not allowed(r, "FooBot", "http://foo.bar/y/page")


def test_id_encoding() -> None:
    r = "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar?qux=taz&baz=http://foo.bar?tar&par\n"
    assert allowed(r, "FooBot", "http://foo.bar/foo/bar?qux=taz&baz=http://foo.bar?tar&par")
    r = "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/ツ\n"
    assert allowed(r, "FooBot", "http://foo.bar/foo/bar/%E3%83%84")
    r = "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%E3%83%84\n"
    assert allowed(r, "FooBot", "http://foo.bar/foo/bar/%E3%83%84")


def test_id_special_characters() -> None:
    r = "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n"
    assert not allowed(r, "FooBot", "http://foo.bar/foo/bar/quz")
    assert allowed(r, "FooBot", "http://foo.bar/foo/quz")
    assert allowed(r, "FooBot", "http://foo.bar/foo//quz")
    assert allowed(r, "FooBot", "http://foo.bar/foo/bax/quz")
    r = "User-agent: FooBot\nDisallow: /foo/bar$\nAllow: /foo/bar/qux\n"
    assert not allowed(r, "FooBot", "http://foo.bar/foo/bar")
    assert allowed(r, "FooBot", "http://foo.bar/foo/bar/qux")
    assert allowed(r, "FooBot", "http://foo.bar/foo/bar/")
    assert allowed(r, "FooBot", "http://foo.bar/foo/bar/baz")
    r = "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /\n"
    assert allowed(r, "FooBot", "http://foo.bar/foo/bar")
    assert not allowed(r, "FooBot", "http://foo.bar/foo/quz")


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_id_line_endings(eol: str) -> None:
    r = eol.join(["User-Agent: foo", "Allow: /some/path", "User-Agent: bar", "", "", "Disallow: /"]) + eol
    assert allowed(r, "foo", "http://foo.bar/some/path")
    assert not allowed(r, "bar", "http://foo.bar/x")
    mixed = "User-Agent: foo\nAllow: /some/path\r\nUser-Agent: bar\n\r\n\nDisallow: /"
    assert not allowed(mixed, "bar", "http://foo.bar/x")


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b"\xef\xbb", b"\xef"])
def test_id_utf8_byte_order_mark_is_skipped(bom: bytes) -> None:
    assert not allowed(bom + b"User-Agent: foo\nDisallow: /AnyValue\n", "foo", "http://foo.bar/AnyValue")


def test_id_bom_in_the_middle_is_garbage() -> None:
    body = b"User-Agent: foo\n\xef\xbb\xbfDisallow: /AnyValue\n"
    # utf-8-sig only strips a leading BOM; the mid-file one breaks its line as in Google's parser...
    rules = RobotsRules.from_bytes(body)
    assert "\ufeff" in rules.text


def test_id_sitemap_does_not_close_a_group() -> None:
    r = "User-Agent: foo\nSitemap: http://foo.bar/sitemap.xml\nDisallow: /x\n"
    assert not allowed(r, "foo", "http://foo.bar/x")
    rules = RobotsRules(r)
    assert rules.sitemaps == ["http://foo.bar/sitemap.xml"]
    # and anywhere in the file
    r2 = "Sitemap: http://foo.bar/s.xml\nUser-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\n"
    assert RobotsRules(r2).sitemaps == ["http://foo.bar/s.xml"]


def test_explain_names_the_rule_and_group() -> None:
    rules = RobotsRules("User-agent: *\nDisallow: /private/\nAllow: /private/ok\n")
    m = rules.check("http://foo.bar/private/x", "headrace")
    assert (m.allowed, m.group, m.rule) == (False, "*", "disallow /private/")
    m = rules.check("http://foo.bar/private/ok", "headrace")
    assert (m.allowed, m.rule) == (True, "allow /private/ok")
    m = rules.check("http://foo.bar/robots.txt", "headrace")
    assert m.allowed and "implicit" in m.rule


def test_extension_rules_follow_groups_and_longest_path() -> None:
    rules = RobotsRules(
        "User-Agent: *\nAllow: /\nContent-Usage: train-ai=n\nContent-Usage: /ai-ok/ train-ai=y\n\n"
        "User-Agent: ExampleBot\nAllow: /\nContent-Usage: train-ai=y\n"
    )
    assert rules.applicable_extension("http://x/page", "headrace", "content-usage") == [("", "train-ai=n")]
    assert rules.applicable_extension("http://x/ai-ok/p", "headrace", "content-usage") == [("/ai-ok/", "train-ai=y")]
    assert rules.applicable_extension("http://x/page", "ExampleBot", "content-usage") == [("", "train-ai=y")]


# ------------------------------------------------------------------------------- state machine
def cache_with(clock: Clock, **cfg: float | int | str) -> RobotsCache:
    return RobotsCache(RobotsConfig(**cfg), "headrace", clock=clock)  # type: ignore[arg-type]


def test_2xx_parses_and_is_cached_for_the_ttl() -> None:
    clock = Clock()
    cache = cache_with(clock, cache_ttl_s=3600.0)
    entry = cache.record(ORIGIN, FetchOutcome(RURL, 200, b"User-agent: *\nDisallow: /p\n"))
    assert entry.state is RobotsState.PARSED
    d = cache.decide("http://foo.bar/p/1", entry)
    assert not d.allowed and d.http_status == 200 and d.rule == "disallow /p"
    sig = d.signal()
    assert (sig.kind, sig.verdict) == ("robots", "deny") and sig.source == RURL
    assert "status=200" in sig.detail and "rule=disallow /p" in sig.detail and sig.at.endswith("Z")
    clock.advance(3599)
    assert cache.get(ORIGIN) is entry
    clock.advance(2)
    assert cache.get(ORIGIN) is None  # expired: must refetch


def test_default_ttl_is_24h_and_new_rules_apply_after_expiry() -> None:
    clock = Clock()
    cache = cache_with(clock)
    cache.record(ORIGIN, FetchOutcome(RURL, 200, b"User-agent: *\nAllow: /\n"))
    clock.advance(23 * 3600)
    entry = cache.get(ORIGIN)
    assert entry is not None and cache.decide("http://foo.bar/p", entry).allowed
    clock.advance(3600)
    assert cache.get(ORIGIN) is None
    entry = cache.record(ORIGIN, FetchOutcome(RURL, 200, b"User-agent: *\nDisallow: /\n"))
    assert not cache.decide("http://foo.bar/p", entry).allowed


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451])
def test_4xx_means_unavailable_allow_all(status: int) -> None:
    cache = cache_with(Clock())
    entry = cache.record(ORIGIN, FetchOutcome(RURL, status, b"User-agent: *\nDisallow: /\n"))
    assert entry.state is RobotsState.UNAVAILABLE
    d = cache.decide("http://foo.bar/anything", entry)
    assert d.allowed and d.state == "unavailable"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_5xx_and_429_mean_unreachable_disallow_with_backoff(status: int) -> None:
    clock = Clock()
    cache = cache_with(clock, retry_backoff_s=10.0, retry_backoff_max_s=35.0)
    entry = cache.record(ORIGIN, FetchOutcome(RURL, status))
    assert entry.state is RobotsState.UNREACHABLE
    d = cache.decide("http://foo.bar/", entry)
    assert not d.allowed and d.retry_at == clock.t + 10
    # the deny is not cached forever: it expires at the retry time, with growing backoff
    waits = []
    for _ in range(4):
        waits.append(entry.expires_at - clock.t)
        clock.t = entry.expires_at
        assert cache.get(ORIGIN) is None
        entry = cache.record(ORIGIN, FetchOutcome(RURL, status))
    assert waits == [10.0, 20.0, 35.0, 35.0]


@pytest.mark.parametrize("error", ["TimeoutError: timed out", "ConnectionRefusedError", "ConnectionLost: reset"])
def test_network_errors_mean_unreachable(error: str) -> None:
    cache = cache_with(Clock())
    entry = cache.record(ORIGIN, FetchOutcome(RURL, None, error=error))
    assert entry.state is RobotsState.UNREACHABLE
    assert not cache.decide("http://foo.bar/", entry).allowed
    assert error in entry.detail


def test_retry_after_lengthens_the_backoff_up_to_the_max() -> None:
    clock = Clock()
    cache = cache_with(clock, retry_backoff_s=10.0, retry_backoff_max_s=100.0)
    entry = cache.record(ORIGIN, FetchOutcome(RURL, 503, retry_after_s=50.0))
    assert entry.expires_at - clock.t == 50.0
    entry = cache.record("http://b:80", FetchOutcome(RURL, 503, retry_after_s=5000.0))
    assert entry.expires_at - clock.t == 100.0


def test_recovery_after_unreachable() -> None:
    clock = Clock()
    cache = cache_with(clock)
    cache.record(ORIGIN, FetchOutcome(RURL, 503))
    entry = cache.record(ORIGIN, FetchOutcome(RURL, 200, b"User-agent: *\nAllow: /\n"))
    assert entry.state is RobotsState.PARSED and entry.failures == 0
    assert cache.decide("http://foo.bar/x", entry).allowed


def test_too_many_redirects_is_unavailable() -> None:
    cache = cache_with(Clock())
    entry = cache.record(ORIGIN, FetchOutcome(RURL, 301, redirects=("a",) * 5, too_many_redirects=True))
    assert entry.state is RobotsState.UNAVAILABLE and cache.decide("http://foo.bar/x", entry).allowed


def test_thirty_days_unreachable_falls_back_to_last_good_copy() -> None:
    clock = Clock()
    cache = cache_with(clock, retry_backoff_s=3600.0, retry_backoff_max_s=86400.0)
    cache.record(ORIGIN, FetchOutcome(RURL, 200, b"User-agent: *\nDisallow: /secret\n"))
    clock.advance(86401)
    entry = cache.record(ORIGIN, FetchOutcome(RURL, 503))
    assert not cache.decide("http://foo.bar/open", entry).allowed  # disallow while unreachable
    for _ in range(40):
        clock.t = entry.expires_at
        entry = cache.record(ORIGIN, FetchOutcome(RURL, 503))
    assert clock.t - (entry.unreachable_since or 0) >= 30 * 86400
    d = cache.decide("http://foo.bar/open", entry)
    assert d.allowed and d.state == "fallback-cached"
    assert not cache.decide("http://foo.bar/secret", entry).allowed


@pytest.mark.parametrize(("fallback", "expected"), [("disallow", False), ("allow", True)])
def test_thirty_days_unreachable_without_copy_follows_written_policy(fallback: str, expected: bool) -> None:
    clock = Clock()
    cache = cache_with(clock, retry_backoff_s=86400.0, retry_backoff_max_s=86400.0, unreachable_fallback=fallback)
    entry = cache.record(ORIGIN, FetchOutcome(RURL, 500))
    for _ in range(31):
        clock.t = entry.expires_at
        entry = cache.record(ORIGIN, FetchOutcome(RURL, 500))
    assert cache.decide("http://foo.bar/x", entry).allowed is expected


def test_rule_at_490_kib_of_a_600_kib_file_is_honoured() -> None:
    filler = b"# " + b"x" * 1000 + b"\n"
    head = b"User-agent: *\n" + filler * (490 * 1024 // len(filler))
    body = head + b"Disallow: /deep\n" + filler * (110 * 1024 // len(filler))
    assert 590 * 1024 < len(body) < 610 * 1024 and len(head) > 489 * 1024
    assert not allowed(body, "headrace", "http://foo.bar/deep/x")


def test_rules_beyond_the_cap_are_ignored_and_lines_are_not_cut() -> None:
    body = b"User-agent: *\n" + b"#" * (600 * 1024) + b"\nDisallow: /late\n"
    assert allowed(body, "headrace", "http://foo.bar/late")
    capped, truncated = cap_body(b"Allow: /a\nDisallow: /abcdef\n", 20)
    assert truncated and capped == b"Allow: /a\n"


def test_config_enforces_rfc_limits() -> None:
    for bad in (
        RobotsConfig(cache_ttl_s=86401),
        RobotsConfig(max_bytes=400 * 1024),
        RobotsConfig(max_redirects=4),
        RobotsConfig(unreachable_fallback="maybe"),
    ):
        with pytest.raises(RobotsConfigError):
            bad.validate()
    RobotsConfig().validate()


def test_origin_and_robots_url() -> None:
    assert origin_of("HTTP://Example.COM/a?b") == "http://example.com:80"
    assert origin_of("https://example.com:8443/a") == "https://example.com:8443"
    assert robots_url("http://example.com:80") == "http://example.com/robots.txt"
    assert robots_url("https://example.com:8443") == "https://example.com:8443/robots.txt"
    assert robots_url(origin_of("http://[::1]:8080/x")) == "http://[::1]:8080/robots.txt"
