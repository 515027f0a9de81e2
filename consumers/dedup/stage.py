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

import numpy as np

from compliance.blocklist import Blocklist, EmptyBlocklist
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

    def __init__(
        self,
        index: DedupIndex,
        config: DedupConfig | None = None,
        hasher: MinHasher | None = None,
        blocklist: Blocklist | None = None,
    ) -> None:
        self.config = config or DedupConfig()
        self.index = index
        self.hasher = hasher or MinHasher(self.config.params())
        self.params = self.hasher.params
        self.blocklist = blocklist if blocklist is not None else EmptyBlocklist()
        self._rules_seen = -1

    def entry(self, doc: Document) -> Entry:
        return self._entry(doc)[0]

    def _entry(self, doc: Document) -> tuple[Entry, np.ndarray | None]:
        bands: Sequence[int] = ()
        sig = None
        if self.config.near:
            sig = self.hasher.signature(doc.text)
            if sig is not None:
                bands = self.hasher.band_keys(sig)
        return Entry(doc.doc_id, exact_key_int(doc.text), bands), sig

    def forget_taken_down(self) -> int:
        """Remove documents named by doc-id block rules from the index (once per rule change): a
        taken-down document must not keep its near-duplicates out of the corpus, now that it is gone."""
        version, doc_ids = self.blocklist.blocked_doc_ids()
        if version == self._rules_seen:
            return 0
        removed = sum(1 for d in doc_ids if self.index.remove(d))
        self._rules_seen = version
        if removed:
            log.info("dedup index: forgot %d taken-down documents", removed)
        return removed

    def process_batch(self, docs: Sequence[Document]) -> list[StageResult]:
        self.forget_taken_down()
        out: list[StageResult] = []
        pending: list[tuple[int, Document, Entry]] = []
        results: list[StageResult | None] = [None] * len(docs)
        for i, doc in enumerate(docs):
            entry, sig = self._entry(doc)
            match = self.blocklist.match_signature(sig) if sig is not None else None
            if match is not None:
                # A near-duplicate of taken-down content: refused, and never enters the index.
                results[i] = Drop("blocked", detail=f"{match.kind}:{match.rule_id}", stage="blocklist")
            else:
                pending.append((i, doc, entry))
        verdicts = self.index.check_and_add_many([e for _, _, e in pending])
        for (i, doc, _), verdict in zip(pending, verdicts, strict=True):
            results[i] = self._result(doc, verdict)
        for r in results:
            if r is None:  # pragma: no cover - every slot is filled above
                raise RuntimeError("dedup stage lost a document")
            out.append(r)
        return out

    def _result(self, doc: Document, verdict: object) -> StageResult:
        if not isinstance(verdict, DuplicateOf):
            return doc
        est = 1.0 if verdict.kind == "exact" else self.params.jaccard_from_bands(verdict.bands_matched)
        return Drop(
            EXACT if verdict.kind == "exact" else NEAR,
            values={"jaccard_estimate": round(est, 4), "bands_matched": float(verdict.bands_matched)},
            detail=f"{verdict.kind} duplicate of {verdict.doc_id}",
            duplicate_of=verdict.doc_id,
            stage=STAGE,
        )

    def checkpoint(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.index.checkpoint(offsets)

    def stats(self) -> IndexStats:
        return self.index.stats()

    def close(self) -> None:
        self.index.close()
