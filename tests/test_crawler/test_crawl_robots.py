"""Live crawls against local sites: the robots.txt fetch-status state machine (C-3), redirect chains,
cache expiry while the spider runs (C-4), size limits (C-5) and robots disabled by the explicit flag.

Each crawl runs in a subprocess (Twisted's reactor cannot restart); the sites run here and log every
request, so the assertions are about what reached the wire.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from test_crawler.sitefixture import Route, Site, policy_of, run_crawl_subprocess, signals_of

pytestmark = pytest.mark.slow

ALLOW_LOOPBACK: dict[str, Any] = {"ssrf": {"allow_private": True}}
FAST_RETRY: dict[str, Any] = {"retry_backoff_s": 0.2, "retry_backoff_max_s": 0.4, "unreachable_max_waits": 1}
TEXT = "text/plain"


def by_url(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["url"]: p for p in result["pages"]}


def robots_signal(page: dict[str, Any]) -> dict[str, Any]:
    (sig,) = signals_of(page, "robots")
    return sig


def dropping_handler(_h: BaseHTTPRequestHandler) -> Route | None:
    """Close the connection without answering (a reset as far as the client is concerned)."""
    _h.close_connection = True
    _h.connection.shutdown(socket.SHUT_RDWR)
    return None


def slow_handler(seconds: float) -> Any:
    def handler(_h: BaseHTTPRequestHandler) -> Route | None:
        time.sleep(seconds)
        return Route(body=b"User-agent: *\nAllow: /\n", content_type=TEXT)

    return handler


def flaky_robots(failures: int) -> Any:
    state = {"n": 0}
    lock = threading.Lock()

    def handler(_h: BaseHTTPRequestHandler) -> Route:
        with lock:
            state["n"] += 1
            n = state["n"]
        if n <= failures:
            return Route(503, b"busy", content_type=TEXT)
        return Route(body=b"User-agent: *\nDisallow: /no\n", content_type=TEXT)

    return handler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sites() -> Iterator[dict[str, Site]]:
    with ExitStack() as stack:
        made: dict[str, Site] = {}

        def make(name: str) -> Site:
            made[name] = stack.enter_context(Site())
            return made[name]

        ok = make("200")
        ok.add("/robots.txt", Route(body=b"User-agent: *\nDisallow: /no\n", content_type=TEXT))
        for code in (404, 403, 410):
            make(str(code)).add("/robots.txt", Route(code, b"nope", content_type=TEXT))
        for code in (429, 500, 502, 503, 504):
            make(str(code)).add("/robots.txt", Route(code, b"error", content_type=TEXT))
        make("timeout").add("/robots.txt", slow_handler(3.0))
        make("reset").add("/robots.txt", dropping_handler)
        make("recover").add("/robots.txt", flaky_robots(2))
        for s in made.values():
            s.page("/p")
            s.page("/no/x")
        yield made


def test_fetch_status_state_machine(sites: dict[str, Site], tmp_path: Path) -> None:
    refused_port = free_port()
    seeds = [s.url("/p") for s in sites.values()] + [sites["200"].url("/no/x"), sites["recover"].url("/no/x")]
    seeds.append(f"http://127.0.0.1:{refused_port}/p")
    config = {
        **ALLOW_LOOPBACK,
        "fetch_tdmrep": False,
        "fetch_ai_txt": False,
        "robots": {"timeout_s": 1.0, "retry_backoff_s": 0.3, "retry_backoff_max_s": 0.6, "unreachable_max_waits": 2},
    }
    result = run_crawl_subprocess(tmp_path, seeds, config)
    pages = by_url(result)

    # 2xx: rules apply; the disallowed page is never requested and is recorded as refused.
    ok = sites["200"]
    assert ok.paths().count("/robots.txt") == 1 and "/p" in ok.paths() and "/no/x" not in ok.paths()
    assert robots_signal(pages[ok.url("/p")])["verdict"] == "allow"
    refused = pages[ok.url("/no/x")]
    assert refused["status"] == 0 and refused["truncated"] == "not-fetched"
    sig = robots_signal(refused)
    assert sig["verdict"] == "deny" and "rule=disallow /no" in sig["detail"] and "status=200" in sig["detail"]
    assert sig["at"] and policy_of(refused)["verdict"] == "deny"

    # 4xx: unavailable -> allow everything (even /no/x would be allowed; /p is fetched).
    for code in ("404", "403", "410"):
        site = sites[code]
        assert site.paths().count("/p") == 1, code
        sig = robots_signal(pages[site.url("/p")])
        assert sig["verdict"] == "allow" and "state=unavailable" in sig["detail"] and f"status={code}" in sig["detail"]

    # 5xx, 429, timeout, reset, refused: disallow, robots.txt retried after a backoff, 0 page requests.
    for name in ("429", "500", "502", "503", "504", "timeout", "reset"):
        site = sites[name]
        robots_hits = site.hits_for("/robots.txt")
        assert [h.path for h in site.hits] == ["/robots.txt"] * 3, (name, site.paths())
        gaps = [b.t - a.t for a, b in pairwise(robots_hits)]
        assert all(g >= 0.29 for g in gaps), (name, gaps)
        page = pages[site.url("/p")]
        assert page["status"] == 0 and page["truncated"] == "not-fetched"
        sig = robots_signal(page)
        assert sig["verdict"] == "deny" and "state=unreachable" in sig["detail"], (name, sig)
    refused_page = pages[f"http://127.0.0.1:{refused_port}/p"]
    assert "state=unreachable" in robots_signal(refused_page)["detail"]

    # Unreachable, then recovered: the page waited (parked) and was fetched after robots.txt came back.
    rec = sites["recover"]
    paths = rec.paths()
    assert paths[:3] == ["/robots.txt"] * 3 and paths.count("/p") == 1 and "/no/x" not in paths
    assert robots_signal(pages[rec.url("/p")])["verdict"] == "allow"
    assert robots_signal(pages[rec.url("/no/x")])["verdict"] == "deny"


def redirect_chain(origin: Site, target: Site, hops: int, name: str) -> None:
    """origin/robots.txt -> target/r-name-1 -> ... -> target/final-name (``hops`` redirects)."""
    targets = [f"http://localhost:{target.port}/r-{name}-{i}" for i in range(1, hops)]
    targets.append(f"http://localhost:{target.port}/final-{name}")
    origin.add("/robots.txt", Route(301, b"", headers=[("Location", targets[0])], content_type=TEXT))
    for i in range(1, hops):
        target.add(f"/r-{name}-{i}", Route(302, b"", headers=[("Location", targets[i])], content_type=TEXT))
    target.add(f"/final-{name}", Route(body=b"User-agent: *\nDisallow: /secret\n", content_type=TEXT))
    origin.page("/secret")
    origin.page("/open")


def test_redirect_chains(tmp_path: Path) -> None:
    with ExitStack() as stack:
        target = stack.enter_context(Site())
        origins = {hops: stack.enter_context(Site()) for hops in (1, 2, 3, 4, 5, 6)}
        for hops, origin in origins.items():
            redirect_chain(origin, target, hops, str(hops))
        seeds = [o.url(p) for o in origins.values() for p in ("/secret", "/open")]
        config = {**ALLOW_LOOPBACK, "fetch_tdmrep": False, "fetch_ai_txt": False, "robots": FAST_RETRY}
        result = run_crawl_subprocess(tmp_path, seeds, config)
        pages = by_url(result)
        for hops in (1, 2, 3, 4, 5):
            origin = origins[hops]
            assert origin.paths().count("/robots.txt") == 1
            assert "/secret" not in origin.paths(), f"{hops} hops: rules of the redirected file must apply"
            assert "/open" in origin.paths()
            sig = robots_signal(pages[origin.url("/secret")])
            assert sig["verdict"] == "deny" and f"redirects={hops}" in sig["detail"]
            assert target.paths().count(f"/final-{hops}") == 1
        six = origins[6]
        assert "/secret" in six.paths() and "/final-6" not in target.paths()
        sig = robots_signal(pages[six.url("/secret")])
        assert (
            sig["verdict"] == "allow"
            and "state=unavailable" in sig["detail"]
            and "more than 5 redirects" in sig["detail"]
        )


def test_new_rules_apply_after_cache_expiry_while_the_spider_runs(tmp_path: Path) -> None:
    ttl = 1.0
    with Site() as site:
        switched: dict[str, float] = {}

        def robots(_h: BaseHTTPRequestHandler) -> Route:
            body = b"User-agent: *\nDisallow: /p\n" if switched else b"User-agent: *\nAllow: /\n"
            return Route(body=body, content_type=TEXT)

        def page_handler(n: int) -> Any:
            def handler(_h: BaseHTTPRequestHandler) -> Route:
                if n == 2 and not switched:
                    switched["t"] = time.monotonic()
                return Route(body=f"<html><body><p>page {n}</p><a href='/p{n + 1}'>next</a></body></html>".encode())

            return handler

        site.add("/robots.txt", robots)
        for n in range(12):
            site.add(f"/p{n}", page_handler(n))
        config = {
            **ALLOW_LOOPBACK,
            "min_delay_s": 0.3,
            "max_depth": 0,
            "fetch_tdmrep": False,
            "fetch_ai_txt": False,
            "robots": {"cache_ttl_s": ttl, **FAST_RETRY},
        }
        result = run_crawl_subprocess(tmp_path, [site.url("/p0")], config)
        t_switch = switched["t"]
        robots_hits = site.hits_for("/robots.txt")
        assert len(robots_hits) >= 2
        page_hits = [h for h in site.hits if h.path.startswith("/p")]
        assert len(page_hits) >= 3
        # no page was requested later than one TTL (plus one politeness gap) after the change
        assert all(h.t <= t_switch + ttl + 0.6 for h in page_hits), [(h.path, h.t - t_switch) for h in page_hits]
        refused = [p for p in result["pages"] if p.get("status") == 0]
        assert refused, "the new Disallow must refuse later pages"
        sig = robots_signal(refused[0])
        assert sig["verdict"] == "deny" and "rule=disallow /p" in sig["detail"]


def test_size_limits(tmp_path: Path) -> None:
    filler = b"# " + b"x" * 1000 + b"\n"
    deep = b"User-agent: *\n" + filler * 490 + b"Disallow: /deep\n" + filler * 110
    big_head = b"User-agent: *\nDisallow: /big-secret\n"
    chunk = filler * 64
    total = 50 * 1024 * 1024
    sent = {"bytes": 0}

    def big_body() -> Iterator[bytes]:
        yield big_head
        sent["bytes"] += len(big_head)
        while sent["bytes"] < total:
            yield chunk
            sent["bytes"] += len(chunk)

    with Site() as a, Site() as b:
        a.add("/robots.txt", Route(body=deep, content_type=TEXT))
        a.page("/deep/x")
        a.page("/ok")
        n_chunks = (total - len(big_head) + len(chunk) - 1) // len(chunk)
        b.add(
            "/robots.txt",
            lambda _h: Route(body=big_body(), length=len(big_head) + n_chunks * len(chunk), content_type=TEXT),
        )
        b.page("/big-secret")
        b.page("/ok")
        seeds = [a.url("/deep/x"), a.url("/ok"), b.url("/big-secret"), b.url("/ok")]
        config = {**ALLOW_LOOPBACK, "fetch_tdmrep": False, "fetch_ai_txt": False, "robots": FAST_RETRY}
        result = run_crawl_subprocess(tmp_path, seeds, config)
        pages = by_url(result)
        assert "/deep/x" not in a.paths() and "/ok" in a.paths()
        assert robots_signal(pages[a.url("/deep/x")])["verdict"] == "deny"
        assert "/big-secret" not in b.paths() and "/ok" in b.paths()
        sig = robots_signal(pages[b.url("/big-secret")])
        assert sig["verdict"] == "deny" and "truncated at parse limit" in sig["detail"]
        assert sent["bytes"] < 16 * 1024 * 1024, "the 50 MiB robots.txt must not be downloaded whole"
        assert result["rss_growth_kib"] < 64 * 1024


def test_robots_disabled_needs_the_flag_and_is_recorded(tmp_path: Path) -> None:
    with Site() as site:
        site.add("/robots.txt", Route(body=b"User-agent: *\nDisallow: /\n", content_type=TEXT))
        site.page("/p")
        result = run_crawl_subprocess(
            tmp_path,
            [site.url("/p")],
            {**ALLOW_LOOPBACK, "fetch_tdmrep": False, "fetch_ai_txt": False},
            obey_robots=False,
        )
        assert "/robots.txt" not in site.paths() and "/p" in site.paths()
        ua = site.hits_for("/p")[0].headers["user-agent"]
        assert ua.startswith("Mozilla/5.0 (compatible; headrace/") and ua.endswith("+https://example.org/crawler)")
        (page,) = result["pages"]
        sig = robots_signal(page)
        assert sig["verdict"] == "disabled" and policy_of(page)["verdict"] == "allow"
        assert "robots.txt checking is DISABLED" in result["log"]
