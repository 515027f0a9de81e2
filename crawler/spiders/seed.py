"""The seed-list spider: crawl from seed URLs, optionally following links within the allowed scope.

Scope rules (checked before any request is made): http(s) only; ``deny_domains`` first, then
``allow_domains`` (a host matches a domain and its subdomains); without ``allow_domains``,
``stay_on_seed_hosts`` keeps link-following on the seeds' hosts; the compliance blocklist; a link depth
limit (seeds and sitemap entries are depth 0) and a page limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy.linkextractors import LinkExtractor
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.context import CONTEXT_SETTING, CrawlContext
from crawler.optout import is_html
from crawler.page_builder import build_page, refused_page
from crawler.pipeline import CrawledPage
from crawler.robots_middleware import HostSkipped, PolicyRefusal, RobotsWait
from crawler.seeds import SeedBatches
from crawler.ssrf_middleware import TargetRefusedRequest

log = logging.getLogger(__name__)

DEPTH_META = "headrace_depth"


def host_in(host: str, domains: Iterable[str]) -> bool:
    h = host.lower().rstrip(".")
    return any(h == d or h.endswith("." + d) for d in (x.lower().strip(".") for x in domains))


class SeedSpider(scrapy.Spider):
    name = "headrace-seeds"

    def __init__(self, ctx: CrawlContext, seeds: SeedBatches | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self.seeds: SeedBatches = seeds if seeds is not None else iter(())
        self.pages = 0
        self._links = LinkExtractor(unique=True)
        self._closing = False

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("ctx", crawler.settings[CONTEXT_SETTING])
        return super().from_crawler(crawler, *args, **kwargs)

    # ------------------------------------------------------------------------------------ scope
    def admissible(self, url: str, *, seed: bool = False) -> bool:
        config = self.ctx.config
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            return False
        if config.deny_domains and host_in(host, config.deny_domains):
            self.ctx.inc("skipped/denied-domain")
            return False
        if config.allow_domains:
            if not host_in(host, config.allow_domains):
                self.ctx.inc("skipped/outside-allowed-domains")
                return False
        elif config.stay_on_seed_hosts and not seed and host not in self.ctx.seed_hosts:
            self.ctx.inc("skipped/off-seed-host")
            return False
        if self.ctx.blocklist.match_url(url) is not None:
            self.ctx.inc("skipped/blocked")
            return False
        return True

    def page_request(self, url: str, depth: int = 0, **kwargs: Any) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_page, errback=self.on_error, meta={DEPTH_META: depth}, **kwargs)

    def seed_requests(self, urls: Iterable[str]) -> Iterator[scrapy.Request]:
        for url in urls:
            host = (urlsplit(url).hostname or "").lower()
            if host:
                self.ctx.seed_hosts.add(host)
            if self.admissible(url, seed=True):
                self.ctx.inc("seeds")
                yield self.page_request(url)

    async def start(self) -> AsyncIterator[Any]:
        while not self._closing:
            batch = await asyncio.to_thread(next, self.seeds, None)
            if batch is None:
                return
            for request in self.seed_requests(batch):
                yield request

    # -------------------------------------------------------------------------------- callbacks
    def parse_page(self, response: Any) -> Iterator[Any]:
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1")
        if not is_html(content_type):
            self.ctx.inc("skipped/not-html")
            return
        config = self.ctx.config
        if config.max_pages and self.pages >= config.max_pages:
            return
        page = build_page(response, self.ctx)
        self.pages += 1
        yield CrawledPage(page)
        if config.max_pages and self.pages >= config.max_pages:
            self._closing = True
            raise CloseSpider("max_pages")
        depth = int(response.meta.get(DEPTH_META, 0))
        opted_out = page.truncated.startswith("withheld")
        if not config.follow_links or opted_out or (config.max_depth and depth >= config.max_depth):
            return
        if not hasattr(response, "text"):
            return
        for link in self._links.extract_links(response):
            if self.admissible(link.url):
                yield self.page_request(link.url, depth + 1)

    def on_error(self, failure: Failure) -> Iterator[Any]:
        exc = failure.value
        if isinstance(exc, PolicyRefusal):
            if self.ctx.config.record_refused:
                yield CrawledPage(refused_page(exc, self.ctx), fetched=False)
            return
        if isinstance(exc, RobotsWait | HostSkipped | TargetRefusedRequest):
            return
        if isinstance(exc, HttpError):
            self.ctx.inc(f"http/{exc.response.status}")
            return
        self.ctx.inc(f"errors/{type(exc).__name__}")
        log.info("fetch failed: %s", exc)
