"""``headrace shards merge``: fold small sealed shards into bigger ones (see consumers/shards/merge.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from headrace.cli import EXIT_FATAL, ShardDir, _shard_dir, console, shards_app


@shards_app.command("merge")
def shards_merge(
    directory: ShardDir,
    target_tokens: Annotated[
        int,
        typer.Option("--target-tokens", help="Merge consecutive small shards into shards of up to this many tokens."),
    ] = 1 << 30,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the groups that would be merged.")] = False,
) -> None:
    """Combine sealed shards into bigger ones, atomically and resumably (safe to rerun after a crash)."""
    from consumers.shards.merge import MergeError, merge_shards

    folder: Path = _shard_dir(directory)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("merging", total=None)

            def on_group(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = merge_shards(folder, target_tokens, dry_run=dry_run, on_group=on_group)
    except MergeError as exc:
        console.print(f"[red]merge stopped:[/red] {exc}")
        raise typer.Exit(EXIT_FATAL) from exc
    if dry_run:
        print(json.dumps({"groups": report.planned}, indent=2))
        return
    Console().print_json(
        json.dumps(
            {
                "merged_shards": report.merged,
                "source_shards": report.sources,
                "tombstones_written": report.retired,
                "tokens": report.tokens,
            }
        )
    )
