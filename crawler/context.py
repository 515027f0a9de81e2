"""State shared by the Scrapy components of one crawl (middlewares, extension, spider, pipeline).

Scrapy builds its components from settings; the crawl passes this object in the ``HEADRACE_CONTEXT``
setting so every component reads the same robots cache, policy, guard and publisher — and tests can
build one with a fake clock.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from compliance.blocklist import Blocklist, EmptyBlocklist
from crawler.crawl_config import CrawlConfig
from crawler.optout import AiTxt, TdmRepFile
from crawler.robots import RobotsCache, iso
from crawler.ssrf import TargetGuard

if TYPE_CHECKING:
    from crawler.pipeline import PageSink
    from crawler.warc_writer import WarcRecorder

log = logging.getLogger(__name__)

CONTEXT_SETTING = "HEADRACE_CONTEXT"


@dataclass
class HostResources:
    """Per-origin opt-out files: ``/.well-known/tdmrep.json`` and ``/ai.txt`` (None = absent)."""

    tdmrep: TdmRepFile | None
    ai_txt: AiTxt | None
    expires_at: float


@dataclass
class HostBlock:
    until: float
    reason: str


@dataclass
class CrawlContext:
    config: CrawlConfig
    sink: PageSink
    obey_robots: bool = True
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    crawl_name: str = ""
    blocklist: Blocklist = field(default_factory=EmptyBlocklist)
    warc: WarcRecorder | None = None
    clock: Callable[[], float] = time.time
    guard: TargetGuard = field(init=False)
    robots: RobotsCache = field(init=False)
    user_agent: str = ""
    stats: Counter[str] = field(default_factory=Counter)
    host_resources: dict[str, HostResources] = field(default_factory=dict)
    host_delay: dict[str, float] = field(default_factory=dict)
    host_blocks: dict[str, HostBlock] = field(default_factory=dict)
    seed_hosts: set[str] = field(default_factory=set)
    started_at: float = 0.0

    def __post_init__(self) -> None:
        self.guard = TargetGuard(self.config.ssrf)
        self.robots = RobotsCache(self.config.robots, self.config.user_agent_token, clock=self.clock)
        self.started_at = self.clock()

    def __deepcopy__(self, memo: dict[int, Any]) -> CrawlContext:
        # Scrapy deep-copies its settings; the context is a shared handle, not data.
        return self

    def __copy__(self) -> CrawlContext:
        return self

    @property
    def token(self) -> str:
        return self.config.user_agent_token

    def now_iso(self) -> str:
        return iso(self.clock())

    def delay_for(self, host: str) -> float:
        return self.host_delay.get(host, self.config.min_delay_s)

    def block_host(self, host: str, seconds: float, reason: str) -> None:
        until = self.clock() + seconds
        prev = self.host_blocks.get(host)
        if prev is None or prev.until < until:
            self.host_blocks[host] = HostBlock(until, reason)
            log.warning("not crawling %s for %.0fs: %s", host, seconds, reason)

    def host_blocked(self, host: str) -> HostBlock | None:
        block = self.host_blocks.get(host)
        if block is None:
            return None
        if self.clock() >= block.until:
            del self.host_blocks[host]
            return None
        return block

    def inc(self, key: str, n: int = 1) -> None:
        self.stats[key] += n

    def robots_report(self) -> list[dict[str, Any]]:
        return [
            {
                "origin": e.origin,
                "url": e.url,
                "state": e.state.value,
                "status": e.http_status,
                "fetched_at": iso(e.fetched_at),
                "detail": e.detail,
            }
            for e in self.robots
        ]
