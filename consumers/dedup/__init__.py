"""Incremental, deletable deduplication: exact and MinHash-LSH near duplicates behind one index contract.

* :mod:`consumers.dedup.minhash` - deterministic signatures and band keys.
* :mod:`consumers.dedup.index` - the ``DedupIndex`` contract, verdicts and errors.
* :mod:`consumers.dedup.embedded` - on-disk single-process backend (the default).
* :mod:`consumers.dedup.redis_backend` - shared backend for several dedup replicas.
* :mod:`consumers.dedup.stage` - the pipeline stage and its ``DedupConfig``.
"""

from consumers.dedup.index import (
    CorruptIndexError,
    DedupIndex,
    DedupIndexError,
    DuplicateOf,
    Entry,
    IndexMismatchError,
    Unique,
    Verdict,
)
from consumers.dedup.minhash import MinHasher, MinHashParams
from consumers.dedup.stage import DedupConfig, DedupStage, open_index

__all__ = [
    "CorruptIndexError",
    "DedupConfig",
    "DedupIndex",
    "DedupIndexError",
    "DedupStage",
    "DuplicateOf",
    "Entry",
    "IndexMismatchError",
    "MinHashParams",
    "MinHasher",
    "Unique",
    "Verdict",
    "open_index",
]
