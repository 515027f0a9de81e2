"""``headrace shards merge``: fold many small sealed shards into fewer big ones, atomically.

The shard writer seals one shard per source partition and time window, so a streaming run leaves many
small shards; training prefers a few large ones. A merge:

1. copies the sources' ``.bin`` bytes into one new file (checking each source's sha256 on the way),
   writes the combined ``.idx``, fsyncs both and renames them to nonce'd names (invisible: no manifest);
2. publishes the merged manifest create-only. It carries the union of the sources' source-offset
   ranges, their per-document tables (token starts shifted) and ``merged_from``: where each source's
   tokens and documents start. From this single atomic step on, readers hide the sources;
3. only then retires each source: its manifest is replaced by a tombstone (``retired_by``, no
   documents), which keeps the name taken so the create-only fencing of the shard writer still holds,
   and its data files are deleted (open memory maps stay valid on POSIX).

A reader therefore sees the sources or the merged shard, never both and never neither. The merged id
is a hash of the sources' ids and data files, so a rerun after a crash finds the merged manifest,
finishes the retirements and does nothing else (idempotent and resumable). Loaders that saved a state
naming the sources resume through ``merged_from``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from consumers.shards.manifest import (
    DocEntry,
    FileInfo,
    Manifest,
    MergedPart,
    ShardExistsError,
    SourceRange,
    fsync_dir,
    manifest_path,
    publish_manifest,
    read_manifest,
)
from consumers.shards.reader import live_manifests, read_manifests
from consumers.shards.writer import finish_data_files, utcnow

log = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024


class MergeError(RuntimeError):
    """A merge cannot go ahead (a source's bytes do not match its manifest, ...)."""


@dataclass
class MergeReport:
    merged: list[str] = field(default_factory=list)  # new shard ids
    sources: int = 0  # shards folded into them
    retired: int = 0  # tombstones written (including retirements finished from an earlier run)
    tokens: int = 0
    planned: list[list[str]] = field(default_factory=list)  # dry run: the groups


def merged_id(sources: Sequence[Manifest]) -> str:
    basis = "\n".join(f"{m.shard_id}:{m.data_prefix}" for m in sources)
    return f"merged-{hashlib.sha256(basis.encode()).hexdigest()[:24]}"


def plan_merge(manifests: Sequence[Manifest], target_tokens: int, min_group: int = 2) -> list[list[Manifest]]:
    """Greedy groups of consecutive (shard-id order) live shards with the same tokenizer, each up to
    ``target_tokens``. Shards already at the target stay as they are."""
    groups: list[list[Manifest]] = []
    current: list[Manifest] = []
    size = 0

    def close() -> None:
        nonlocal current, size
        if len(current) >= min_group:
            groups.append(current)
        current, size = [], 0

    for m in sorted(manifests, key=lambda m: (m.tokenizer.sha256, m.dtype, m.shard_id)):
        if m.tokens >= target_tokens:
            continue
        if current and (
            (current[0].tokenizer.sha256, current[0].dtype) != (m.tokenizer.sha256, m.dtype)
            or size + m.tokens > target_tokens
        ):
            close()
        current.append(m)
        size += m.tokens
    close()
    return groups


def _union_ranges(sources: Sequence[Manifest]) -> tuple[SourceRange, ...]:
    ranges = sorted({r for m in sources for r in m.sources}, key=lambda r: (r.source, r.partition, r.start))
    out: list[SourceRange] = []
    for r in ranges:
        last = out[-1] if out else None
        if last and (last.source, last.partition) == (r.source, r.partition) and last.end == r.start:
            out[-1] = SourceRange(r.source, r.partition, last.start, r.end)
        else:
            out.append(r)
    return tuple(out)


def write_merged(directory: Path, sources: Sequence[Manifest]) -> Manifest:
    """Steps 1-2: write the merged files and publish its manifest (or return the one already there)."""
    shard_id = merged_id(sources)
    existing = manifest_path(directory, shard_id)
    if existing.exists():
        return read_manifest(existing)
    first = sources[0]
    data_prefix = f"{shard_id}.v1-{uuid.uuid4().hex[:8]}"
    bin_tmp = directory / f".{data_prefix}.bin.tmp"
    idx_tmp = directory / f".{data_prefix}.idx.tmp"
    itemsize = np.dtype(first.dtype).itemsize
    bin_hash = hashlib.sha256()
    docs: list[DocEntry] = []
    parts: list[MergedPart] = []
    tokens = 0
    try:
        with bin_tmp.open("wb") as out:
            for m in sources:
                src_hash = hashlib.sha256()
                with (directory / m.bin.name).open("rb") as fh:
                    while block := fh.read(_CHUNK):
                        src_hash.update(block)
                        bin_hash.update(block)
                        out.write(block)
                if src_hash.hexdigest() != m.bin.sha256:
                    raise MergeError(f"{m.shard_id}: {m.bin.name} does not match its manifest's sha256")
                # A merged source brings its own parts along, shifted, so any older id stays resolvable.
                parts.extend(
                    msgspec.structs.replace(
                        p, token_offset=p.token_offset + tokens, doc_offset=p.doc_offset + len(docs)
                    )
                    for p in m.merged_from
                )
                parts.append(
                    MergedPart(m.shard_id, m.data_prefix, tokens, m.tokens, len(docs), m.documents, m.bin.sha256)
                )
                docs.extend(msgspec.structs.replace(d, start=d.start + tokens) for d in m.docs)
                tokens += m.tokens
            out.flush()
            os.fsync(out.fileno())
        bin_final, idx_final, idx_bytes = finish_data_files(
            directory, data_prefix, bin_tmp, idx_tmp, [d.length for d in docs], np.dtype(first.dtype)
        )
    except BaseException:
        for p in (bin_tmp, idx_tmp):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        raise
    manifest = Manifest(
        shard_id=shard_id,
        data_prefix=data_prefix,
        dtype=first.dtype,
        tokenizer=first.tokenizer,
        documents=len(docs),
        tokens=tokens,
        bin=FileInfo(bin_final.name, tokens * itemsize, bin_hash.hexdigest()),
        idx=FileInfo(idx_final.name, len(idx_bytes), hashlib.sha256(idx_bytes).hexdigest()),
        sources=_union_ranges(sources),
        docs=tuple(docs),
        created_at=utcnow(),
        pipeline=first.pipeline,
        merged_from=tuple(parts),
    )
    try:
        publish_manifest(directory, manifest)
    except ShardExistsError:  # a concurrent merge of the same group won: use its result
        for p in (bin_final, idx_final):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        return read_manifest(existing)
    return manifest


def retire_sources(directory: Path, merged: Manifest, live_files: set[str]) -> int:
    """Step 3: tombstone every source manifest of ``merged`` that is not one yet, then delete the
    data files no live manifest uses. Returns how many tombstones were written."""
    written = 0
    for part in merged.merged_from:
        path = manifest_path(directory, part.shard_id)
        if not path.exists():
            continue
        m = read_manifest(path)
        if not m.retired_by:
            tomb = msgspec.structs.replace(m, docs=(), documents=0, tokens=0, retired_by=merged.shard_id)
            publish_manifest(directory, tomb, replace=True)
            written += 1
        for info in (m.bin, m.idx):
            if info.name not in live_files:
                with contextlib.suppress(FileNotFoundError):
                    (directory / info.name).unlink()
    if written:
        fsync_dir(directory)
    return written


def merge_shards(
    directory: Path,
    target_tokens: int,
    *,
    dry_run: bool = False,
    on_group: Callable[[int, int], None] | None = None,
) -> MergeReport:
    """Finish earlier retirements, then merge groups of small shards up to ``target_tokens`` each."""
    report = MergeReport()
    manifests = read_manifests(directory)
    live = live_manifests(manifests)
    groups = plan_merge(live, target_tokens)
    if dry_run:
        report.planned = [[m.shard_id for m in g] for g in groups]
        return report
    live_files = {f.name for m in live for f in (m.bin, m.idx)}
    for m in live:  # a crash after publishing a merged manifest left retirements to do
        if m.merged_from:
            report.retired += retire_sources(directory, m, live_files)
    for n, group in enumerate(groups):
        merged = write_merged(directory, group)
        live_files = (live_files - {f.name for g in group for f in (g.bin, g.idx)}) | {merged.bin.name, merged.idx.name}
        report.retired += retire_sources(directory, merged, live_files)
        report.merged.append(merged.shard_id)
        report.sources += len(group)
        report.tokens += merged.tokens
        if on_group is not None:
            on_group(n + 1, len(groups))
        log.info("merged %d shards into %s (%d tokens)", len(group), merged.shard_id, merged.tokens)
    return report
