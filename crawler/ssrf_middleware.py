"""Scrapy glue for :mod:`crawler.ssrf`: a downloader middleware and a DNS resolver.

The middleware resolves each request's host (off the reactor thread, cached for a minute) and refuses
the request before anything is sent — robots.txt and redirect targets included, since they pass through
the same middleware chain. The resolver is the backstop at connect time: the addresses Twisted actually
connects to are checked again, so a name that changes its answer between the two look-ups (DNS
rebinding) is still refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingThreadedResolver
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import DNSLookupError

from crawler.context import CONTEXT_SETTING, CrawlContext
from crawler.ssrf import TargetGuard, TargetRefused

log = logging.getLogger(__name__)

_CACHE_S = 60.0


class TargetRefusedRequest(IgnoreRequest):
    def __init__(self, refusal: TargetRefused) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class SsrfMiddleware:
    def __init__(self, ctx: CrawlContext) -> None:
        self.ctx = ctx
        self._cache: dict[tuple[str, int], tuple[float, TargetRefused | None]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> SsrfMiddleware:
        return cls(crawler.settings[CONTEXT_SETTING])

    async def process_request(self, request: Any) -> None:
        parts = urlparse_cached(request)
        host = parts.hostname
        if not host or parts.scheme not in ("http", "https"):
            return
        guard = self.ctx.guard
        if guard.config.allow_private or guard.host_allowed(host):
            return
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (host, port)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or cached[0] < now:
            refusal: TargetRefused | None = None
            try:
                await asyncio.to_thread(guard.check, host, port)
            except TargetRefused as exc:
                refusal = exc
            cached = (now + _CACHE_S, refusal)
            self._cache[key] = cached
        if cached[1] is not None:
            self.ctx.inc(f"refused/ssrf/{cached[1].reason}")
            log.warning("refusing %s: %s", request.url, cached[1])
            raise TargetRefusedRequest(cached[1])


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, refusing names that resolve to addresses the guard refuses."""

    guard: TargetGuard = TargetGuard()

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        resolver = super().from_crawler(crawler, reactor)
        ctx = crawler.settings.get(CONTEXT_SETTING)
        if ctx is not None:
            resolver.guard = ctx.guard
        return resolver

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:
        d = super().getHostByName(name, timeout)
        d.addCallback(self._check, name)
        return d

    def _check(self, address: str, name: str) -> str:
        if self.guard.config.allow_private or self.guard.host_allowed(name):
            return address
        reason = self.guard.refusal(address)
        if reason is not None:
            log.warning("refusing to connect to %s (%s): %s", name, address, reason)
            raise DNSLookupError(f"refused target {name} ({address}): {reason}")
        return address
