"""Rewriting one sealed shard without some of its documents, atomically.

The new version's bytes go to fresh nonce'd files (invisible: no manifest names them), are fsynced,
and then the manifest is swapped in one ``rename`` with ``version + 1``, ``supersedes`` = the old data
files and the request id appended to ``takedown``. Only after the swap are the old ``.bin``/``.idx``
deleted ("retire the old bytes"); a loader that had them memory-mapped keeps a valid view until it
refreshes. A crash before the swap leaves the old version live and unreferenced temp files (cleaned);
a crash after it leaves unreferenced old files, which :func:`retire_unreferenced` removes on the rerun.
The shard keeps its id and its source-offset ranges, so the writer's exactly-once bookkeeping is intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import msgspec
import numpy as np

from consumers.shards.manifest import (
    MANIFEST_SUFFIX,
    FileInfo,
    Manifest,
    fsync_dir,
    manifest_path,
    publish_manifest,
    read_manifest,
)
from consumers.shards.writer import finish_data_files, utcnow

log = logging.getLogger(__name__)


class RewriteError(RuntimeError):
    """The shard changed under us or its bytes do not match its manifest."""


def rewrite_without(directory: Path, manifest: Manifest, remove: Iterable[str], request_id: str) -> Manifest:
    """Publish a new version of ``manifest``'s shard without the documents in ``remove``."""
    drop = set(remove)
    keep = [d for d in manifest.docs if d.doc_id not in drop]
    if len(keep) == len(manifest.docs):
        return manifest
    current = read_manifest(manifest_path(directory, manifest.shard_id))
    if current.data_prefix != manifest.data_prefix:
        raise RewriteError(f"{manifest.shard_id} changed while the takedown ran; rerun it")
    dtype = np.dtype(manifest.dtype)
    old_bin = directory / manifest.bin.name
    tokens = np.memmap(old_bin, dtype=dtype, mode="r") if manifest.tokens else np.zeros(0, dtype=dtype)
    if manifest.tokens and len(tokens) != manifest.tokens:
        raise RewriteError(
            f"{manifest.shard_id}: {old_bin.name} holds {len(tokens)} tokens, manifest {manifest.tokens}"
        )
    version = manifest.version + 1
    prefix = f"{manifest.shard_id}.v{version}-{uuid.uuid4().hex[:8]}"
    bin_tmp, idx_tmp = directory / f".{prefix}.bin.tmp", directory / f".{prefix}.idx.tmp"
    bin_hash = hashlib.sha256()
    docs = []
    start = 0
    try:
        with bin_tmp.open("wb") as out:
            for d in keep:
                chunk = np.ascontiguousarray(tokens[d.start : d.start + d.length]).tobytes()
                out.write(chunk)
                bin_hash.update(chunk)
                docs.append(msgspec.structs.replace(d, start=start))
                start += d.length
            out.flush()
            os.fsync(out.fileno())
        bin_final, idx_final, idx_bytes = finish_data_files(
            directory, prefix, bin_tmp, idx_tmp, [d.length for d in docs], dtype
        )
    except BaseException:
        for p in (bin_tmp, idx_tmp):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        raise
    new = msgspec.structs.replace(
        manifest,
        version=version,
        data_prefix=prefix,
        documents=len(docs),
        tokens=start,
        bin=FileInfo(bin_final.name, start * dtype.itemsize, bin_hash.hexdigest()),
        idx=FileInfo(idx_final.name, len(idx_bytes), hashlib.sha256(idx_bytes).hexdigest()),
        docs=tuple(docs),
        created_at=utcnow(),
        supersedes=manifest.data_prefix,
        takedown=(*manifest.takedown, request_id),
        # Token offsets of merged parts no longer hold once documents are gone; the shard is a new whole.
        merged_from=(),
    )
    publish_manifest(directory, new, replace=True)
    del tokens
    for info in (manifest.bin, manifest.idx):
        with contextlib.suppress(FileNotFoundError):
            (directory / info.name).unlink()
    fsync_dir(directory)
    return new


def retire_unreferenced(directory: Path, shard_ids: Iterable[str]) -> int:
    """Delete data files of the given shards that no manifest references (leftovers of a crash)."""
    ids = set(shard_ids)
    referenced: set[str] = set()
    for mpath in directory.glob(f"*{MANIFEST_SUFFIX}"):
        with contextlib.suppress(ValueError):
            m = read_manifest(mpath)
            referenced.update({m.bin.name, m.idx.name})
    removed = 0
    for p in directory.iterdir():
        name = p.name.lstrip(".")
        if not any(name.startswith(f"{sid}.v") for sid in ids):
            continue
        if p.name in referenced or not (p.name.endswith((".bin", ".idx", ".tmp"))):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed += 1
    if removed:
        fsync_dir(directory)
    return removed
