"""The ``headrace`` command line.

Exit status (all commands): 0 success; 1 fatal error; 2 usage error; 3 finished, but some inputs
were unreadable or damaged (named in the summary; everything readable was processed); 4 a long-running
command did not drain before its shutdown deadline (a stage hung; uncommitted work is read again).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from headrace.config import ConfigError, PipelineConfig, load_config
from headrace.logs import setup_logging

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

app = typer.Typer(
    name="headrace",
    help="Streaming crawler-to-shard ingestion for LLM pre-training data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
shards_app = typer.Typer(help="Inspect, decode and verify tokenized shards.", no_args_is_help=True)
app.add_typer(shards_app, name="shards")
topics_app = typer.Typer(help="Manage the pipeline's Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")

console = Console(stderr=True)
log = logging.getLogger("headrace")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file (HEADRACE_SECTION__KEY env vars override it).")
]
BootstrapOpt = Annotated[
    str | None,
    typer.Option("--bootstrap", "-b", help="Kafka bootstrap servers, HOST:PORT[,...] (default: kafka.bootstrap)."),
]
VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")]
JsonLogsOpt = Annotated[bool, typer.Option("--json-logs", help="Log JSON lines (for log collectors).")]


def _config(path: Path | None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


def _bus_overrides(bootstrap: str | None) -> dict[str, Any]:
    return {"kafka": {"bootstrap": bootstrap}} if bootstrap else {}


def _instance_id() -> str:
    return os.environ.get("HEADRACE_INSTANCE_ID") or f"{socket.gethostname()}-{os.getpid()}"


def _stop_event() -> threading.Event:
    """SIGTERM/SIGINT set the event; loops finish the batch in hand, commit, and leave the group."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("received signal %d, stopping after the current batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


# --------------------------------------------------------------------------------------------- run
@app.command()
def run(
    inputs: Annotated[list[str], typer.Argument(help="WARC/ARC files, directories or globs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (shards/, ledger/).")] = Path("headrace-out"),
    config: ConfigOpt = None,
    summary_json: Annotated[Path | None, typer.Option(help="Also write the summary as JSON here.")] = None,
    extractor: Annotated[str | None, typer.Option(help="trafilatura | resiliparse")] = None,
    workers: Annotated[int | None, typer.Option(help="Extraction worker processes (0 = in process).")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="'gpt2' or a path to a tokenizer.json")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    verbose: VerboseOpt = 0,
    json_logs: JsonLogsOpt = False,
) -> None:
    """Run the whole pipeline in one process (in-memory bus): WARC -> pages -> documents -> shards."""
    setup_logging(verbose, json_logs)
    overrides: dict[str, Any] = {}
    if extractor or workers is not None:
        overrides["extract"] = {k: v for k, v in {"extractor": extractor, "workers": workers}.items() if v is not None}
    if tokenizer:
        overrides["shards"] = {"tokenizer": tokenizer}
    cfg = _config(config, overrides)
    from headrace.embedded import EmbeddedPipeline
    from headrace.progress import PipelineProgress

    out.mkdir(parents=True, exist_ok=True)
    pipeline = EmbeddedPipeline(cfg, out)
    with PipelineProgress(pipeline.stats, enabled=progress and sys.stderr.isatty()) as bar:
        pipeline.on_progress = bar.refresh
        summary = pipeline.run(inputs)
    from headrace.summary import print_run_summary

    print_run_summary(summary, Console())
    if summary_json:
        summary_json.write_text(json.dumps(summary.to_dict(), indent=2))
    if summary.failed_inputs:
        raise typer.Exit(EXIT_PARTIAL)


# ----------------------------------------------------------------------------------------- consume
@app.command()
def consume(
    group: Annotated[str, typer.Argument(help="Stage group: process | dedup | shards | ledger")],
    bootstrap: BootstrapOpt = None,
    config: ConfigOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Shard folder (shards), ledger folder (ledger) or embedded dedup index folder (dedup)."),
    ] = None,
    instance_id: Annotated[
        str | None, typer.Option(help="Stable member id (pod name); default $HEADRACE_INSTANCE_ID, else host-pid.")
    ] = None,
    static_member: Annotated[
        bool,
        typer.Option(
            help="Join as a static member (group.instance.id = instance id): restarts under the same id "
            "do not rebalance. Only with stable ids (StatefulSet pods)."
        ),
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics, /healthz, /readyz on this port (0 = off; config ops).")
    ] = None,
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many idle seconds (batch jobs, tests).")
    ] = None,
    create_topics: Annotated[bool, typer.Option(help="Create missing topics first.")] = True,
    verbose: VerboseOpt = 0,
    json_logs: JsonLogsOpt = False,
) -> None:
    """Run one stage group as a long-running Kafka consumer (SIGTERM: finish batch, commit, leave)."""
    setup_logging(verbose, json_logs)
    from kafka.errors import KafkaTimeoutError

    from headrace.consume import GROUP_NAMES
    from headrace.consume import consume as consume_group
    from headrace.ops import OpsUnavailableError

    if group not in GROUP_NAMES:
        console.print(f"[red]unknown stage group {group!r}[/red]; choose one of {', '.join(GROUP_NAMES)}")
        raise typer.Exit(EXIT_USAGE)
    overrides = _bus_overrides(bootstrap)
    if metrics_port is not None:
        overrides["ops"] = {"metrics_port": metrics_port}
    cfg = _config(config, overrides)
    log.info("effective config: %s", json.dumps(cfg.redacted(), sort_keys=True))
    try:
        stats = consume_group(
            group,
            cfg,
            out=out,
            instance_id=instance_id or _instance_id(),
            static_member=static_member,
            idle_exit_s=idle_exit,
            create_topics=create_topics,
        )
    except OpsUnavailableError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_USAGE) from exc
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        # Nothing is lost: offsets are committed only after a shard is sealed, so the next start
        # rereads whatever was in the open shard. The operator needs to know which volume to grow.
        console.print(
            f"[red]{group}: no space left on device ({exc.filename or out or 'output volume'}); nothing past "
            "the last sealed shard was committed — free or grow the volume and restart[/red]"
        )
        raise typer.Exit(EXIT_FATAL) from exc
    except KafkaTimeoutError as exc:
        if "bootstrap" not in str(exc):
            raise
        console.print(f"[red]{group}: no Kafka broker reachable at {cfg.kafka.bootstrap}; exiting[/red]")
        raise typer.Exit(EXIT_FATAL) from exc
    Console().print_json(json.dumps(stats.snapshot()))


# ------------------------------------------------------------------------------------------ topics
@topics_app.command("create")
def topics_create(
    bootstrap: BootstrapOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Create the pipeline's topics (partitions and configs from the config file)."""
    setup_logging(verbose, False)
    cfg = _config(config, _bus_overrides(bootstrap))
    from headrace.pipeline import topics_for
    from streams.kafka import KafkaBus

    bus = KafkaBus(cfg.kafka)
    try:
        specs = topics_for(cfg).specs(cfg.bus.partitions, cfg.kafka.min_insync_replicas)
        bus.ensure_topics(specs)
    finally:
        bus.close()
    for s in specs:
        print(f"{s.name}\t{s.partitions} partitions\t{s.description}")


# ------------------------------------------------------------------------------------------ shards
ShardDir = Annotated[Path, typer.Argument(help="Folder holding the shards (manifests, .bin, .idx).")]


def _shard_dir(directory: Path) -> Path:
    if not directory.is_dir():
        console.print(f"[red]{directory} is not a folder[/red]")
        raise typer.Exit(EXIT_USAGE)
    # Accept the run's output folder too.
    if not any(directory.glob("*.manifest.json")) and (directory / "shards").is_dir():
        return directory / "shards"
    return directory


@shards_app.command("inspect")
def shards_inspect(
    directory: ShardDir,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Counts, tokens, tokenizer and files of every sealed shard."""
    from consumers.shards.reader import list_shards

    shards = list_shards(_shard_dir(directory))
    rows: list[dict[str, Any]] = [
        {
            "shard": s.manifest.shard_id,
            "version": s.manifest.version,
            "documents": s.manifest.documents,
            "tokens": s.manifest.tokens,
            "dtype": s.manifest.dtype,
            "tokenizer": s.manifest.tokenizer.name,
            "tokenizer_sha256": s.manifest.tokenizer.sha256[:16],
            "bin": s.manifest.bin.name,
            "bin_bytes": s.manifest.bin.bytes,
            "idx": s.manifest.idx.name,
            "sources": [f"{r.source}[{r.partition}]:{r.start}-{r.end}" for r in s.manifest.sources],
        }
        for s in shards
    ]
    totals = {
        "shards": len(rows),
        "documents": sum(r["documents"] for r in rows),
        "tokens": sum(r["tokens"] for r in rows),
        "tokenizers": sorted({f"{r['tokenizer']}:{r['tokenizer_sha256']}" for r in rows}),
    }
    if as_json:
        print(json.dumps({"totals": totals, "shards": rows}, indent=2))
        return
    table = Table(title=f"{totals['shards']} shards, {totals['documents']:,} documents, {totals['tokens']:,} tokens")
    for col in ("shard", "v", "docs", "tokens", "dtype", "tokenizer", "bin bytes"):
        table.add_column(col, justify="right" if col in ("docs", "tokens", "bin bytes", "v") else "left")
    for r in rows:
        table.add_row(
            r["shard"],
            str(r["version"]),
            f"{r['documents']:,}",
            f"{r['tokens']:,}",
            r["dtype"],
            r["tokenizer"],
            f"{r['bin_bytes']:,}",
        )
    Console().print(table)


@shards_app.command("dump")
def shards_dump(
    directory: ShardDir,
    limit: Annotated[int | None, typer.Option(help="Stop after this many documents.")] = None,
    tokens: Annotated[bool, typer.Option(help="Include the token ids.")] = False,
) -> None:
    """Decode every document back to text: one JSON object per line."""
    import msgspec

    from consumers.shards.reader import iter_documents
    from consumers.shards.tokenizer import load_tokenizer

    tokenizers: dict[str, Any] = {}
    out = sys.stdout
    for n, (shard, entry, toks) in enumerate(iter_documents(_shard_dir(directory))):
        if limit is not None and n >= limit:
            break
        ref = shard.manifest.tokenizer
        tok = tokenizers.get(ref.sha256)
        if tok is None:
            tok = tokenizers[ref.sha256] = load_tokenizer(ref.name)
            if tok.info.sha256 != ref.sha256:
                console.print(
                    f"[yellow]warning: tokenizer {ref.name} differs from the one that wrote "
                    f"{shard.manifest.shard_id}[/yellow]"
                )
        ids = [int(t) for t in toks]
        body = ids[:-1] if ids and ids[-1] == ref.eos_id else ids
        rec: dict[str, Any] = {
            "doc_id": entry.doc_id,
            "url": entry.url,
            "text": tok.decode(body),
            "content_hash": entry.content_hash,
            "language": entry.language,
            "shard": shard.manifest.shard_id,
            "token_count": entry.length,
            "lineage": msgspec.to_builtins(entry.lineage) if entry.lineage else None,
            "signals": msgspec.to_builtins(entry.signals),
        }
        if tokens:
            rec["tokens"] = ids
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")


@shards_app.command("verify")
def shards_verify(
    directory: ShardDir,
    quick: Annotated[bool, typer.Option(help="Skip sha256 of the files.")] = False,
) -> None:
    """Check hashes, manifest <-> idx <-> bin agreement, EOS placement and duplicate doc_ids."""
    from consumers.shards.reader import verify_shards

    report = verify_shards(_shard_dir(directory), check_hashes=not quick)
    print(
        json.dumps(
            {
                "ok": report.ok,
                "shards": report.shards,
                "documents": report.documents,
                "tokens": report.tokens,
                "problems": report.problems,
                "duplicate_doc_ids": report.duplicate_doc_ids,
                "retired_shards": report.retired,
                "pending_retirements": report.pending_retirements,
                "unsealed_files": report.unsealed_files,
            },
            indent=2,
        )
    )
    if not report.ok:
        raise typer.Exit(EXIT_FATAL)


@app.command()
def version() -> None:
    """Print the headrace version."""
    from headrace.pipeline import headrace_version

    print(headrace_version())


from headrace import (  # noqa: E402, F401 - register subcommands
    cli_crawl,
    cli_dedup,
    cli_replay,
    cli_report,
    cli_shards,
    cli_takedown,
)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
