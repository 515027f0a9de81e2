"""Building and sealing one shard.

An :class:`OpenShard` streams tokens to a hidden temp file while documents arrive and keeps the
per-document table in memory. ``seal`` makes it durable in this order: fsync ``.bin``, write and fsync
``.idx``, rename both to names that carry a random nonce (so a zombie's rename can never clobber a live
shard's bytes), then publish the manifest create-only. Until the manifest exists the files are
invisible to readers and are removed by :func:`clean_orphans`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from consumers.shards.manifest import (
    MANIFEST_SUFFIX,
    DocEntry,
    FileInfo,
    Manifest,
    ShardExistsError,
    SourceRange,
    TokenizerRef,
    fsync_dir,
    publish_manifest,
    read_manifest,
)
from consumers.shards.mmidx import token_dtype_for, write_index
from consumers.shards.tokenizer import TokenizerInfo
from streams.faults import fault_point
from streams.records import Document

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def shard_id_for(source: str, partition: int, start: int) -> str:
    """Deterministic: the same source range always gets the same id (replays collide, by design)."""
    return f"{_SAFE.sub('_', source)}-p{partition:04d}-o{start:012d}"


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OpenShard:
    """One shard being filled from one source partition, starting at ``start``."""

    def __init__(
        self,
        directory: Path,
        source: str,
        partition: int,
        start: int,
        tokenizer: TokenizerInfo,
        pipeline: str = "",
    ) -> None:
        self.directory = directory
        self.source = source
        self.partition = partition
        self.start = start
        self.end = start  # next source offset not yet covered
        self.tokenizer = tokenizer
        self.pipeline = pipeline
        self.dtype: type[np.generic] = token_dtype_for(tokenizer.vocab_size)
        self.shard_id = shard_id_for(source, partition, start)
        self.data_prefix = f"{self.shard_id}.v1-{uuid.uuid4().hex[:8]}"
        self._bin_tmp = directory / f".{self.data_prefix}.bin.tmp"
        self._bin = self._bin_tmp.open("wb")
        self._hash = hashlib.sha256()
        self._bytes = 0
        self.sizes: list[int] = []
        self.docs: list[DocEntry] = []
        self.pages: dict[str, str] = {}  # doc_id -> page_id of the documents in this shard
        self.tokens = 0
        self.opened_at = time.monotonic()

    @property
    def documents(self) -> int:
        return len(self.docs)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def add(self, doc: Document, ids: Sequence[int] | npt.NDArray[np.integer], offset: int) -> None:
        """Append one document's tokens (EOS already included) consumed at source ``offset``."""
        arr = np.asarray(ids, dtype=self.dtype)
        data = arr.tobytes()
        self._bin.write(data)
        self._hash.update(data)
        self._bytes += len(data)
        self.docs.append(
            DocEntry(
                doc_id=doc.doc_id,
                url=doc.url,
                content_hash=doc.content_hash,
                start=self.tokens,
                length=len(arr),
                language=doc.language,
                lineage=doc.lineage,
                signals=doc.signals,
                fetched_at=doc.fetched_at,
                pii=dict(doc.pii_counts),
                page_id=doc.page_id,
                language_score=doc.language_score,
                annotations=dict(doc.annotations),
            )
        )
        self.pages[doc.doc_id] = doc.page_id
        self.sizes.append(len(arr))
        self.tokens += len(arr)
        self.advance(offset)

    def advance(self, offset: int) -> None:
        """Mark source ``offset`` as covered (also for messages that produced no document)."""
        self.end = max(self.end, offset + 1)

    def seal(self) -> Manifest:
        """Make the shard durable and visible. Raises :class:`ShardExistsError` if fenced."""
        self._bin.flush()
        os.fsync(self._bin.fileno())
        self._bin.close()
        idx_tmp = self.directory / f".{self.data_prefix}.idx.tmp"
        with idx_tmp.open("wb") as fh:
            write_index(fh, self.sizes, self.dtype)
            fh.flush()
            os.fsync(fh.fileno())
        idx_bytes = idx_tmp.read_bytes()
        bin_final = self.directory / f"{self.data_prefix}.bin"
        idx_final = self.directory / f"{self.data_prefix}.idx"
        self._bin_tmp.rename(bin_final)
        idx_tmp.rename(idx_final)
        fsync_dir(self.directory)
        fault_point("shards.before-manifest")
        manifest = Manifest(
            shard_id=self.shard_id,
            data_prefix=self.data_prefix,
            dtype=np.dtype(self.dtype).name,
            tokenizer=TokenizerRef(
                self.tokenizer.name, self.tokenizer.sha256, self.tokenizer.vocab_size, self.tokenizer.eos_id
            ),
            documents=len(self.docs),
            tokens=self.tokens,
            bin=FileInfo(bin_final.name, self._bytes, self._hash.hexdigest()),
            idx=FileInfo(idx_final.name, len(idx_bytes), hashlib.sha256(idx_bytes).hexdigest()),
            sources=(SourceRange(self.source, self.partition, self.start, self.end),),
            docs=tuple(self.docs),
            created_at=utcnow(),
            pipeline=self.pipeline,
        )
        try:
            publish_manifest(self.directory, manifest)
        except ShardExistsError:
            for p in (bin_final, idx_final):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            raise
        return manifest

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._bin.close()
        for p in (self._bin_tmp, self.directory / f".{self.data_prefix}.idx.tmp"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def clean_orphans(directory: Path, grace_s: float = 600.0) -> list[Path]:
    """Delete temp files and data files no manifest references, older than ``grace_s``.

    The grace period protects another live writer's in-flight files on a shared volume.
    """
    if not directory.is_dir():
        return []
    referenced: set[str] = set()
    for mpath in directory.glob(f"*{MANIFEST_SUFFIX}"):
        try:
            m = read_manifest(mpath)
        except ValueError:
            log.warning("unreadable manifest %s left in place", mpath)
            continue
        referenced.update({m.bin.name, m.idx.name})
    now = time.time()
    removed: list[Path] = []
    for p in directory.iterdir():
        name = p.name
        is_tmp = name.startswith(".") and name.endswith(".tmp")
        is_data = name.endswith((".bin", ".idx")) and name not in referenced
        if not (is_tmp or is_data):
            continue
        try:
            if now - p.stat().st_mtime < grace_s:
                continue
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            continue
    if removed:
        log.info("removed %d unsealed or orphaned shard files from %s", len(removed), directory)
    return removed


def finish_data_files(
    directory: Path, prefix: str, bin_tmp: Path, idx_tmp: Path, lengths: Sequence[int], dtype: np.dtype[Any]
) -> tuple[Path, Path, bytes]:
    """Write the ``.idx`` for ``lengths`` next to a complete, fsynced ``bin_tmp``, then move both to
    their final names (still invisible: only a manifest makes data files live). Returns the final
    paths and the index bytes, for the manifest's hash."""
    with idx_tmp.open("wb") as fh:
        write_index(fh, list(lengths), dtype.type)
        fh.flush()
        os.fsync(fh.fileno())
    idx_bytes = idx_tmp.read_bytes()
    bin_final, idx_final = directory / f"{prefix}.bin", directory / f"{prefix}.idx"
    bin_tmp.rename(bin_final)
    idx_tmp.rename(idx_final)
    fsync_dir(directory)
    return bin_final, idx_final, idx_bytes
