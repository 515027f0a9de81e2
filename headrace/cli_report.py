"""``headrace report``: the data-quality scorecard and release gates."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from headrace.cli import EXIT_FATAL, EXIT_USAGE, ConfigOpt, _config, app, console
from headrace.logs import setup_logging

EXIT_GATE = 5


def _locate(corpus: Path, ledger: Path | None) -> tuple[Path, Path | None]:
    """Accept a run's output folder (shards/ + ledger/) or a shard folder plus --ledger."""
    if not corpus.is_dir():
        console.print(f"[red]{corpus} is not a folder[/red]")
        raise typer.Exit(EXIT_USAGE)
    shards = corpus / "shards" if (corpus / "shards").is_dir() else corpus
    if ledger is None and (corpus / "ledger").is_dir():
        ledger = corpus / "ledger"
    if ledger is not None and not ledger.is_dir():
        console.print(f"[red]ledger folder {ledger} does not exist[/red]")
        raise typer.Exit(EXIT_USAGE)
    return shards, ledger


@app.command()
def report(
    corpus: Annotated[Path, typer.Argument(help="Shard folder, or a run's output folder (shards/ + ledger/).")],
    ledger: Annotated[Path | None, typer.Option(help="Decision-ledger folder (rejected.jsonl, dlq.jsonl).")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML scorecard here.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the measures and gate results as JSON.")
    ] = None,
    gate: Annotated[bool, typer.Option("--gate", help=f"Exit {EXIT_GATE} if a release gate fails.")] = False,
    scan: Annotated[bool, typer.Option(help="Decode the kept documents to measure duplicates, PII, hygiene.")] = True,
    config: ConfigOpt = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
) -> None:
    """Scorecard of a corpus: funnel, drops, languages, lengths, quality signals, duplicates, PII, domains,
    opt-outs, samples; with --gate, fail when a release threshold is not met."""
    setup_logging(verbose, False)
    cfg = _config(config)
    shards, ledger_dir = _locate(corpus, ledger)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from consumers.shards.manifest import ManifestError
    from headrace.report.build import build_report

    with Progress(
        TextColumn("shards"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not (progress and sys.stderr.isatty()),
    ) as bar:
        task = bar.add_task("shards", total=None)
        try:
            result = build_report(
                shards,
                ledger_dir,
                cfg,
                scan_text=scan,
                on_shard=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except (ManifestError, OSError) as exc:
            console.print(f"[red]cannot read the corpus: {exc}[/red]")
            raise typer.Exit(EXIT_FATAL) from exc
    if result.data.kept_docs == 0 and not result.data.dropped_total:
        console.print(f"[red]no sealed shards and no ledger entries found in {corpus}[/red]")
        raise typer.Exit(EXIT_FATAL)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(result.html, encoding="utf-8")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.summary, indent=2))
    out = Console()
    d = result.data
    out.print(
        f"{d.kept_docs:,} documents, {d.kept_tokens:,} tokens in {d.shards} shards; {d.dropped_total:,} dropped; "
        f"{d.scanned_docs:,} scanned in {result.seconds:.1f} s"
    )
    if d.scan_skipped:
        out.print(f"[yellow]{d.scan_skipped}[/yellow]")
    failed = [g for g in result.gates if not g.passed]
    for g in result.gates:
        style = "green" if g.passed else "red"
        out.print(f"[{style}]{g.message}[/{style}]", soft_wrap=True)
    if html is not None:
        out.print(f"report: {html}")
    if gate and failed:
        names = ", ".join(g.metric for g in failed)
        print(f"release gate failed: {names}", file=sys.stderr)
        raise typer.Exit(EXIT_GATE)
