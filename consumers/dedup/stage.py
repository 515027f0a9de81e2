"""The dedup stage: exact and near-duplicate removal against a persistent :class:`DedupIndex`.

It runs in the ``dedup`` stage group (``docs.clean`` -> ``docs.unique``). Before the group commits a
batch's offsets, :meth:`DedupStage.checkpoint` makes the index durable and records those offsets in it
(see ``consumers.handlers.DocumentHandler``), so index state and consumer offsets form one cut.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from consumers.dedup.index import DedupIndex, DuplicateOf, Entry, IndexStats
from consumers.dedup.minhash import MinHasher, MinHashParams, exact_key_int
from consumers.stage import Drop, StageResult
from streams.bus import TopicPartition
from streams.records import Document

log = logging.getLogger(__name__)

STAGE = "dedup"
EXACT = "exact-duplicate"
NEAR = "near-duplicate"
BACKENDS = ("embedded", "redis")


class DedupConfigError(ValueError):
    """Invalid dedup configuration."""


@dataclass(frozen=True)
class DedupConfig:
    enabled: bool = True
    near: bool = True  # MinHash LSH; exact dedup always runs when enabled
    backend: str = "embedded"  # "embedded" (one process, local folder) | "redis" (shared by replicas)
    directory: str = ""  # embedded index folder; "" = <out>/dedup for `headrace run`, ./dedup-index otherwise
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_namespace: str = "headrace"
    redis_buckets: int = 16384  # about expected documents / 100 (see consumers/dedup/redis_backend.py)
    # datatrove's FineWeb MinhashConfig: 5-grams, 14 bands x 8 rows, seed 1 -> threshold ~0.72
    n_grams: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1
    snapshot_min_docs: int = 200_000  # embedded: write a table snapshot after this many new documents

    def params(self) -> MinHashParams:
        return MinHashParams(n_grams=self.n_grams, bands=self.bands, rows=self.rows, seed=self.seed)

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise DedupConfigError(f"dedup.backend must be one of {BACKENDS}, got {self.backend!r}")
        self.params()


def open_index(config: DedupConfig, directory: str | Path | None = None) -> DedupIndex:
    """The index the configuration names (``directory`` overrides ``config.directory``)."""
    config.validate()
    if config.backend == "redis":
        from consumers.dedup.redis_backend import RedisIndex

        return RedisIndex(
            config.redis_url, config.params(), namespace=config.redis_namespace, buckets=config.redis_buckets
        )
    from consumers.dedup.embedded import EmbeddedIndex

    folder = directory or config.directory or "dedup-index"
    return EmbeddedIndex(folder, config.params(), snapshot_min_docs=config.snapshot_min_docs)


class DedupStage:
    """Drops exact and near duplicates of documents already kept; records which kept doc they match."""

    name = STAGE

    def __init__(self, index: DedupIndex, config: DedupConfig | None = None, hasher: MinHasher | None = None) -> None:
        self.config = config or DedupConfig()
        self.index = index
        self.hasher = hasher or MinHasher(self.config.params())
        self.params = self.hasher.params

    def entry(self, doc: Document) -> Entry:
        bands: Sequence[int] = ()
        if self.config.near:
            sig = self.hasher.signature(doc.text)
            if sig is not None:
                bands = self.hasher.band_keys(sig)
        return Entry(doc.doc_id, exact_key_int(doc.text), bands)

    def process_batch(self, docs: Sequence[Document]) -> list[StageResult]:
        entries = [self.entry(d) for d in docs]
        verdicts = self.index.check_and_add_many(entries)
        out: list[StageResult] = []
        for doc, verdict in zip(docs, verdicts, strict=True):
            if isinstance(verdict, DuplicateOf):
                est = 1.0 if verdict.kind == "exact" else self.params.jaccard_from_bands(verdict.bands_matched)
                out.append(
                    Drop(
                        EXACT if verdict.kind == "exact" else NEAR,
                        values={"jaccard_estimate": round(est, 4), "bands_matched": float(verdict.bands_matched)},
                        detail=f"{verdict.kind} duplicate of {verdict.doc_id}",
                        duplicate_of=verdict.doc_id,
                        stage=STAGE,
                    )
                )
            else:
                out.append(doc)
        return out

    def checkpoint(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.index.checkpoint(offsets)

    def stats(self) -> IndexStats:
        return self.index.stats()

    def close(self) -> None:
        self.index.close()
