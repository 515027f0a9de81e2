"""End to end: crawl a small local site -> real Kafka -> process / dedup / shards / ledger -> shards whose
per-document lineage shows the robots and opt-out decisions; opted-out pages only in the ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from test_crawler.sitefixture import Route, Site

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def headrace(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_crawl_to_kafka_to_shards_with_lineage(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["HEADRACE_BUS__TOPIC_PREFIX"] = f"crawl-{uuid.uuid4().hex[:8]}."
    env["HEADRACE_BUS__PARTITIONS"] = "2"
    env["HEADRACE_CRAWL__MIN_DELAY_S"] = "0"
    env["HEADRACE_CRAWL__CONTACT_URL"] = "https://example.org/crawler"
    # The fixture's pages are a few sentences: this test is about lineage, not the quality filters.
    env["HEADRACE_QUALITY__ENABLED"] = "false"
    with Site() as site:
        site.add(
            "/robots.txt",
            Route(
                body=b"User-agent: *\nDisallow: /private/\n\nUser-agent: GPTBot\nDisallow: /gpt/\n",
                content_type="text/plain",
            ),
        )
        site.page("/", links=["/a", "/b", "/noai", "/tdm", "/private/x", "/gpt/x"])
        site.page("/a")
        site.page("/b")
        site.page("/noai", head='<meta name="robots" content="noai">')
        site.page("/tdm", headers=[("tdm-reservation", "1")])
        site.page("/private/x")
        site.page("/gpt/x")
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(site.url("/") + "\n")
        crawl = headrace(
            "crawl", "--seeds", str(seeds), "--bootstrap", kafka_bootstrap, "--allow-private-targets",
            "--job-id", "e2e-job", "--no-progress", "--summary-json", str(tmp_path / "crawl.json"), env=env,
        )  # fmt: skip
        assert crawl.returncode == 0, crawl.stderr[-4000:]
        assert "/private/x" not in site.paths() and "/gpt/x" not in site.paths()
    summary = json.loads((tmp_path / "crawl.json").read_text())
    assert summary["crawl"]["pages_published"] == 7  # 5 fetched + 2 refused before fetching

    for group, extra in (
        ("process", []),
        ("dedup", ["--out", str(tmp_path / "dedup-index")]),  # not ./dedup-index, shared by every test
        ("shards", ["--out", str(tmp_path / "shards")]),
        ("ledger", ["--out", str(tmp_path / "ledger")]),
    ):
        res = headrace("consume", group, "--bootstrap", kafka_bootstrap, "--idle-exit", "6", *extra, env=env)
        assert res.returncode == 0, f"{group}: {res.stderr[-3000:]}"

    dump = headrace("shards", "dump", str(tmp_path / "shards"), env=env)
    assert dump.returncode == 0, dump.stderr
    docs = {json.loads(line)["url"]: json.loads(line) for line in dump.stdout.splitlines()}
    assert set(docs) == {site.url(p) for p in ("/", "/a", "/b")}
    for doc in docs.values():
        assert doc["lineage"] == {"source": "crawl", "job": "e2e-job"}
        by_kind = {s["kind"]: s for s in doc["signals"]}
        robots = by_kind["robots"]
        assert robots["verdict"] == "allow" and robots["source"] == site.url("/robots.txt")
        assert "status=200" in robots["detail"] and robots["at"].endswith("Z")
        assert by_kind["ai-robots"]["verdict"] == "allow" and "agent=GPTBot" in by_kind["ai-robots"]["detail"]
        assert by_kind["policy"]["verdict"] == "allow"
        assert [s["kind"] for s in doc["signals"]][-1] == "policy"

    ledger = [json.loads(line) for line in (tmp_path / "ledger" / "rejected.jsonl").read_text().splitlines()]
    reasons = {e["url"]: e["detail"] for e in ledger if e["stage"] == "policy"}
    assert "noai(meta:robots)" in reasons[site.url("/noai")]
    assert "tdmrep(header:tdm-reservation)" in reasons[site.url("/tdm")]
    assert "robots(" in reasons[site.url("/private/x")]
    assert "ai-robots(agent=GPTBot)" in reasons[site.url("/gpt/x")]
    assert set(reasons) == {site.url(p) for p in ("/noai", "/tdm", "/private/x", "/gpt/x")}


def test_seeds_from_a_kafka_topic(kafka_bootstrap: str, tmp_path: Path) -> None:
    from streams.kafka import KafkaBus, KafkaSettings
    from streams.topics import TopicSpec

    env = dict(os.environ)
    prefix = f"seeds-{uuid.uuid4().hex[:8]}."
    env["HEADRACE_BUS__TOPIC_PREFIX"] = prefix
    env["HEADRACE_CRAWL__MIN_DELAY_S"] = "0"
    env["HEADRACE_CRAWL__SEEDS_IDLE_S"] = "3"
    env["HEADRACE_CRAWL__CONTACT_URL"] = "https://example.org/crawler"
    seed_topic = f"{prefix}crawl.seeds"
    with Site() as site:
        for p in ("/s1", "/s2", "/s3"):
            site.page(p)
        bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap))
        try:
            bus.ensure_topics([TopicSpec(seed_topic, 1)])
            pub = bus.publisher()
            for p in ("/s1", "/s2", "/s3"):
                pub.publish(seed_topic, site.url(p).encode())
            pub.publish(seed_topic, b"not a url")
            pub.flush()
            pub.close()
        finally:
            bus.close()
        crawl = headrace(
            "crawl", "--seeds-topic", seed_topic, "--bootstrap", kafka_bootstrap, "--allow-private-targets",
            "--no-progress", "--summary-json", str(tmp_path / "crawl.json"), env=env,
        )  # fmt: skip
        assert crawl.returncode == 0, crawl.stderr[-4000:]
        assert sorted(p for p in site.paths() if p.startswith("/s")) == ["/s1", "/s2", "/s3"]
    summary = json.loads((tmp_path / "crawl.json").read_text())
    assert summary["crawl"]["pages_published"] == 3 and summary["crawl"]["counts"]["seeds"] == 3
