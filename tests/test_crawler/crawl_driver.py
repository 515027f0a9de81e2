"""Run one crawl in this process and write its report and published pages as JSON (test helper).

Usage: ``python crawl_driver.py SPEC.json``; SPEC has ``seeds``, ``sitemaps``, ``config`` (a
``[crawl]`` table), ``obey_robots`` and ``out``.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
from pathlib import Path

import msgspec

from crawler.crawl_config import CrawlConfig
from crawler.pipeline import PageSink
from crawler.run import run_crawl
from crawler.seeds import list_seeds
from streams.codec import decode_as
from streams.memory import InMemoryBus
from streams.records import Page


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = msgspec.convert(spec["config"], CrawlConfig, strict=False)
    # Measure growth from a process that already holds Scrapy and Twisted, so it counts the crawl's own
    # allocations (e.g. a robots.txt body), not library start-up.
    import scrapy.crawler  # noqa: F401

    import crawler.spiders.sitemap  # noqa: F401

    rss_start_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bus = InMemoryBus(default_partitions=1)
    sink = PageSink(bus.publisher(), "pages.raw", batch=8)
    report = run_crawl(
        config,
        sink,
        list_seeds(spec["seeds"]),
        sitemaps=spec.get("sitemaps") or (),
        obey_robots=spec.get("obey_robots", True),
        job_id="testjob",
    )
    rss_end_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pages = []
    for msg in bus.read_all("pages.raw"):
        page = decode_as(msg.value, Page)
        data = msgspec.to_builtins(page)
        data["body_len"] = len(page.body)
        data["body"] = page.body[:2000].decode("utf-8", "replace")
        pages.append(data)
    result = {
        "report": report.to_dict(),
        "pages": pages,
        "rss_growth_kib": rss_end_kib - rss_start_kib,
    }
    Path(spec["out"]).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
