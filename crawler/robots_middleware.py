"""Downloader middleware that replaces Scrapy's ``RobotsTxtMiddleware`` (which fails open on 5xx and
network errors and caches forever) with RFC 9309 behaviour, and gathers host-level opt-out signals.

For every page request it:

1. refuses hosts that are backed off (Crawl-delay or Retry-After beyond the configured maximum);
2. gets the origin's robots.txt entry from :class:`crawler.robots.RobotsCache`, fetching it through
   the engine (redirects followed here, up to ``max_redirects``; body capped while downloading) with
   concurrent requests for one origin waiting on a single fetch;
3. applies the decision: *allow* goes on; *deny* raises :class:`PolicyRefusal`; *unreachable* parks
   the request until the robots retry time (the spider is kept open meanwhile), so no page request
   reaches that host while its robots.txt is unreachable;
4. sets the host's politeness delay from Crawl-delay;
5. reads the origin's ``/.well-known/tdmrep.json`` and ``/ai.txt`` (themselves subject to robots.txt),
   adds robots AI-agent groups and Content-Usage rules, and stores every signal in ``request.meta`` for
   the spider; if those host-level signals already opt the page out in a way no page-level signal can
   lift, the page is not fetched at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, StopDownload
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import call_later
from scrapy.utils.httpobj import urlparse_cached

from crawler.context import CONTEXT_SETTING, CrawlContext, HostResources
from crawler.optout import AiTxt, TdmRepFile, ai_txt_signals, robots_signals, tdmrep_file_signals
from crawler.politeness import apply_slot_delay, parse_retry_after
from crawler.robots import FetchOutcome, RobotsEntry, RobotsState, iso, origin_of, robots_url
from streams.records import Signal

log = logging.getLogger(__name__)

#: request.meta keys
RESOURCE_META = "headrace_resource"  # our own fetch of robots.txt / tdmrep.json / ai.txt
SIGNALS_META = "headrace_signals"  # signals gathered before the fetch (robots, host-level opt-outs)
WAITS_META = "headrace_robots_waits"
CAP_META = "headrace_cap"  # stop downloading after this many bytes (robots.txt parse limit)
GOT_META = "headrace_bytes_received"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class PolicyRefusal(IgnoreRequest):
    """The page is not fetched: robots.txt denies it, or host-level signals opt it out."""

    def __init__(self, reason: str, url: str, signals: Sequence[Signal]) -> None:
        super().__init__(f"{reason}: {url}")
        self.reason = reason
        self.url = url
        self.signals = tuple(signals)


class RobotsWait(IgnoreRequest):
    """The request was parked until the host's robots.txt is retried (it will come back)."""


class HostSkipped(IgnoreRequest):
    """The host asked for a delay beyond our limits; we leave it alone."""


class RobotsMiddleware:
    def __init__(self, crawler: Any, ctx: CrawlContext) -> None:
        self.crawler = crawler
        self.ctx = ctx
        self.config = ctx.config
        self._inflight: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self.parked = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> RobotsMiddleware:
        mw = cls(crawler, crawler.settings[CONTEXT_SETTING])
        crawler.signals.connect(mw.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(mw.bytes_received, signal=signals.bytes_received)
        return mw

    # ---------------------------------------------------------------------------- Scrapy hooks
    def spider_idle(self) -> None:
        if self.parked:
            raise DontCloseSpider

    def bytes_received(self, data: bytes, request: Any, spider: Any = None) -> None:
        cap = request.meta.get(CAP_META)
        if cap is None:
            return
        got = request.meta.get(GOT_META, 0) + len(data)
        request.meta[GOT_META] = got
        if got > cap:
            raise StopDownload(fail=False)  # the response keeps what arrived; the rest is never read

    async def process_request(self, request: Any) -> None:
        if request.meta.get(RESOURCE_META):
            return
        parts = urlparse_cached(request)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return
        url = request.url
        host = parts.hostname.lower()
        block = self.ctx.host_blocked(host)
        if block is not None:
            self.ctx.inc("refused/host-backoff")
            raise HostSkipped(f"{host}: {block.reason}")
        origin = origin_of(url)
        gathered: list[Signal] = []
        entry: RobotsEntry | None = None
        if self.ctx.obey_robots:
            entry = await self._robots_entry(origin)
            decision = self.ctx.robots.decide(url, entry)
            gathered.append(decision.signal())
            if not decision.allowed:
                if entry.state is RobotsState.UNREACHABLE and decision.state == RobotsState.UNREACHABLE.value:
                    waits = int(request.meta.get(WAITS_META, 0))
                    if waits < self.config.robots.unreachable_max_waits:
                        self._park(request, entry.expires_at, waits)
                    self.ctx.inc("refused/robots-unreachable")
                else:
                    self.ctx.inc("refused/robots")
                raise PolicyRefusal("robots", url, gathered)
            self._set_delay(host, entry)
        else:
            gathered.append(
                Signal(
                    kind="robots",
                    verdict="disabled",
                    source="--no-robots-i-know-what-i-am-doing",
                    detail="robots.txt not consulted",
                    at=self.ctx.now_iso(),
                )
            )
        gathered += await self._host_signals(origin, url, entry)
        request.meta[SIGNALS_META] = gathered
        if self.config.skip_fetch_when_opted_out:
            # The TDMRep file can be superseded by the page's headers or meta; everything else cannot.
            final = [s for s in gathered if not (s.kind == "tdmrep" and s.source == "tdmrep.json")]
            decision_sig = self.config.policy.decide(final, at=self.ctx.now_iso())
            if decision_sig.verdict == "deny":
                self.ctx.inc("refused/opt-out-before-fetch")
                raise PolicyRefusal("opt-out", url, gathered)
        return

    # ------------------------------------------------------------------------------- robots.txt
    def _set_delay(self, host: str, entry: RobotsEntry) -> None:
        crawl_delay = self.ctx.robots.crawl_delay(entry)
        delay = max(self.config.min_delay_s, crawl_delay or 0.0)
        if crawl_delay is not None and crawl_delay > self.config.max_crawl_delay_s:
            self.ctx.block_host(
                host,
                self.config.robots.cache_ttl_s,
                f"Crawl-delay {crawl_delay:g}s exceeds max_crawl_delay_s ({self.config.max_crawl_delay_s:g}s)",
            )
            self.ctx.inc("refused/crawl-delay-too-long")
            raise HostSkipped(f"{host}: Crawl-delay {crawl_delay:g}s is beyond our limit")
        if self.ctx.host_delay.get(host) != delay:
            self.ctx.host_delay[host] = delay
            apply_slot_delay(self.crawler, host, delay, self.config.per_host_concurrency)

    async def _robots_entry(self, origin: str) -> RobotsEntry:
        entry = self.ctx.robots.get(origin)
        if entry is not None:
            return entry

        async def fetch() -> RobotsEntry:
            outcome = await self.fetch(robots_url(origin), "robots", self.config.robots.max_bytes)
            recorded = self.ctx.robots.record(origin, outcome)
            self.ctx.inc(f"robots/{recorded.state.value}")
            return recorded

        result: RobotsEntry = await self._once(("robots", origin), fetch)
        return result

    async def _once(self, key: tuple[str, str], factory: Any) -> Any:
        """Run ``factory`` once per key at a time; concurrent callers share its result."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await factory()
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)

    def _park(self, request: Any, until: float, waits: int) -> None:
        delay = max(0.0, until - self.ctx.clock())
        again = request.replace(dont_filter=True)
        again.meta[WAITS_META] = waits + 1
        again.meta.pop(SIGNALS_META, None)
        self.parked += 1
        self.ctx.inc("robots/parked")
        log.info("parking %s for %.1fs until robots.txt is retried", request.url, delay)
        call_later(delay, self._unpark, again)
        raise RobotsWait(f"waiting {delay:.1f}s for robots.txt of {request.url}")

    def _unpark(self, request: Any) -> None:
        self.parked -= 1
        engine = self.crawler.engine
        if engine is None or engine.spider is None:
            return
        engine.crawl(request)

    # ------------------------------------------------------------------------------ fetching
    async def fetch(self, url: str, kind: str, cap: int) -> FetchOutcome:
        """GET ``url`` through the engine, following up to ``max_redirects`` redirects by hand."""
        chain: list[str] = []
        current = url
        max_redirects = self.config.robots.max_redirects
        for hop in range(max_redirects + 1):
            request = Request(
                current,
                callback=NO_CALLBACK,
                priority=1000,
                dont_filter=True,
                headers={"Accept-Encoding": "identity"},
                meta={
                    RESOURCE_META: kind,
                    CAP_META: cap,
                    "dont_redirect": True,
                    "dont_retry": True,
                    "handle_httpstatus_all": True,
                    "download_timeout": self.config.robots.timeout_s,
                    # No size cancel: bytes_received stops the body at the cap, however long it claims to be.
                    "download_maxsize": 0,
                    "download_warnsize": 0,
                },
            )
            try:
                response = await self.crawler.engine.download_async(request)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}".strip()[:300]
                log.info("fetching %s failed: %s", current, reason)
                return FetchOutcome(url, error=reason, redirects=tuple(chain))
            location = response.headers.get(b"Location")
            if response.status in REDIRECT_STATUSES and location:
                if hop == max_redirects:
                    return FetchOutcome(
                        url, http_status=response.status, redirects=tuple(chain), too_many_redirects=True
                    )
                current = urljoin(current, location.decode("latin-1"))
                chain.append(current)
                continue
            if self.ctx.warc is not None and kind == "robots":
                self.ctx.warc.write_response(response, fetched_at=self.ctx.now_iso())
            return FetchOutcome(
                url,
                http_status=response.status,
                body=response.body[: cap + 1],
                redirects=tuple(chain),
                truncated="download_stopped" in response.flags or len(response.body) > cap,
                retry_after_s=parse_retry_after(response.headers.get(b"Retry-After"), self.ctx.clock()),
            )
        return FetchOutcome(url, redirects=tuple(chain), too_many_redirects=True)  # pragma: no cover

    # ----------------------------------------------------------------------- host-level signals
    async def _host_signals(self, origin: str, url: str, entry: RobotsEntry | None) -> list[Signal]:
        out: list[Signal] = []
        if entry is not None and entry.rules is not None:
            out += robots_signals(
                url, entry.rules, entry.url, self.ctx.token, self.config.policy.ai_agents, iso(entry.fetched_at)
            )
        if self.config.fetch_tdmrep or self.config.fetch_ai_txt:
            res = await self._resources(origin, entry)
            out += tdmrep_file_signals(url, res.tdmrep)
            out += ai_txt_signals(url, res.ai_txt)
        return out

    async def _resources(self, origin: str, entry: RobotsEntry | None) -> HostResources:
        res = self.ctx.host_resources.get(origin)
        if res is not None and self.ctx.clock() < res.expires_at:
            return res

        async def load() -> HostResources:
            base = robots_url(origin).removesuffix("/robots.txt")
            tdm: TdmRepFile | None = None
            ai: AiTxt | None = None
            if self.config.fetch_tdmrep:
                body, at = await self._optional_file(f"{base}/.well-known/tdmrep.json", entry)
                if body is not None:
                    tdm = TdmRepFile.parse(f"{base}/.well-known/tdmrep.json", body, at)
                    self.ctx.inc("tdmrep/malformed" if tdm.error else "tdmrep/found")
            if self.config.fetch_ai_txt:
                body, at = await self._optional_file(f"{base}/ai.txt", entry)
                if body is not None:
                    ai = AiTxt.parse(f"{base}/ai.txt", body, self.ctx.token, at)
                    self.ctx.inc("ai-txt/found")
            loaded = HostResources(tdm, ai, self.ctx.clock() + self.config.robots.cache_ttl_s)
            self.ctx.host_resources[origin] = loaded
            return loaded

        result: HostResources = await self._once(("resources", origin), load)
        return result

    async def _optional_file(self, url: str, entry: RobotsEntry | None) -> tuple[bytes | None, str]:
        """Body of a 2xx response (None otherwise). Files robots.txt disallows are not fetched."""
        if entry is not None and not self.ctx.robots.decide(url, entry).allowed:
            return None, ""
        outcome = await self.fetch(url, "resource", 1024 * 1024)
        at = self.ctx.now_iso()
        if outcome.http_status is not None and 200 <= outcome.http_status < 300 and not outcome.truncated:
            return outcome.body, at
        return None, at
