"""Spiders: sitemap discovery, domain allow/deny, depth and page limits, and replayable WARC output."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_crawler.sitefixture import Route, Site, run_crawl_subprocess

from crawler.warc import iter_warc
from streams.records import Page

pytestmark = pytest.mark.slow

LOOPBACK = {"ssrf": {"allow_private": True}, "fetch_tdmrep": False, "fetch_ai_txt": False}


def urlset(urls: list[str]) -> bytes:
    items = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</urlset>'.encode()


def test_sitemap_spider_via_robots_txt(tmp_path: Path) -> None:
    with Site() as site:
        index = (
            '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{site.url('/sitemap-1.xml')}</loc></sitemap></sitemapindex>"
        ).encode()
        robots = f"User-agent: *\nDisallow: /s/2\nSitemap: {site.url('/sitemap-index.xml')}\n".encode()
        site.add("/robots.txt", Route(body=robots, content_type="text/plain"))
        site.add("/sitemap-index.xml", Route(body=index, content_type="application/xml"))
        site.add(
            "/sitemap-1.xml",
            Route(body=urlset([site.url(f"/s/{i}") for i in range(1, 5)]), content_type="application/xml"),
        )
        for i in range(1, 5):
            site.page(f"/s/{i}", links=["/not-in-sitemap"])
        site.page("/not-in-sitemap")
        config = {**LOOPBACK, "follow_links": False}
        result = run_crawl_subprocess(tmp_path, [], config, sitemaps=[site.url("/robots.txt")])
        urls = {p["url"]: p for p in result["pages"]}
        assert {site.url(f"/s/{i}") for i in (1, 3, 4)} <= set(urls)
        assert urls[site.url("/s/2")]["status"] == 0  # in the sitemap, disallowed: recorded, not fetched
        assert "/s/2" not in site.paths() and "/not-in-sitemap" not in site.paths()
        assert result["report"]["counts"]["sitemap/pages"] == 4


def test_depth_domains_and_blocked_hosts(tmp_path: Path) -> None:
    with Site() as site, Site() as other:
        site.page("/", links=["/d1", f"http://localhost:{other.port}/x", "mailto:a@b.example"])
        site.page("/d1", links=["/d2"])
        site.page("/d2", links=["/d3"])
        site.page("/d3")
        other.page("/x")
        other.page("/seed")
        config = {**LOOPBACK, "max_depth": 2, "deny_domains": ["localhost"]}
        seeds = [site.url("/"), f"http://localhost:{other.port}/seed"]
        result = run_crawl_subprocess(tmp_path, seeds, config)
        assert [p for p in site.paths() if p != "/robots.txt"] == ["/", "/d1", "/d2"]  # depth 2 stops /d3
        assert other.paths() == []  # denied domain, as a seed and as a link
        assert {p["url"] for p in result["pages"]} == {site.url(p) for p in ("/", "/d1", "/d2")}
        counts = result["report"]["counts"]
        assert counts["skipped/denied-domain"] >= 2


def test_stay_on_seed_hosts_and_page_limit(tmp_path: Path) -> None:
    with Site() as site, Site() as other:
        site.page("/", links=[f"/p{i}" for i in range(10)] + [f"http://localhost:{other.port}/x"])
        for i in range(10):
            site.page(f"/p{i}")
        other.page("/x")
        result = run_crawl_subprocess(tmp_path, [site.url("/")], {**LOOPBACK, "max_pages": 4})
        assert len(result["pages"]) == 4 and result["report"]["finish_reason"] == "max_pages"
        assert other.paths() == []
        assert result["report"]["counts"]["skipped/off-seed-host"] >= 1


def test_warc_output_replays_to_the_same_pages(tmp_path: Path) -> None:
    with Site() as site:
        site.add("/robots.txt", Route(body=b"User-agent: *\nAllow: /\n", content_type="text/plain"))
        site.page("/", links=["/a", "/b"])
        site.page("/a")
        site.page("/b", head='<meta name="robots" content="noai">')
        warc_dir = tmp_path / "warc"
        result = run_crawl_subprocess(tmp_path, [site.url("/")], {**LOOPBACK, "warc_dir": str(warc_dir)})
        published = {p["url"]: p for p in result["pages"]}
        files = sorted(warc_dir.glob("*.warc.gz"))
        assert len(files) == 1
        replayed = [item for item in iter_warc(files[0]) if isinstance(item, Page)]
        assert {p.url for p in replayed} == {site.url("/"), site.url("/a")}  # opted-out /b not archived
        for page in replayed:
            crawled = published[page.url]
            assert page.body.decode() == crawled["body"]
            assert crawled["lineage"]["warc_path"] == str(files[0])
            assert crawled["lineage"]["record_id"] == page.lineage.record_id
            assert crawled["lineage"]["offset"] == page.lineage.offset
        assert published[site.url("/b")]["truncated"] == "withheld:opted-out"
        assert "warc_path" not in published[site.url("/b")]["lineage"]
