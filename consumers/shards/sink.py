"""The shard writer: ``docs.unique`` -> tokenized, sealed shards, exactly once.

Exactly-once rests on three rules (see ``docs/exactly-once.md``):

1. A shard covers a contiguous offset range of *one* source partition and its id is derived from the
   range's start offset; its manifest is created with create-only semantics. Two writers that start at
   the same offset (a zombie and its replacement, or a replay) cannot both seal.
2. Checkpoint order: seal the shard (manifest written last), then commit ``end`` to the group. On
   assignment the writer resumes from ``max(committed, newest manifest end)``, so a crash between
   seal and commit re-reads nothing that is already sealed.
3. The sink is idempotent by ``doc_id``: a document whose id is already in a sealed shard (re-delivered
   after an upstream crash, or replayed) is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import xxhash

from compliance.blocklist import Blocklist, EmptyBlocklist
from consumers.handlers import dead_letter, utcnow
from consumers.ledger import rejection_for
from consumers.shards.manifest import (
    MANIFEST_SUFFIX,
    Manifest,
    ManifestError,
    ShardExistsError,
    read_manifest,
)
from consumers.shards.tokenizer import Tokenizer, load_tokenizer
from consumers.shards.writer import OpenShard, clean_orphans
from consumers.stage import Drop
from streams.bus import (
    BusError,
    Message,
    Outgoing,
    Publisher,
    RebalanceListener,
    Subscriber,
    TopicPartition,
)
from streams.codec import DecodeError, decode_as, encode
from streams.faults import fault_point
from streams.records import Document
from streams.stats import Stats
from streams.topics import Topics

log = logging.getLogger(__name__)

STAGE = "shards"


@dataclass(frozen=True)
class ShardConfig:
    directory: str = "shards"
    tokenizer: str = "gpt2"
    max_tokens: int = 64 * 1024 * 1024  # roll by size (tokens per shard)
    max_bytes: int = 0  # roll by .bin size too (0 = off; tokens x 2 or 4 bytes)
    max_documents: int = 200_000
    max_age_s: float = 300.0  # roll by time, so a quiet partition still seals
    orphan_grace_s: float = 600.0


class DocIdIndex:
    """Which doc_ids are already sealed, and from which page: sorted uint64 arrays plus a small dict of
    recent ids (16 bytes per sealed document instead of a Python dict's ~100).

    The page tells a re-delivery (same page, same doc_id: skip silently) from a second capture of the
    same URL with the same text (another page: a duplicate the ledger must account for).
    """

    def __init__(self) -> None:
        self._keys = np.zeros(0, dtype=np.uint64)
        self._pages = np.zeros(0, dtype=np.uint64)
        self._recent: dict[int, int] = {}

    @staticmethod
    def key(text: str) -> int:
        return xxhash.xxh3_64_intdigest(text.encode())

    def page_of(self, doc_id: str) -> int | None:
        """Page hash the sealed copy came from (0 when unknown), or None if ``doc_id`` is not sealed."""
        k = self.key(doc_id)
        if k in self._recent:
            return self._recent[k]
        i = int(np.searchsorted(self._keys, np.uint64(k)))
        if i < len(self._keys) and int(self._keys[i]) == k:
            return int(self._pages[i])
        return None

    def __contains__(self, doc_id: str) -> bool:
        return self.page_of(doc_id) is not None

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def add_many(self, docs: Sequence[tuple[str, str]]) -> None:
        """Add ``(doc_id, page_id)`` pairs (an empty page_id is recorded as unknown)."""
        for doc_id, page_id in docs:
            self._recent[self.key(doc_id)] = self.key(page_id) if page_id else 0
        if len(self._recent) > 65536:
            self._compact()

    def _compact(self) -> None:
        keys = np.concatenate([self._keys, np.fromiter(self._recent.keys(), dtype=np.uint64)])
        pages = np.concatenate([self._pages, np.fromiter(self._recent.values(), dtype=np.uint64)])
        order = np.argsort(keys, kind="stable")
        keys, pages = keys[order], pages[order]
        keep = np.ones(len(keys), dtype=bool)
        keep[:-1] = keys[:-1] != keys[1:]  # last write wins for a repeated id
        self._keys, self._pages = keys[keep], pages[keep]
        self._recent.clear()


class ShardSink:
    """Consumes ``docs.unique`` with a :class:`Subscriber` and seals per-partition shards."""

    def __init__(
        self,
        config: ShardConfig,
        topics: Topics,
        bus_id: str,
        stats: Stats,
        side_publisher: Publisher | None = None,
        blocklist: Blocklist | None = None,
        tokenizer: Tokenizer | None = None,
        pipeline: str = "",
    ) -> None:
        self.config = config
        self.directory = Path(config.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.topics = topics
        self.source = f"{topics.docs_unique}@{bus_id[:8]}"
        self.stats = stats
        self.side = side_publisher  # ledger entries and dead letters (at-least-once is fine there)
        self.blocklist = blocklist if blocklist is not None else EmptyBlocklist()
        self.tokenizer = tokenizer or load_tokenizer(config.tokenizer)
        self.pipeline = pipeline
        self.sub: Subscriber | None = None
        self.open: dict[TopicPartition, OpenShard] = {}
        self.next_offset: dict[TopicPartition, int] = {}
        self.seen = DocIdIndex()
        self._manifest_ends: dict[int, int] = {}
        self._known_manifests: set[str] = set()
        clean_orphans(self.directory, config.orphan_grace_s)
        self._scan_manifests()

    # -- wiring ------------------------------------------------------------------------------------
    def listener(self) -> RebalanceListener:
        return RebalanceListener(on_revoked=self._on_revoked, on_assigned=self._on_assigned)

    def attach(self, sub: Subscriber) -> None:
        self.sub = sub

    def _scan_manifests(self) -> None:
        """Read manifests we have not seen (other writers on a shared volume add some)."""
        for mpath in sorted(self.directory.glob(f"*{MANIFEST_SUFFIX}")):
            if mpath.name in self._known_manifests:
                continue
            try:
                m = read_manifest(mpath)
            except ManifestError as exc:
                log.error("ignoring unreadable manifest: %s", exc)
                continue
            self._known_manifests.add(mpath.name)
            self._note_manifest(m)

    def _note_manifest(self, m: Manifest) -> None:
        self.seen.add_many([(d.doc_id, d.page_id) for d in m.docs])
        for src in m.sources:
            if src.source == self.source:
                self._manifest_ends[src.partition] = max(self._manifest_ends.get(src.partition, 0), src.end)

    def _on_revoked(self, tps: frozenset[TopicPartition]) -> None:
        for tp in tps:
            shard = self.open.pop(tp, None)
            if shard is not None:
                # Not sealed, not committed: the next owner re-reads these offsets.
                shard.abort()
                self.stats.inc("shards/aborted-on-revoke")
            self.next_offset.pop(tp, None)

    def _on_assigned(self, tps: frozenset[TopicPartition]) -> None:
        if self.sub is None:
            raise BusError("ShardSink.attach() was not called before polling")
        self._scan_manifests()
        for tp in tps:
            committed = self.sub.committed(tp) or 0
            sealed = self._manifest_ends.get(tp.partition, 0)
            start = max(committed, sealed)
            if start != self.sub.position(tp):
                self.sub.seek(tp, start)
            if sealed > committed:
                self.stats.inc("shards/resumed-from-manifest")
                log.info("%s: resuming at sealed offset %d (group committed %d)", tp, sealed, committed)
            self.next_offset[tp] = start

    # -- the loop ----------------------------------------------------------------------------------
    def step(self, timeout: float = 1.0, max_records: int = 512) -> int:
        if self.sub is None:
            raise BusError("ShardSink.attach() was not called")
        msgs = self.sub.poll(max_records, timeout)
        by_tp: dict[TopicPartition, list[Message]] = {}
        for m in msgs:
            by_tp.setdefault(m.tp, []).append(m)
        for tp, batch in by_tp.items():
            self._add_batch(tp, batch)
        self.maybe_seal()
        return len(msgs)

    def _add_batch(self, tp: TopicPartition, batch: list[Message]) -> None:
        """Classify in offset order, tokenize the survivors in one call, then apply in offset order
        so a shard that fills up mid-batch is sealed exactly at the right offset."""
        now = utcnow()
        plan: list[tuple[Message, Document | None]] = []
        batch_pages: dict[str, int] = {}
        # Documents in the partition's open shard count as written: the same doc_id can come back in a
        # later batch before that shard is sealed (the same record in two archives, a re-delivery).
        open_shard = self.open.get(tp)
        open_pages = open_shard.pages if open_shard is not None else {}
        for m in batch:
            try:
                doc = decode_as(m.value, Document)
            except DecodeError as exc:
                self.stats.inc(f"shards/dlq/{exc.reason}")
                self._side(dead_letter(m, str(exc), self.topics.dlq))
                plan.append((m, None))
                continue
            sealed_page = batch_pages.get(doc.doc_id)
            if sealed_page is None and doc.doc_id in open_pages:
                pid = open_pages[doc.doc_id]
                sealed_page = self.seen.key(pid) if pid else 0
            if sealed_page is None:
                sealed_page = self.seen.page_of(doc.doc_id)
            if sealed_page is not None:
                page = self.seen.key(doc.page_id) if doc.page_id else 0
                if sealed_page in (0, page):
                    # The same page again (an upstream re-delivery or a replay): already sealed.
                    self.stats.inc("shards/skip/already-sealed")
                else:
                    # Another capture of the same URL with the same text: one copy is enough, but the
                    # ledger must say where this page went.
                    self.stats.inc("shards/drop/duplicate-capture")
                    drop = Drop(
                        "duplicate-capture",
                        detail="same URL and text as a sealed document from another page",
                        duplicate_of=doc.doc_id,
                        stage=STAGE,
                    )
                    # Ledger it under the page: the doc_id itself is (rightly) in the shards.
                    rej = msgspec.structs.replace(rejection_for(doc, drop, now), id=doc.page_id)
                    self._side_raw(self.topics.docs_rejected, encode(rej), rej.id.encode())
                plan.append((m, None))
                continue
            match = self.blocklist.match_document(doc)
            if match is not None:
                self.stats.inc("shards/drop/blocked")
                drop = Drop("blocked", detail=f"{match.kind}:{match.rule_id}", stage=STAGE)
                rej = rejection_for(doc, drop, now)
                self._side_raw(self.topics.docs_rejected, encode(rej), rej.id.encode())
                plan.append((m, None))
                continue
            batch_pages[doc.doc_id] = self.seen.key(doc.page_id) if doc.page_id else 0
            plan.append((m, doc))
        texts = [d.text for _, d in plan if d is not None]
        with self.stats.timer("shards/tokenize"):
            encoded = iter(self.tokenizer.encode_batch(texts) if texts else [])
        eos = self.tokenizer.eos_id
        shard = self._shard_for(tp, batch[0].offset)
        for m, planned in plan:
            if planned is None:
                shard.advance(m.offset)
            else:
                ids = next(encoded)
                ids.append(eos)
                shard.add(planned, ids, m.offset)
                self.stats.inc("shards/docs")
                self.stats.inc("shards/tokens", len(ids))
            if self._full(shard):
                if not self._seal(tp, shard):
                    return  # fenced: the rest of this batch belongs to the other writer's range
                shard = self._shard_for(tp, m.offset + 1)

    def _shard_for(self, tp: TopicPartition, first_offset: int) -> OpenShard:
        shard = self.open.get(tp)
        if shard is None:
            start = self.next_offset.get(tp, first_offset)
            shard = OpenShard(self.directory, self.source, tp.partition, start, self.tokenizer.info, self.pipeline)
            self.open[tp] = shard
        return shard

    def _full(self, shard: OpenShard) -> bool:
        cfg = self.config
        return (
            shard.tokens >= cfg.max_tokens
            or shard.documents >= cfg.max_documents
            or (cfg.max_bytes > 0 and shard.nbytes >= cfg.max_bytes)
        )

    def maybe_seal(self, force: bool = False) -> int:
        sealed = 0
        now = time.monotonic()
        for tp, shard in list(self.open.items()):
            full = self._full(shard)
            old = now - shard.opened_at >= self.config.max_age_s
            if (force or full or old) and shard.end > shard.start:
                self._seal(tp, shard)
                sealed += 1
        return sealed

    def _seal(self, tp: TopicPartition, shard: OpenShard) -> bool:
        """Seal then commit; returns False if another writer had already sealed this range.

        Order: ledger entries and dead letters of the range are flushed first (so a crash after the
        seal cannot lose them: they are at-least-once), then the shard is sealed (manifest last), then
        ``end`` is committed. A failed commit is harmless: the manifest carries the offset.
        """
        if self.sub is None:
            raise BusError("ShardSink.attach() was not called")
        del self.open[tp]
        if self.side is not None:
            self.side.flush()
        if shard.documents:
            try:
                with self.stats.timer("shards/seal"):
                    manifest = shard.seal()
            except ShardExistsError:
                self._fenced_by_existing(tp, shard)
                return False
            self._known_manifests.add(f"{manifest.shard_id}{MANIFEST_SUFFIX}")
            self._note_manifest(manifest)
            self.stats.inc("shards/sealed")
            fault_point("shards.after-seal")
        else:
            shard.abort()  # only skips, drops and dead letters: nothing to write, just commit
        self.next_offset[tp] = shard.end
        try:
            self.sub.commit({tp: shard.end})
        except BusError as exc:
            # Sealed but not committed (fenced, or the broker is away): whoever owns the partition
            # next resumes from the manifest's end, so nothing is read twice into a shard.
            self.stats.inc("shards/commit-failed")
            log.warning("commit after seal of %s failed (%s); the manifest carries the offset", tp, exc)
        return True

    def _fenced_by_existing(self, tp: TopicPartition, shard: OpenShard) -> None:
        shard.abort()
        self.stats.inc("shards/fenced")
        self._known_manifests.clear()
        self._scan_manifests()
        end = self._manifest_ends.get(tp.partition, shard.start)
        log.warning("%s: shard %s already sealed by another writer; skipping to %d", tp, shard.shard_id, end)
        self.next_offset[tp] = end
        if self.sub is not None and tp in self.sub.assignment():
            self.sub.seek(tp, end)

    def flush_all(self) -> None:
        """Seal every open shard now (end of an embedded run, or SIGTERM)."""
        self.maybe_seal(force=True)

    def abort_all(self) -> None:
        for tp, shard in list(self.open.items()):
            shard.abort()
            del self.open[tp]

    def _side(self, out: Outgoing) -> None:
        if self.side is not None:
            self.side.publish(out.topic, out.value, out.key, out.headers)

    def _side_raw(self, topic: str, value: bytes, key: bytes | None) -> None:
        if self.side is not None:
            self.side.publish(topic, value, key)

    def close(self) -> None:
        self.abort_all()
        if self.sub is not None:
            self.sub.close()
