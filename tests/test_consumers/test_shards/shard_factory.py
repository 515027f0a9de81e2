"""Builds real sealed shards (through ``OpenShard``) with known random tokens, for loader and merge tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from consumers.shards.manifest import Manifest
from consumers.shards.tokenizer import TokenizerInfo
from consumers.shards.writer import OpenShard
from streams.records import Document

INFO = TokenizerInfo(name="test-vocab", sha256="ab" * 32, vocab_size=1000, eos_id=999)


def make_shard(
    directory: Path,
    partition: int,
    start: int,
    n_docs: int,
    rng: np.random.Generator,
    info: TokenizerInfo = INFO,
    source: str = "docs.unique@testbus0",
) -> tuple[Manifest, list[list[int]]]:
    """One shard of ``n_docs`` documents with random lengths; returns the manifest and the docs' tokens."""
    directory.mkdir(parents=True, exist_ok=True)
    shard = OpenShard(directory, source, partition, start, info)
    docs: list[list[int]] = []
    for i in range(n_docs):
        n = int(rng.integers(1, 300))
        ids = [*rng.integers(0, info.eos_id, size=n).tolist(), info.eos_id]
        doc_id = f"d-p{partition}-{start + i:06d}"
        shard.add(Document(doc_id=doc_id, page_id=doc_id, url=f"https://e.org/{doc_id}", text="x"), ids, start + i)
        docs.append(ids)
    return shard.seal(), docs


def make_corpus(directory: Path, n_shards: int, docs_per_shard: int = 40, seed: int = 0) -> list[list[int]]:
    """``n_shards`` shards over two partitions; returns every document's tokens in shard-id order."""
    rng = np.random.default_rng(seed)
    by_id: dict[str, list[list[int]]] = {}
    for k in range(n_shards):
        m, docs = make_shard(directory, k % 2, (k // 2) * docs_per_shard, docs_per_shard, rng)
        by_id[m.shard_id] = docs
    return [d for sid in sorted(by_id) for d in by_id[sid]]
