"""``headrace dedup ...``: inspect the dedup index, ask for near duplicates, remove documents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from consumers.dedup.index import DedupIndex, DedupIndexError
from consumers.dedup.minhash import MinHasher
from consumers.dedup.stage import DedupConfigError, open_index
from headrace.cli import EXIT_FATAL, EXIT_USAGE, ConfigOpt, _config, app, console

dedup_app = typer.Typer(help="Inspect and edit the deduplication index.", no_args_is_help=True)
app.add_typer(dedup_app, name="dedup")

IndexOpt = Annotated[
    Path | None, typer.Option("--index", help="Embedded index folder (default: dedup.directory or ./dedup-index).")
]
RedisOpt = Annotated[
    str | None, typer.Option("--redis-url", help="Use the Redis backend at this URL (redis://host:port/db).")
]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", help="Redis key namespace.")]


def _open(config: Path | None, index: Path | None, redis_url: str | None, namespace: str | None) -> DedupIndex:
    overrides: dict[str, Any] = {}
    if redis_url:
        overrides = {"dedup": {"backend": "redis", "redis_url": redis_url}}
    if namespace:
        overrides.setdefault("dedup", {})["redis_namespace"] = namespace
    cfg = _config(config, overrides)
    if cfg.dedup.backend == "embedded":
        folder = index or Path(cfg.dedup.directory or "dedup-index")
        if not (folder / "checkpoint.json").exists():
            console.print(f"[red]no dedup index in {folder}[/red]")
            raise typer.Exit(EXIT_USAGE)
    try:
        return open_index(cfg.dedup, index)
    except (DedupIndexError, DedupConfigError) as exc:
        console.print(f"[red]cannot open the dedup index:[/red] {exc}")
        raise typer.Exit(EXIT_FATAL) from exc


@dedup_app.command("stats")
def dedup_stats(
    index: IndexOpt = None,
    redis_url: RedisOpt = None,
    namespace: NamespaceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Documents, removals, size and the input offsets the index reflects (JSON)."""
    idx = _open(config, index, redis_url, namespace)
    try:
        st = idx.stats()
    finally:
        idx.close()
    out = {
        "backend": st.backend,
        "documents": st.documents,
        "removed": st.removed,
        "bytes_total": st.bytes_total,
        "bytes_memory": st.bytes_memory,
        "bytes_per_document": round(st.bytes_total / st.documents, 1) if st.documents else None,
        "offsets": st.offsets,
        **st.details,
    }
    print(json.dumps(out, indent=2, default=str))


@dedup_app.command("near")
def dedup_near(
    text: Annotated[str | None, typer.Option("--text", help="Find the kept documents this text duplicates.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the text from a file ('-' for stdin).")] = None,
    doc_id: Annotated[str | None, typer.Option("--doc-id", help="Near duplicates of an indexed document.")] = None,
    index: IndexOpt = None,
    redis_url: RedisOpt = None,
    namespace: NamespaceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Which kept documents are near duplicates of a text or of an indexed document (one doc_id per line)."""
    if sum(x is not None for x in (text, file, doc_id)) != 1:
        console.print("[red]give exactly one of --text, --file, --doc-id[/red]")
        raise typer.Exit(EXIT_USAGE)
    idx = _open(config, index, redis_url, namespace)
    try:
        if doc_id is not None:
            if not idx.contains(doc_id):
                console.print(f"[yellow]{doc_id} is not in the index[/yellow]")
            found = idx.near_doc(doc_id)
        else:
            body = text if text is not None else (sys.stdin.read() if str(file) == "-" else Path(str(file)).read_text())
            hasher = MinHasher(getattr(idx, "params", None))
            keys = hasher.keys(body)
            found = idx.near(keys.bands)
    finally:
        idx.close()
    for d in found:
        print(d)
    console.print(f"{len(found)} near-duplicate document(s)")


@dedup_app.command("remove")
def dedup_remove(
    doc_ids: Annotated[list[str], typer.Argument(help="doc_ids to forget (a later copy is admitted again).")],
    index: IndexOpt = None,
    redis_url: RedisOpt = None,
    namespace: NamespaceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove documents and all their keys from the index (the embedded index needs the dedup group stopped)."""
    idx = _open(config, index, redis_url, namespace)
    removed = 0
    try:
        for d in doc_ids:
            ok = idx.remove(d)
            removed += ok
            print(f"{d}\t{'removed' if ok else 'not-indexed'}")
        idx.checkpoint()
    finally:
        idx.close()
    console.print(f"removed {removed} of {len(doc_ids)}")
