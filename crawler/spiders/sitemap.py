"""The sitemap spider: pages listed in sitemaps (XML, sitemap indexes, gzip, or a robots.txt's
``Sitemap:`` lines), plus any seeds, under the same scope, robots and opt-out rules as the seed spider.

Sitemap files are fetched through the same downloader middlewares, so robots.txt applies to them too.
Sitemap entries count as depth 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.spiders import SitemapSpider as ScrapySitemapSpider

from crawler.context import CrawlContext
from crawler.seeds import SeedBatches
from crawler.spiders.seed import DEPTH_META, SeedSpider


class SitemapSpider(SeedSpider, ScrapySitemapSpider):
    name = "headrace-sitemap"
    sitemap_rules = [("", "parse_page")]  # noqa: RUF012 - Scrapy reads this class attribute

    def __init__(
        self,
        ctx: CrawlContext,
        seeds: SeedBatches | None = None,
        sitemaps: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        self.sitemap_urls = list(sitemaps)
        super().__init__(ctx=ctx, seeds=seeds, **kwargs)

    async def start(self) -> AsyncIterator[Any]:
        for url in self.sitemap_urls:
            host = (urlsplit(url).hostname or "").lower()
            if host:
                self.ctx.seed_hosts.add(host)
            if self.admissible(url, seed=True):
                yield scrapy.Request(url, callback=self._parse_sitemap, errback=self.on_error)
        async for request in super().start():
            yield request

    def _parse_sitemap(self, response: Any) -> Iterable[Any]:
        return self._scoped(super()._parse_sitemap(response))

    def _scoped(self, requests: Iterable[Any]) -> Iterator[Any]:
        for request in requests:
            if not isinstance(request, scrapy.Request):
                yield request
                continue
            if request.callback == self.parse_page:
                if not self.admissible(request.url, seed=True):
                    continue
                self.ctx.inc("sitemap/pages")
                request.meta[DEPTH_META] = 0
            yield request.replace(errback=self.on_error)
