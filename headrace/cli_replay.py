"""``headrace replay``: publish the HTML pages of web archives to Kafka, resumable and shardable."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from headrace.cli import (
    EXIT_FATAL,
    EXIT_PARTIAL,
    EXIT_USAGE,
    BootstrapOpt,
    ConfigOpt,
    JsonLogsOpt,
    VerboseOpt,
    _bus_overrides,
    _config,
    _stop_event,
    app,
    console,
)
from headrace.logs import setup_logging

log = logging.getLogger("headrace.replay")


def transactional_id(base: str, topic_prefix: str, index: int, count: int) -> str:
    """Stable per worker: a restarted worker fences its dead predecessor; workers never fence each other."""
    return f"{base}-{topic_prefix}{index}-of-{count}"


@app.command()
def replay(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="WARC/ARC files (.warc, .warc.gz, .arc, .arc.gz), folders, globs, http(s):// or "
            "s3:// URLs, or warc.paths(.gz) manifests."
        ),
    ] = None,
    from_paths: Annotated[
        list[str] | None,
        typer.Option("--from-paths", help="A warc.paths(.gz) manifest (file or URL); repeatable."),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(help="Base URL or folder that relative manifest entries are joined to (config replay.prefix)."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="I/N: read only every N-th input starting at I (0-based), e.g. $(JOB_COMPLETION_INDEX)/8. "
            "Default: JOB_COMPLETION_INDEX/HEADRACE_REPLAY_SHARDS when both are set, else 0/1."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue each input from its last committed checkpoint (replay.progress).")
    ] = True,
    bootstrap: BootstrapOpt = "127.0.0.1:9092",
    config: ConfigOpt = None,
    create_topics: Annotated[bool, typer.Option(help="Create missing topics first.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on a terminal).")] = True,
    summary_json: Annotated[Path | None, typer.Option(help="Also write the summary as JSON here.")] = None,
    verbose: VerboseOpt = 0,
    json_logs: JsonLogsOpt = False,
) -> None:
    """Publish the HTML pages of web archives to Kafka (pages.raw), exactly once across restarts.

    Pages and each input's checkpoint are committed in one Kafka transaction; a restarted replay
    resumes where the last commit ended. Damaged records go to the dlq topic with file, offset and
    reason. Prints a JSON summary on stdout.
    """
    setup_logging(verbose, json_logs)
    overrides: dict[str, Any] = _bus_overrides(bootstrap)
    if prefix is not None:
        overrides["replay"] = {"prefix": prefix}
    cfg = _config(config, overrides)

    from compliance.blocklist_store import BlocklistFollower, BlocklistStoreError
    from crawler.checkpoint import CheckpointError, load_checkpoints
    from crawler.replay import Replayer
    from crawler.sources import InputError, env_shard, expand_inputs, parse_shard, select_shard
    from headrace.pipeline import topics_for
    from headrace.replay_progress import ReplayProgress
    from streams.bus import BusError
    from streams.kafka import KafkaBus
    from streams.stats import Stats

    if not inputs and not from_paths:
        console.print("[red]nothing to replay:[/red] give INPUT... or --from-paths")
        raise typer.Exit(EXIT_USAGE)
    try:
        index, count = parse_shard(shard or env_shard() or "0/1")
        refs = expand_inputs(inputs or [], cfg.replay, from_paths or [])
    except InputError as exc:
        console.print(f"[red]input error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    mine = select_shard(refs, index, count)
    log.info("shard %d/%d: %d of %d inputs", index, count, len(mine), len(refs))

    topics = topics_for(cfg)
    bus = KafkaBus(cfg.kafka)
    stop = _stop_event()
    stats = Stats()
    worker = transactional_id(cfg.replay.transactional_id, cfg.bus.topic_prefix, index, count)
    try:
        if create_topics:
            bus.ensure_topics(topics.specs(cfg.bus.partitions, cfg.kafka.min_insync_replicas))
        # Creating the transactional producer first fences a dead predecessor with the same id and
        # aborts its open transaction, so the checkpoints read next are final.
        publisher = bus.publisher(transactional_id=worker)
        checkpoints = load_checkpoints(bus, topics.replay_progress, {r.name for r in mine}) if resume else {}
        # Pages of taken-down URLs are not even published (the process group checks content too).
        follower = BlocklistFollower(bus, topics.blocklist).start()
        replayer = Replayer(
            publisher,
            topics,
            cfg.replay,
            follower.ruleset,
            stats=stats,
            checkpoints=checkpoints,
            worker=worker,
            stop=stop,
        )
        with ReplayProgress(stats, enabled=progress and sys.stderr.isatty()) as bar:
            replayer.on_tick = bar.tick
            try:
                report = replayer.replay(mine)
            finally:
                follower.close()
        publisher.close()
    except (BusError, CheckpointError, BlocklistStoreError) as exc:
        console.print(f"[red]replay failed:[/red] {exc}")
        raise typer.Exit(EXIT_FATAL) from exc
    finally:
        bus.close()
    elapsed = report.elapsed_s
    data = {
        "shard": f"{index}/{count}",
        "inputs": len(mine),
        "inputs_total": len(refs),
        "records_read": report.records,
        "pages_published": report.pages,
        "bytes_read": report.bytes,
        "damaged_records": report.damaged,
        "elapsed_s": round(elapsed, 3),
        "pages_per_s": round(report.pages / elapsed, 1) if elapsed else 0.0,
        "mb_per_s": round(report.bytes / 1e6 / elapsed, 2) if elapsed else 0.0,
        "skipped_records": dict(sorted(report.skipped().items())),
        "resumed_inputs": sum(1 for i in report.inputs if i.resumed_from is not None),
        "already_done_inputs": sum(1 for i in report.inputs if i.already_done),
        "stopped": report.stopped,
        "failed_inputs": {i.path: i.errors for i in report.failed_inputs},
        "per_input": [i.to_dict() for i in report.inputs],
    }
    _print_summary(data)
    Console().print_json(json.dumps(data))
    if summary_json:
        summary_json.write_text(json.dumps(data, indent=2))
    if report.failed_inputs:
        raise typer.Exit(EXIT_PARTIAL)


def _print_summary(data: dict[str, Any]) -> None:
    table = Table(
        title=f"replay shard {data['shard']}: {data['inputs']} of {data['inputs_total']} inputs", title_justify="left"
    )
    for col in ("input", "records", "pages", "damaged", "MB", "s", "note"):
        table.add_column(col, justify="left" if col in ("input", "note") else "right")
    for i in data["per_input"]:
        note = (
            "done earlier"
            if i["already_done"]
            else (f"resumed at {i['resumed_from']:,}" if i["resumed_from"] is not None else "")
        )
        if i["errors"]:
            note = (note + "; " if note else "") + i["errors"][0][:60]
        table.add_row(
            i["path"][-60:],
            f"{i['records']:,}",
            f"{i['pages']:,}",
            f"{i['damaged']:,}",
            f"{i['bytes'] / 1e6:,.1f}",
            f"{i['seconds']:,.1f}",
            note,
        )
    console.print(table)
    console.print(
        f"{data['pages_published']:,} pages from {data['records_read']:,} records in {data['elapsed_s']:,.1f}s "
        f"({data['pages_per_s']:,.0f} pages/s, {data['mb_per_s']:,.1f} MB/s); "
        f"{data['damaged_records']:,} damaged records quarantined to dlq"
    )
