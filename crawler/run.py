"""Running one crawl: Scrapy settings built from :class:`CrawlConfig`, the crawler process, the report.

Scrapy runs on Twisted, whose reactor cannot be restarted: :func:`run_crawl` runs once per process (the
CLI is one process per crawl; tests start a subprocess per crawl).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compliance.blocklist import Blocklist, EmptyBlocklist
from crawler.context import CONTEXT_SETTING, CrawlContext
from crawler.crawl_config import CrawlConfig
from crawler.pipeline import PageSink
from crawler.seeds import SeedBatches

log = logging.getLogger(__name__)

ROBOTS_DISABLED_WARNING = (
    "robots.txt checking is DISABLED (--no-robots-i-know-what-i-am-doing): pages are fetched without "
    "consulting robots.txt and every page records robots verdict 'disabled'"
)


class _QuietScrapy(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("scrapy", "twisted", "py.warnings")):
            return record.levelno >= self.level
        return True


@dataclass
class CrawlReport:
    job_id: str
    elapsed_s: float = 0.0
    pages_published: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    robots: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = ""
    scrapy_stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "elapsed_s": round(self.elapsed_s, 3),
            "pages_published": self.pages_published,
            "finish_reason": self.finish_reason,
            "counts": dict(sorted(self.counts.items())),
            "robots": self.robots,
            "scrapy": {k: v for k, v in sorted(self.scrapy_stats.items()) if isinstance(v, int | float | str)},
        }


def scrapy_settings(ctx: CrawlContext, user_agent: str) -> dict[str, Any]:
    config = ctx.config
    return {
        CONTEXT_SETTING: ctx,
        "BOT_NAME": config.user_agent_token,
        "USER_AGENT": user_agent,
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        # Safety: no remote code execution endpoint, no telnet console, no cookies carried between sites.
        "REMOTE_CONTROL_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        # Robots: Scrapy's middleware fails open on errors and caches forever; ours replaces it.
        "ROBOTSTXT_OBEY": False,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
            "crawler.ssrf_middleware.SsrfMiddleware": 40,
            "crawler.robots_middleware.RobotsMiddleware": 100,
        },
        "TWISTED_DNS_RESOLVER": "crawler.ssrf_middleware.GuardedResolver",
        "EXTENSIONS": {"crawler.politeness.PolitenessExtension": 0},
        "ITEM_PIPELINES": {"crawler.pipeline.PublishPipeline": 100},
        # Politeness: one request per host at a time, a fixed (not randomised) delay.
        "CONCURRENT_REQUESTS": config.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.per_host_concurrency,
        "DOWNLOAD_DELAY": config.min_delay_s,
        "DOWNLOAD_DELAY_JITTER": 0.0,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_TIMEOUT": config.download_timeout_s,
        "DOWNLOAD_MAXSIZE": config.max_download_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "RETRY_TIMES": config.retries,
        "DEPTH_LIMIT": 0,  # our own depth meta (sitemap entries are depth 0)
        "REDIRECT_MAX_TIMES": 10,
        "LOG_LEVEL": "INFO",
        "LOG_INSTALL_ROOT_HANDLER": False,
        "STATS_DUMP": False,
        "LOGSTATS_INTERVAL": 60.0,
    }


def run_crawl(
    config: CrawlConfig,
    sink: PageSink,
    seeds: SeedBatches | None = None,
    *,
    sitemaps: Sequence[str] = (),
    obey_robots: bool = True,
    job_id: str | None = None,
    crawl_name: str = "",
    blocklist: Blocklist | None = None,
    version: str = "0",
    warc_dir: Path | None = None,
    progress: Any | None = None,
    clock: Callable[[], float] | None = None,
) -> CrawlReport:
    """Crawl until the seeds and sitemaps are exhausted (or a limit is hit), publishing into ``sink``."""
    from scrapy.crawler import CrawlerProcess

    from crawler.spiders.seed import SeedSpider
    from crawler.spiders.sitemap import SitemapSpider
    from crawler.warc_writer import WarcRecorder

    config.validate()
    user_agent = config.effective_user_agent(version)
    ctx = CrawlContext(
        config=config, sink=sink, obey_robots=obey_robots, crawl_name=crawl_name, clock=clock or time.time
    )
    if progress is not None:
        progress.counts = ctx.stats  # a live view for progress displays
    if job_id:
        ctx.job_id = job_id
    ctx.blocklist = blocklist if blocklist is not None else EmptyBlocklist()
    ctx.user_agent = user_agent
    out_dir = warc_dir or (Path(config.warc_dir) if config.warc_dir else None)
    if out_dir is not None:
        ctx.warc = WarcRecorder(out_dir, ctx.job_id, config.warc_max_bytes, software=f"headrace/{version}")
    if not obey_robots:
        log.warning(ROBOTS_DISABLED_WARNING)
    if config.ssrf.allow_private:
        log.warning("private, loopback and link-local targets are ALLOWED (--allow-private-targets)")
    log.info("crawl %s starting as %r", ctx.job_id, user_agent)

    # Scrapy configures its loggers to DEBUG and logs every scraped item (with its body): filter its
    # records on our handlers at INFO, or at our own level when that is quieter.
    quiet = _QuietScrapy(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
    handlers = list(logging.getLogger().handlers)
    for h in handlers:
        h.addFilter(quiet)
    process = CrawlerProcess(scrapy_settings(ctx, user_agent))
    spider_kwargs: dict[str, Any] = {"ctx": ctx, "seeds": seeds}
    if sitemaps:
        crawler = process.create_crawler(SitemapSpider)
        spider_kwargs["sitemaps"] = list(sitemaps)
    else:
        crawler = process.create_crawler(SeedSpider)
    process.crawl(crawler, **spider_kwargs)
    t0 = time.perf_counter()
    try:
        process.start()
    finally:
        sink.close()
        if ctx.warc is not None:
            ctx.warc.close()
        for h in handlers:
            h.removeFilter(quiet)
    stats = crawler.stats.get_stats() if crawler.stats is not None else {}
    counts: Counter[str] = Counter(ctx.stats)
    return CrawlReport(
        job_id=ctx.job_id,
        elapsed_s=time.perf_counter() - t0,
        pages_published=sink.published,
        counts=dict(counts),
        robots=ctx.robots_report(),
        finish_reason=str(stats.get("finish_reason", "")),
        scrapy_stats=stats,
    )
