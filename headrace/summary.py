"""The one-screen summary printed at the end of ``headrace run``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from headrace.embedded import RunSummary


def print_run_summary(summary: RunSummary, console: Console) -> None:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_row("WARC records read", f"{summary.records_read:,}")
    head.add_row("HTML pages", f"{summary.pages_read:,}")
    head.add_row("documents written", f"{summary.docs_written:,}")
    head.add_row("tokens", f"{summary.tokens:,}")
    head.add_row("shards sealed", f"{summary.shards_sealed:,}")
    head.add_row("damaged records (quarantined)", f"{summary.damaged_records:,}")
    head.add_row("dead letters", f"{summary.dead_letters:,}")
    head.add_row("elapsed", f"{summary.elapsed_s:,.1f} s")
    head.add_row("throughput", f"{summary.pages_per_s:,.1f} pages/s, {summary.docs_per_s:,.1f} docs/s")
    head.add_row("output", summary.out_dir)
    console.print(head)
    if summary.drops:
        drops = Table(title="dropped, by stage/reason", title_justify="left")
        drops.add_column("stage/reason")
        drops.add_column("documents", justify="right")
        for key, n in sorted(summary.drops.items(), key=lambda kv: -kv[1]):
            drops.add_row(key, f"{n:,}")
        console.print(drops)
    if summary.skipped:
        skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.skipped.items(), key=lambda kv: -kv[1]))
        console.print(f"[dim]records skipped: {skipped}[/dim]")
    for inp in summary.failed_inputs:
        for err in inp.errors:
            # soft_wrap: a path must stay on one line so people (and grep) can copy it.
            console.print(f"[red]input {inp.path}: {err}[/red]", soft_wrap=True)
