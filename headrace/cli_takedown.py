"""``headrace takedown ...`` and ``headrace audit verify``: the compliance takedown tool."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from headrace.cli import EXIT_FATAL, EXIT_USAGE, BootstrapOpt, ConfigOpt, _bus_overrides, _config, app, console
from headrace.config import PipelineConfig
from headrace.logs import setup_logging

log = logging.getLogger(__name__)

takedown_app = typer.Typer(
    help="Find, remove and block documents; keep a hash-chained audit trail; verify against the bytes.",
    no_args_is_help=False,
    invoke_without_command=True,
)
audit_app = typer.Typer(help="The compliance audit log.", no_args_is_help=True)
app.add_typer(takedown_app, name="takedown")
app.add_typer(audit_app, name="audit")

OutOpt = Annotated[
    Path | None, typer.Option("--out", help="A corpus made by `headrace run` (shards/, dedup/, compliance/).")
]
ShardsOpt = Annotated[Path | None, typer.Option("--shards", help="Shard folder of a deployed corpus.")]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Compliance folder (audit.jsonl, blocklist.jsonl, takedowns/); "
        "default: <out>/compliance, or compliance/ next to --shards.",
    ),
]


class Corpus:
    def __init__(self, shards: Path, state: Path, dedup_dir: Path | None) -> None:
        self.shards = shards
        self.state = state
        self.dedup_dir = dedup_dir


def _corpus(out: Path | None, shards: Path | None, state_dir: Path | None) -> Corpus:
    if (out is None) == (shards is None):
        console.print("[red]give exactly one of --out (embedded corpus) or --shards (deployed corpus)[/red]")
        raise typer.Exit(EXIT_USAGE)
    if out is not None:
        if not (out / "shards").is_dir():
            console.print(f"[red]{out} has no shards/ folder (not a `headrace run` output?)[/red]")
            raise typer.Exit(EXIT_USAGE)
        return Corpus(out / "shards", state_dir or out / "compliance", out / "dedup")
    assert shards is not None  # noqa: S101 - narrowed by the check above
    if not shards.is_dir():
        console.print(f"[red]{shards} is not a folder[/red]")
        raise typer.Exit(EXIT_USAGE)
    return Corpus(shards, state_dir or shards.parent / "compliance", None)


def _engine(corpus: Corpus, cfg: PipelineConfig, bootstrap: str | None) -> Any:
    from compliance.blocklist_store import LocalRuleStore, publish_rules
    from compliance.takedown.engine import Takedown
    from consumers.dedup.minhash import MinHasher
    from headrace.pipeline import topics_for
    from streams.records import BlockRule

    store = LocalRuleStore(corpus.state / "blocklist.jsonl")
    sinks: list[Callable[[list[BlockRule]], object]] = [store.append]
    if bootstrap:
        from streams.kafka import KafkaBus

        def to_topic(rules: list[BlockRule]) -> None:
            bus = KafkaBus(cfg.kafka)
            try:
                topics = topics_for(cfg)
                bus.ensure_topics([s for s in topics.specs(cfg.bus.partitions) if s.name == topics.blocklist])
                pub = bus.publisher()
                publish_rules(pub, topics.blocklist, rules)
                pub.close()
            finally:
                bus.close()

        sinks.append(to_topic)
    hasher = MinHasher(cfg.dedup.params())
    return Takedown(
        corpus.shards,
        corpus.state,
        rule_sinks=sinks,
        dedup_remover=_dedup_remover(cfg, corpus),
        signature=hasher.signature,
    )


def _dedup_remover(cfg: PipelineConfig, corpus: Corpus) -> Any:
    from consumers.dedup.index import IndexLockedError
    from consumers.dedup.stage import open_index

    directory = corpus.dedup_dir if corpus.dedup_dir is not None else (cfg.dedup.directory or None)
    if cfg.dedup.backend != "redis" and (directory is None or not Path(directory).exists()):
        return None

    def remove(doc_ids: list[str]) -> tuple[int, str]:
        try:
            index = open_index(cfg.dedup, directory)
        except IndexLockedError:
            return 0, "index in use by a running dedup group: it removes the documents when it reads the rules"
        try:
            n = sum(1 for d in doc_ids if index.remove(d))
            index.checkpoint(None)
        finally:
            index.close()
        return n, f"removed from the {cfg.dedup.backend} index"

    return remove


@takedown_app.callback()
def takedown_main(
    ctx: typer.Context,
    robots_recheck: Annotated[
        list[str] | None,
        typer.Option(
            "--robots-recheck",
            help="Registered domains whose stored robots/opt-out signals are "
            "re-evaluated against the current policy; what is now opted out is taken down.",
        ),
    ] = None,
    out: OutOpt = None,
    shards: ShardsOpt = None,
    state_dir: StateOpt = None,
    bootstrap: BootstrapOpt = None,
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would change.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
) -> None:
    """Compliance takedowns. Subcommands: request, verify; or --robots-recheck DOMAIN."""
    if ctx.invoked_subcommand is not None:
        return
    if not robots_recheck:
        console.print(ctx.get_help())
        raise typer.Exit(EXIT_USAGE)
    setup_logging(verbose, False)
    cfg = _config(config, _bus_overrides(bootstrap))
    corpus = _corpus(out, shards, state_dir)
    from headrace.robots_recheck import recheck_requests

    requests = recheck_requests(corpus.shards, robots_recheck, cfg)
    if not requests:
        Console().print_json(json.dumps({"domains": robots_recheck, "opted_out_documents": 0}))
        return
    _run_requests(requests, corpus, cfg, bootstrap, dry_run, None)


def _run_requests(
    requests: list[Any],
    corpus: Corpus,
    cfg: PipelineConfig,
    bootstrap: str | None,
    dry_run: bool,
    json_out: Path | None,
) -> None:
    engine = _engine(corpus, cfg, bootstrap)
    results = []
    failed = False
    for req in requests:
        plan, outcome = engine.run(req, dry_run=dry_run)
        entry = {"request": req.to_dict(), "outcome": outcome.to_dict()}
        if plan is not None and dry_run:
            entry["plan"] = plan.summary()
        results.append(entry)
        failed |= outcome.status == "verify-failed"
    doc = {"dry_run": dry_run, "results": results}
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(doc, indent=2))
    out = Console()
    for r in results:
        o = r["outcome"]
        out.print(
            f"{o['request_id']}: {o['status']} — {o['documents']} documents, {o['tokens']:,} tokens, "
            f"{len(o['shards_rewritten'])} shards rewritten, {o['block_rules']} block rules",
            soft_wrap=True,
        )
        if dry_run and "plan" in r:
            for m in r["plan"]["matches"][:50]:
                out.print(
                    f"  would remove {m['doc_id']} {m['url']} ({m['shard']}, {m['tokens']} tokens)", soft_wrap=True
                )
        if o.get("verify") and not o["verify"]["ok"]:
            out.print(f"[red]verification found {len(o['verify']['hits'])} hits[/red]")
    if failed:
        raise typer.Exit(EXIT_FATAL)


@takedown_app.command("request")
def takedown_request(
    url: Annotated[list[str] | None, typer.Option("--url", help="Exact URL (canonicalised).")] = None,
    url_prefix: Annotated[list[str] | None, typer.Option("--url-prefix", help="Every URL under this prefix.")] = None,
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="Registered domain (and its subdomains).")
    ] = None,
    doc_id: Annotated[list[str] | None, typer.Option("--doc-id", help="Document id.")] = None,
    content_hash: Annotated[list[str] | None, typer.Option("--content-hash", help="sha256 of the text.")] = None,
    near_text: Annotated[list[str] | None, typer.Option("--near-text", help="Near duplicates of this text.")] = None,
    near_doc: Annotated[list[str] | None, typer.Option("--near-doc", help="Near duplicates of this doc id.")] = None,
    pii: Annotated[
        list[str] | None, typer.Option("--pii", help="Documents whose text or redaction log holds it.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    requester: Annotated[str | None, typer.Option(help="Who asked (kept in the audit log).")] = None,
    ticket: Annotated[str, typer.Option(help="Ticket or case reference.")] = "",
    near_threshold: Annotated[float, typer.Option(help="Signature agreement for near duplicates.")] = 0.8,
    file: Annotated[Path | None, typer.Option("--file", help="JSON or CSV file with many requests.")] = None,
    out: OutOpt = None,
    shards: ShardsOpt = None,
    state_dir: StateOpt = None,
    bootstrap: BootstrapOpt = None,
    config: ConfigOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; change nothing.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the plan/outcome as JSON here.")] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
) -> None:
    """Take documents down: block them, forget them in the dedup index, rewrite their shards, verify."""
    setup_logging(verbose, False)
    from compliance.takedown.request import TakedownRequestError, load_requests, make_request

    cfg = _config(config, _bus_overrides(bootstrap))
    corpus = _corpus(out, shards, state_dir)
    flags = [
        *(("url", v) for v in url or []),
        *(("url_prefix", v) for v in url_prefix or []),
        *(("domain", v) for v in domain or []),
        *(("doc_id", v) for v in doc_id or []),
        *(("content_hash", v) for v in content_hash or []),
        *(("near_text", v) for v in near_text or []),
        *(("near_doc", v) for v in near_doc or []),
        *(("pii", v) for v in pii or []),
    ]
    try:
        requests = []
        if file is not None:
            requests.extend(load_requests(file))
        if flags or file is None:
            requests.append(
                make_request(flags, reason=reason, requester=requester, ticket=ticket, near_threshold=near_threshold)
            )
    except TakedownRequestError as exc:
        console.print(f"[red]invalid takedown request: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from exc
    _run_requests(requests, corpus, cfg, bootstrap, dry_run, json_out)


@takedown_app.command("verify")
def takedown_verify(
    out: OutOpt = None,
    shards: ShardsOpt = None,
    state_dir: StateOpt = None,
    request_id: Annotated[list[str] | None, typer.Option("--request", help="Only these request ids.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON here.")] = None,
) -> None:
    """Scan the bytes of every live shard for every completed takedown; exit 1 on any hit."""
    from compliance.takedown.verify import verify_corpus

    corpus = _corpus(out, shards, state_dir)
    result = verify_corpus(corpus.shards, corpus.state / "takedowns", only=request_id)
    data = result.to_dict()
    if json_out is not None:
        json_out.write_text(json.dumps(data, indent=2))
    print(json.dumps({k: v for k, v in data.items() if k != "hits"} | {"hits": data["hits"][:100]}, indent=2))
    if not result.ok:
        raise typer.Exit(EXIT_FATAL)


@audit_app.command("verify")
def audit_verify(
    out: OutOpt = None,
    shards: ShardsOpt = None,
    state_dir: StateOpt = None,
    log_file: Annotated[Path | None, typer.Option("--log", help="An audit.jsonl file.")] = None,
) -> None:
    """Check the audit log's hash chain; exit 1 naming the first line that does not check out."""
    from compliance.audit import verify_chain

    path = log_file or _corpus(out, shards, state_dir).state / "audit.jsonl"
    report = verify_chain(path)
    print(
        json.dumps(
            {
                "log": str(path),
                "ok": report.ok,
                "lines": report.lines,
                "first_bad_line": report.first_bad_line,
                "reason": report.reason,
                "head": report.head,
            },
            indent=2,
        )
    )
    if not report.ok:
        raise typer.Exit(EXIT_FATAL)
