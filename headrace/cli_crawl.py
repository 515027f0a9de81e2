"""``headrace crawl``: a polite, RFC 9309-correct, opt-out aware live crawl.

Pages go to Kafka (``--bootstrap``: the ``pages.raw`` topic, exactly as ``headrace replay`` publishes)
or through the whole pipeline in this process into shards (``--out``). See docs/crawler.md.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from headrace.cli import EXIT_FATAL, EXIT_USAGE, ConfigOpt, JsonLogsOpt, VerboseOpt, _config, app, console
from headrace.logs import setup_logging

log = logging.getLogger("headrace.crawl")

SEED_GROUP = "headrace-crawl-seeds"


class CrawlProgress:
    """One live line: pages published (kept / opted out / refused), and documents in embedded mode."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.counts: Any = None
        self.docs: Any = None
        self._live: Live | None = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> CrawlProgress:
        if self.enabled:
            self._live = Live(Text(""), console=Console(stderr=True), refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def refresh(self) -> None:
        if self._live is None or self.counts is None:
            return
        c = self.counts
        line = (
            f"pages {c['published/fetched']:,} (kept {c['pages/kept']:,}, opted out {c['pages/opted-out']:,})  "
            f"refused before fetch {c['published/refused']:,}  {time.perf_counter() - self._t0:,.0f}s"
        )
        if self.docs is not None:
            line += f"  docs {self.docs.get('shards/docs'):,}"
        self._live.update(Text(line))

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)


def kafka_seed_batches(bus: Any, topic: str, idle_s: float, batch: int = 500) -> Iterator[list[str]]:
    """URLs from a Kafka topic (one URL per message, UTF-8), until the topic is idle for ``idle_s``.

    Offsets are committed when the next batch is requested, i.e. after the spider scheduled the
    previous one (at-least-once: a crash re-reads the last batch; requests are de-duplicated by URL).
    """
    from streams.bus import TopicPartition

    sub = bus.subscriber(SEED_GROUP, [topic])
    pending: dict[TopicPartition, int] = {}
    idle_since = time.monotonic()
    try:
        while True:
            msgs = sub.poll(batch, timeout=1.0)
            if pending:
                sub.commit(pending)
                pending = {}
            if not msgs:
                if time.monotonic() - idle_since >= idle_s:
                    return
                continue
            idle_since = time.monotonic()
            urls: list[str] = []
            for m in msgs:
                pending[m.tp] = max(pending.get(m.tp, 0), m.offset + 1)
                try:
                    urls.append(bytes(m.value).decode("utf-8").strip())
                except UnicodeDecodeError:
                    log.warning("seed message %s@%d is not UTF-8; skipped", m.tp, m.offset)
            from crawler.seeds import clean_seeds

            yield list(clean_seeds(urls))
    finally:
        if pending:
            sub.commit(pending)
        sub.close()


@app.command()
def crawl(
    seeds: Annotated[Path | None, typer.Option("--seeds", help="File of seed URLs, one per line.")] = None,
    seeds_topic: Annotated[
        str | None, typer.Option("--seeds-topic", help="Kafka topic of seed URLs (needs --bootstrap).")
    ] = None,
    sitemap: Annotated[
        list[str] | None, typer.Option("--sitemap", help="Sitemap (or robots.txt) URL; repeatable.")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option("--bootstrap", "-b", help="Publish pages to this Kafka cluster (HOST:PORT).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run the whole pipeline here instead (shards/, ledger/).")
    ] = None,
    config: ConfigOpt = None,
    contact_url: Annotated[
        str | None, typer.Option(help="URL (or mailto:) in the User-Agent where site owners reach you.")
    ] = None,
    allow_private_targets: Annotated[
        bool, typer.Option("--allow-private-targets", help="Allow private, loopback and link-local targets.")
    ] = False,
    allow_network: Annotated[
        list[str] | None, typer.Option(help="CIDR to allow despite being private; repeatable.")
    ] = None,
    no_robots: Annotated[
        bool,
        typer.Option(
            "--no-robots-i-know-what-i-am-doing",
            help="Do not consult robots.txt (logged, and recorded on every page). Only for sites you own.",
        ),
    ] = False,
    max_pages: Annotated[int | None, typer.Option(help="Stop after this many pages (0 = no limit).")] = None,
    max_depth: Annotated[int | None, typer.Option(help="Link hops from a seed (0 = no limit).")] = None,
    allow_domain: Annotated[list[str] | None, typer.Option(help="Only crawl these domains; repeatable.")] = None,
    deny_domain: Annotated[list[str] | None, typer.Option(help="Never crawl these domains; repeatable.")] = None,
    warc_dir: Annotated[Path | None, typer.Option(help="Also write fetched responses to WARC files here.")] = None,
    job_id: Annotated[str | None, typer.Option(help="Crawl job id recorded in every page's lineage.")] = None,
    summary_json: Annotated[Path | None, typer.Option(help="Also write the summary as JSON here.")] = None,
    create_topics: Annotated[bool, typer.Option(help="Create missing topics first (Kafka mode).")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress line.")] = True,
    verbose: VerboseOpt = 0,
    json_logs: JsonLogsOpt = False,
) -> None:
    """Crawl seed URLs and/or sitemaps politely (robots.txt, opt-out signals) into Kafka or shards."""
    setup_logging(verbose, json_logs)
    if (bootstrap is None) == (out is None):
        console.print("[red]choose exactly one of --bootstrap (publish to Kafka) and --out (embedded run)[/red]")
        raise typer.Exit(EXIT_USAGE)
    if seeds is None and seeds_topic is None and not sitemap:
        console.print("[red]give --seeds FILE, --seeds-topic TOPIC or --sitemap URL[/red]")
        raise typer.Exit(EXIT_USAGE)
    if seeds_topic is not None and bootstrap is None:
        console.print("[red]--seeds-topic reads Kafka: it needs --bootstrap[/red]")
        raise typer.Exit(EXIT_USAGE)

    crawl_overrides: dict[str, Any] = {}
    for key, value in (
        ("contact_url", contact_url),
        ("max_pages", max_pages),
        ("max_depth", max_depth),
        ("allow_domains", allow_domain),
        ("deny_domains", deny_domain),
        ("warc_dir", str(warc_dir) if warc_dir else None),
    ):
        if value is not None:
            crawl_overrides[key] = value
    ssrf: dict[str, Any] = {}
    if allow_private_targets:
        ssrf["allow_private"] = True
    if allow_network:
        ssrf["allow_networks"] = allow_network
    if ssrf:
        crawl_overrides["ssrf"] = ssrf
    overrides: dict[str, Any] = {"crawl": crawl_overrides} if crawl_overrides else {}
    if bootstrap:
        overrides["kafka"] = {"bootstrap": bootstrap}
    cfg = _config(config, overrides)

    from crawler.crawl_config import CrawlConfigError
    from crawler.pipeline import PageSink
    from crawler.run import run_crawl
    from crawler.seeds import SeedError, file_seeds
    from headrace.pipeline import headrace_version, topics_for

    try:
        cfg.crawl.validate()
        cfg.crawl.effective_user_agent()
    except CrawlConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    try:
        seed_batches = file_seeds(seeds) if seeds is not None else None
    except SeedError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_USAGE) from exc

    topics = topics_for(cfg)
    bar = CrawlProgress(enabled=progress and sys.stderr.isatty())
    summary: dict[str, Any] = {}
    if out is not None:
        from headrace.embedded import EmbeddedPipeline

        out.mkdir(parents=True, exist_ok=True)
        pipeline = EmbeddedPipeline(cfg, out)
        bar.docs = pipeline.stats

        def drained() -> None:
            pipeline.drain()
            bar.refresh()

        sink = PageSink(pipeline.bus.publisher(), pipeline.topics.pages_raw, cfg.crawl.publish_batch, on_batch=drained)
        with bar:
            try:
                report = run_crawl(
                    cfg.crawl,
                    sink,
                    seed_batches,
                    sitemaps=sitemap or (),
                    obey_robots=not no_robots,
                    job_id=job_id,
                    version=headrace_version(),
                    progress=bar,
                    blocklist=pipeline.blocklist,  # the corpus's takedowns: never fetched again
                )
                pipeline.drain()
                pipeline.sink.flush_all()
                pipeline.drain()
            finally:
                pipeline.close()
        drops = {k: v for k, v in pipeline.stats.counts.items() if "/drop/" in k}
        summary = {
            "crawl": report.to_dict(),
            "pipeline": {
                "out_dir": str(out),
                "documents": pipeline.stats.get("shards/docs"),
                "tokens": pipeline.stats.get("shards/tokens"),
                "shards_sealed": pipeline.stats.get("shards/sealed"),
                "drops": dict(sorted(drops.items())),
                "ledger": str(out / "ledger" / "rejected.jsonl"),
            },
        }
    else:
        from streams.kafka import KafkaBus

        bus = KafkaBus(cfg.kafka)
        try:
            if create_topics:
                bus.ensure_topics(topics.specs(cfg.bus.partitions, cfg.kafka.min_insync_replicas))
            if seeds_topic is not None:
                seed_batches = kafka_seed_batches(bus, seeds_topic, cfg.crawl.seeds_idle_s)
            from compliance.blocklist_store import BlocklistFollower

            follower = BlocklistFollower(bus, topics.blocklist).start()
            publisher = bus.publisher()
            sink = PageSink(publisher, topics.pages_raw, cfg.crawl.publish_batch, on_batch=bar.refresh)
            try:
                with bar:
                    report = run_crawl(
                        cfg.crawl,
                        sink,
                        seed_batches,
                        sitemaps=sitemap or (),
                        obey_robots=not no_robots,
                        job_id=job_id,
                        version=headrace_version(),
                        progress=bar,
                        blocklist=follower.ruleset,  # takedowns published while crawling apply at once
                    )
                publisher.close()
            finally:
                follower.close()
        finally:
            bus.close()
        summary = {"crawl": report.to_dict(), "topic": topics.pages_raw}
    print_crawl_summary(summary, Console())
    if summary_json:
        summary_json.write_text(json.dumps(summary, indent=2, default=str))
    if report.finish_reason not in ("finished", "max_pages", "shutdown"):
        raise typer.Exit(EXIT_FATAL)


def print_crawl_summary(summary: dict[str, Any], con: Console) -> None:
    crawl = summary["crawl"]
    counts = crawl["counts"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    grid.add_row("job", crawl["job_id"])
    grid.add_row("pages fetched", f"{counts.get('published/fetched', 0):,}")
    grid.add_row("  kept", f"{counts.get('pages/kept', 0):,}")
    grid.add_row("  opted out (body withheld)", f"{counts.get('pages/opted-out', 0):,}")
    grid.add_row("refused before fetch (recorded)", f"{counts.get('published/refused', 0):,}")
    grid.add_row("robots.txt files", f"{len(crawl['robots']):,}")
    grid.add_row("finish", crawl["finish_reason"])
    grid.add_row("elapsed", f"{crawl['elapsed_s']:,.1f} s")
    if "pipeline" in summary:
        p = summary["pipeline"]
        grid.add_row("documents written", f"{p['documents']:,}")
        grid.add_row("tokens", f"{p['tokens']:,}")
        grid.add_row("output", p["out_dir"])
    else:
        grid.add_row("published to", summary["topic"])
    con.print(grid)
    other = {k: v for k, v in counts.items() if k.split("/")[0] in ("refused", "skipped", "errors", "http", "robots")}
    if other:
        con.print("[dim]" + ", ".join(f"{k} {v:,}" for k, v in sorted(other.items())) + "[/dim]")
