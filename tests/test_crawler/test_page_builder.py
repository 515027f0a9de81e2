"""Building Page records from Scrapy responses (in process, no reactor) and the crawl's Scrapy settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

from crawler.context import CrawlContext
from crawler.crawl_config import CrawlConfig, CrawlConfigError
from crawler.page_builder import build_page, refused_page
from crawler.pipeline import PageSink
from crawler.robots_middleware import SIGNALS_META, PolicyRefusal
from crawler.run import scrapy_settings
from crawler.warc import iter_warc
from crawler.warc_writer import WarcRecorder
from streams.codec import decode_as
from streams.memory import InMemoryBus
from streams.records import Page, Signal

ROBOTS = Signal(kind="robots", verdict="allow", source="http://a.example/robots.txt", detail="state=parsed", at="t0")


def context(tmp_path: Path | None = None, **cfg: object) -> CrawlContext:
    config = CrawlConfig(contact_url="https://example.org/bot", **cfg)  # type: ignore[arg-type]
    bus = InMemoryBus(default_partitions=1)
    ctx = CrawlContext(config=config, sink=PageSink(bus.publisher(), "pages.raw"), clock=lambda: 1_700_000_000.0)
    ctx.job_id = "job-1"
    if tmp_path is not None:
        ctx.warc = WarcRecorder(tmp_path, ctx.job_id)
    return ctx


def response(url: str, body: bytes, headers: dict[str, object] | None = None) -> HtmlResponse:
    request = Request(url, meta={SIGNALS_META: [ROBOTS]})
    hdrs = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
    return HtmlResponse(url, body=body, headers=hdrs, request=request)


def test_kept_page_carries_signals_policy_and_lineage() -> None:
    ctx = context()
    page = build_page(
        response("http://a.example/p", b"<html><body>hello</body></html>", {"X-Robots-Tag": "noindex"}), ctx
    )
    assert page.body == b"<html><body>hello</body></html>" and page.truncated == ""
    assert page.headers["x-robots-tag"] == ["noindex"] and page.content_type.startswith("text/html")
    assert [s.kind for s in page.signals] == ["robots", "policy"] and page.signals[-1].verdict == "allow"
    assert page.lineage.source == "crawl" and page.lineage.job == "job-1"
    assert page.fetched_at == "2023-11-14T22:13:20.000Z"


def test_opted_out_page_has_its_body_withheld() -> None:
    ctx = context()
    page = build_page(response("http://a.example/p", b'<meta name="robots" content="noai"><p>secret</p>'), ctx)
    assert page.body == b"" and page.truncated == "withheld:opted-out"
    assert page.signals[-1].verdict == "deny" and "noai(meta:robots)" in page.signals[-1].detail
    assert ctx.stats["pages/opted-out"] == 1


def test_large_page_is_capped_and_marked() -> None:
    ctx = context(max_page_bytes=1000)
    page = build_page(response("http://a.example/p", b"<p>" + b"x" * 5000 + b"</p>"), ctx)
    assert len(page.body) == 1000 and page.truncated == "length"


def test_refused_page_is_a_bodyless_record_with_the_reason() -> None:
    ctx = context()
    deny = Signal(
        kind="robots", verdict="deny", source="http://a.example/robots.txt", detail="state=parsed; rule=disallow /"
    )
    page = refused_page(PolicyRefusal("robots", "http://a.example/x", [deny]), ctx)
    assert (page.status, page.body, page.truncated) == (0, b"", "not-fetched")
    assert page.signals[0] == deny and page.signals[-1].kind == "policy" and page.signals[-1].verdict == "deny"


def test_warc_records_the_kept_page_and_lineage_points_at_it(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    page = build_page(
        response("http://a.example/p", b"<html><body>archived</body></html>", {"Content-Encoding": "gzip"}), ctx
    )
    assert ctx.warc is not None
    ctx.warc.close()
    (replayed,) = [p for p in iter_warc(Path(page.lineage.warc_path or "")) if isinstance(p, Page)]
    assert replayed.url == page.url and replayed.body == page.body
    assert replayed.lineage.record_id == page.lineage.record_id and replayed.lineage.offset == page.lineage.offset


def test_pipeline_publishes_like_replay() -> None:
    bus = InMemoryBus(default_partitions=2)
    sink = PageSink(bus.publisher(), "pages.raw", batch=2)
    ctx = context()
    page = build_page(response("http://a.example/p", b"<p>x</p>"), ctx)
    sink.publish(page)
    sink.close()
    (msg,) = bus.read_all("pages.raw")
    from streams.ids import url_key

    assert msg.key == url_key(page.url) and decode_as(msg.value, Page) == page


def test_scrapy_settings_are_safe_and_polite() -> None:
    ctx = context()
    s = scrapy_settings(ctx, ctx.config.effective_user_agent("1.0"))
    assert s["REMOTE_CONTROL_ENABLED"] is False and s["TELNETCONSOLE_ENABLED"] is False
    assert s["ROBOTSTXT_OBEY"] is False  # ours replaces Scrapy's fail-open middleware
    assert s["DOWNLOADER_MIDDLEWARES"]["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] is None
    assert s["CONCURRENT_REQUESTS_PER_DOMAIN"] == 1 and s["DOWNLOAD_DELAY_JITTER"] == 0.0
    assert s["USER_AGENT"] == "Mozilla/5.0 (compatible; headrace/1.0; +https://example.org/bot)"


def test_user_agent_needs_a_contact_url_and_a_valid_token() -> None:
    with pytest.raises(CrawlConfigError):
        CrawlConfig().effective_user_agent()
    with pytest.raises(CrawlConfigError):
        CrawlConfig(contact_url="not a url").effective_user_agent()
    with pytest.raises(CrawlConfigError):
        CrawlConfig(user_agent_token="Bot42", contact_url="https://x.example").validate()
    with pytest.raises(CrawlConfigError):
        CrawlConfig(contact_url="https://x.example", user_agent="SomethingElse/1.0").effective_user_agent()
    ok = CrawlConfig(contact_url="mailto:ops@example.org", user_agent_token="Head_Race-bot")
    ok.validate()
    assert "Head_Race-bot/" in ok.effective_user_agent()
