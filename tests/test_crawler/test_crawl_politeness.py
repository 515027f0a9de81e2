"""Politeness on the wire (C-6): per-host gaps >= max(floor, Crawl-delay) over >= 200 requests, one
request in flight per host, Retry-After honoured; and SSRF refusal of loopback targets."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from test_crawler.sitefixture import Route, Site, run_crawl_subprocess

pytestmark = pytest.mark.slow

LOOPBACK = {"ssrf": {"allow_private": True}}


class Concurrency:
    """Counts requests in progress at the server."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def wrap(self, body: bytes, hold_s: float = 0.005) -> Any:
        def handler(_h: BaseHTTPRequestHandler) -> Route:
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(hold_s)  # a request in progress for a moment: overlaps would show
            with self.lock:
                self.active -= 1
            return Route(body=body)

        return handler


def test_crawl_delay_spacing_over_200_requests(tmp_path: Path) -> None:
    crawl_delay = 0.05
    n = 210
    conc = Concurrency()
    with Site() as site:
        site.add(
            "/robots.txt",
            Route(body=f"User-agent: *\nCrawl-delay: {crawl_delay}\n".encode(), content_type="text/plain"),
        )
        for i in range(n):
            site.add(f"/p/{i}", conc.wrap(f"<html><body><p>page {i}</p></body></html>".encode()))
        seeds = [site.url(f"/p/{i}") for i in range(n)]
        config = {**LOOPBACK, "min_delay_s": 0.01, "concurrent_requests": 16, "follow_links": False}
        result = run_crawl_subprocess(tmp_path, seeds, config, timeout=180)
        hits = sorted(site.hits, key=lambda h: h.t)
        page_hits = [h for h in hits if h.path.startswith("/p/")]
        assert len(page_hits) == n and len(result["pages"]) == n
        gaps = [b.t - a.t for a, b in pairwise(hits)]
        assert len(gaps) >= 200
        below = [g for g in gaps if g < crawl_delay]
        assert not below, f"{len(below)} gaps below the Crawl-delay; smallest {min(gaps):.4f}s"
        assert conc.peak == 1, "more than one request in flight to one host"


def test_floor_applies_without_crawl_delay(tmp_path: Path) -> None:
    floor = 0.05
    conc = Concurrency()
    with Site() as site:
        site.add("/robots.txt", Route(body=b"User-agent: *\nAllow: /\n", content_type="text/plain"))
        for i in range(40):
            site.add(f"/p/{i}", conc.wrap(b"<html><body>x</body></html>"))
        config = {**LOOPBACK, "min_delay_s": floor, "follow_links": False}
        run_crawl_subprocess(tmp_path, [site.url(f"/p/{i}") for i in range(40)], config)
        hits = sorted(site.hits, key=lambda h: h.t)
        gaps = [b.t - a.t for a, b in pairwise(hits)]
        assert len(hits) == 43 and min(gaps) >= floor and conc.peak == 1


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky(_h: BaseHTTPRequestHandler) -> Route:
        calls["n"] += 1
        if calls["n"] == 1:
            return Route(503, b"busy", headers=[("Retry-After", "1")])
        return Route(body=b"<html><body><p>finally</p></body></html>")

    with Site() as site:
        site.add("/robots.txt", Route(body=b"User-agent: *\nAllow: /\n", content_type="text/plain"))
        site.add("/p", flaky)
        config = {**LOOPBACK, "fetch_tdmrep": False, "fetch_ai_txt": False}
        result = run_crawl_subprocess(tmp_path, [site.url("/p")], config)
        first, second = site.hits_for("/p")
        assert second.t - first.t >= 1.0
        assert [p["url"] for p in result["pages"]] == [site.url("/p")]
        assert result["report"]["counts"]["politeness/retry-after"] == 1


def test_loopback_targets_are_refused_without_the_flag(tmp_path: Path) -> None:
    with Site() as site:
        site.page("/p")
        seeds = [site.url("/p"), f"http://localhost:{site.port}/p", f"http://2130706433:{site.port}/p"]
        result = run_crawl_subprocess(tmp_path, seeds, {})
        assert site.hits == [], "nothing may reach a loopback target"
        assert result["pages"] == []
        counts = result["report"]["counts"]
        assert counts.get("refused/ssrf/loopback", 0) >= 2
        assert "refusing" in result["log"]


def test_allow_listed_network_is_crawled(tmp_path: Path) -> None:
    with Site() as site:
        site.page("/p")
        config = {"ssrf": {"allow_networks": ["127.0.0.0/8"]}, "fetch_tdmrep": False, "fetch_ai_txt": False}
        result = run_crawl_subprocess(tmp_path, [site.url("/p")], config)
        assert "/p" in site.paths() and len(result["pages"]) == 1
