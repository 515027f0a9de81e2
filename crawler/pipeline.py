"""Publishing crawled pages: the Scrapy item pipeline and the sink behind it.

Pages go through a :class:`streams.bus.Publisher` exactly as replay publishes them (codec ``encode``,
key ``url_key(url)``, the ``pages.raw`` topic), so downstream stages cannot tell crawl from replay except
by ``lineage.source == "crawl"``. The sink flushes every ``batch`` pages and then calls ``on_batch``
(the embedded run drains the pipeline there, which bounds memory).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.bus import MessageTooLargeError, Publisher
from streams.codec import encode
from streams.ids import url_key
from streams.records import Page

log = logging.getLogger(__name__)


@dataclass
class CrawledPage:
    """The item our spiders yield (Scrapy items must be dicts, dataclasses, ...; a Page is a Struct)."""

    page: Page
    fetched: bool = True  # False: a URL refused before fetching (robots / opt-out), body-less


class PageSink:
    def __init__(
        self,
        publisher: Publisher,
        topic: str,
        batch: int = 64,
        on_batch: Callable[[], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.topic = topic
        self.batch = max(1, batch)
        self.on_batch = on_batch
        self.published = 0
        self.too_large = 0
        self._pending = 0

    def publish(self, page: Page) -> bool:
        try:
            self.publisher.publish(self.topic, encode(page), url_key(page.url))
        except MessageTooLargeError as exc:
            self.too_large += 1
            log.warning("page %s too large to publish: %s", page.url, exc)
            return False
        self.published += 1
        self._pending += 1
        if self._pending >= self.batch:
            self.flush()
        return True

    def flush(self) -> None:
        if self._pending:
            self.publisher.flush()
            self._pending = 0
        if self.on_batch is not None:
            self.on_batch()

    def close(self) -> None:
        self.flush()


class PublishPipeline:
    """Scrapy item pipeline: every :class:`CrawledPage` goes to the crawl's :class:`PageSink`."""

    def __init__(self, sink: PageSink, stats: Any) -> None:
        self.sink = sink
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> PublishPipeline:
        from crawler.context import CONTEXT_SETTING

        ctx = crawler.settings[CONTEXT_SETTING]
        return cls(ctx.sink, ctx.stats)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, CrawledPage) and self.sink.publish(item.page):
            self.stats["published"] += 1
            self.stats["published/" + ("fetched" if item.fetched else "refused")] += 1
        return item

    def close_spider(self) -> None:
        self.sink.close()
