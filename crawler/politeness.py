"""Per-host politeness: one request in flight, a delay between requests, Crawl-delay and Retry-After.

Scrapy keeps one download *slot* per host (``CONCURRENT_REQUESTS_PER_DOMAIN`` = 1 by default here) and
spaces request *starts* by ``slot.delay``. We make the spacing stricter and data-driven:

* the delay is ``max(min_delay_s, Crawl-delay)`` for the host (set when its robots.txt is known);
* it counts from the end of the previous response (``slot.lastseen`` is moved to the moment the
  response arrived), so the gap the server sees between two requests is never below the delay;
* a 429/503 with ``Retry-After`` pushes the host's next request at least that far into the future; a
  Retry-After beyond ``max_retry_after_s`` ends the crawl of that host for that long instead.
"""

from __future__ import annotations

import logging
import time
from email.utils import parsedate_to_datetime
from typing import Any

log = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | bytes | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def apply_slot_delay(crawler: Any, host: str, delay: float, concurrency: int) -> None:
    """Make the host's download slot (now, and if it is re-created later) use ``delay``."""
    downloader = crawler.engine.downloader
    downloader.per_slot_settings[host] = {"delay": delay, "jitter": 0.0, "concurrency": concurrency}
    slot = downloader.slots.get(host)
    if slot is not None:
        slot.delay = delay
        slot.jitter = 0.0


class PolitenessExtension:
    """Scrapy extension: moves each slot's clock to the response's arrival and applies Retry-After."""

    def __init__(self, crawler: Any, ctx: Any) -> None:
        self.crawler = crawler
        self.ctx = ctx

    @classmethod
    def from_crawler(cls, crawler: Any) -> PolitenessExtension:
        from scrapy import signals

        from crawler.context import CONTEXT_SETTING

        ext = cls(crawler, crawler.settings[CONTEXT_SETTING])
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        return ext

    def response_downloaded(self, response: Any, request: Any, spider: Any = None) -> None:
        from time import monotonic

        downloader = self.crawler.engine.downloader
        key = request.meta.get("download_slot")
        slot = downloader.slots.get(key) if key is not None else None
        if slot is None:
            return
        host = key
        slot.delay = self.ctx.delay_for(host)
        slot.jitter = 0.0
        # Count the delay from now (the response's arrival), not from when the request left.
        slot.lastseen = monotonic()
        if response.status in RETRY_AFTER_STATUSES:
            wait = parse_retry_after(response.headers.get(b"Retry-After"), self.ctx.clock())
            if wait is None:
                return
            self.ctx.inc("politeness/retry-after")
            if wait > self.ctx.config.max_retry_after_s:
                self.ctx.block_host(host, wait, f"Retry-After {wait:.0f}s exceeds max_retry_after_s")
                return
            # Scrapy waits ``delay - now + lastseen`` (only when the delay is non-zero): push lastseen so
            # the next start is >= now + wait. The next response resets the delay to the host's own.
            slot.delay = max(slot.delay, 1e-6)
            slot.lastseen = monotonic() + max(0.0, wait - slot.delay)
            log.info("%s answered %d with Retry-After %.1fs: next request waits", host, response.status, wait)
