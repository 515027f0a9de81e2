"""Batch handlers: what one consumer group does with one polled batch.

A handler turns the input messages into output messages (documents, ledger entries, dead letters);
the :class:`consumers.runner.ChannelRunner` sends them and commits the batch atomically. Handlers never
raise for bad input: undecodable messages become dead letters, bad documents become drops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from compliance.blocklist import Blocklist, EmptyBlocklist
from compliance.policy import opted_out
from consumers.extract import Extractor
from consumers.extract_pool import ExtractPool
from consumers.ledger import rejection_for
from consumers.stage import Checkpointing, Drop, Stage, run_chain
from consumers.textnorm import exact_key
from streams.bus import Message, Outgoing, TopicPartition
from streams.codec import DecodeError, decode_as, encode
from streams.records import DeadLetter, Document, Page
from streams.stats import Stats
from streams.topics import Topics

log = logging.getLogger(__name__)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter(msg: Message, reason: str, dlq_topic: str, max_value: int = 1024 * 1024) -> Outgoing:
    """Keep the poison message verbatim (up to 1 MiB) with where it came from and why."""
    dl = DeadLetter(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        reason=reason,
        key=msg.key,
        value=bytes(msg.value[:max_value]) if isinstance(msg.value, bytes | bytearray) else b"",
        at=utcnow(),
    )
    return Outgoing(dlq_topic, encode(dl), msg.key)


class BatchHandler(Protocol):
    name: str
    dlq_topic: str

    def handle(self, msgs: Sequence[Message]) -> list[Outgoing]: ...

    def close(self) -> None: ...


class ProcessHandler:
    """``pages.raw`` -> extract -> stages -> ``docs.clean`` (key: exact-dedup key)."""

    name = "process"

    def __init__(
        self,
        extractor: Extractor | ExtractPool,
        stages: Sequence[Stage],
        topics: Topics,
        stats: Stats,
        blocklist: Blocklist | None = None,
    ) -> None:
        self.extractor = extractor
        self.stages = list(stages)
        self.topics = topics
        self.stats = stats
        self.blocklist = blocklist if blocklist is not None else EmptyBlocklist()
        self.dlq_topic = topics.dlq

    def handle(self, msgs: Sequence[Message]) -> list[Outgoing]:
        out: list[Outgoing] = []
        pages: list[Page] = []
        now = utcnow()
        for m in msgs:
            try:
                page = decode_as(m.value, Page)
            except DecodeError as exc:
                self.stats.inc(f"process/dlq/{exc.reason}")
                out.append(dead_letter(m, str(exc), self.topics.dlq))
                continue
            # A page the crawl-time opt-out policy refused never reaches extraction (nor the shards);
            # its ledger entry carries every signal and the policy's reason.
            refusal = opted_out(page.signals)
            if refusal is not None:
                self.stats.inc("policy/drop/opted-out")
                out.append(self._reject(page, Drop("opted-out", detail=refusal.detail, stage="policy"), now))
                continue
            match = self.blocklist.match_url(page.url)
            if match is not None:
                self.stats.inc("process/drop/blocked")
                drop = Drop("blocked", detail=f"{match.kind}:{match.rule_id}", stage="blocklist")
                out.append(self._reject(page, drop, now))
                continue
            pages.append(page)
        self.stats.inc("process/in", len(pages))
        with self.stats.timer("extract"):
            extracted = self.extractor.extract_batch(pages)
        docs: list[Document] = []
        for page, res in zip(pages, extracted, strict=True):
            if isinstance(res, Drop):
                self.stats.inc(f"{res.stage or 'extract'}/drop/{res.reason}")
                out.append(self._reject(page, res, now))
                continue
            # The same content under another URL (a content-hash or doc-id rule) is refused here,
            # before the costlier stages; the shard writer checks again as the last gate.
            match = self.blocklist.match_document(res)
            if match is not None:
                self.stats.inc("process/drop/blocked")
                drop = Drop("blocked", detail=f"{match.kind}:{match.rule_id}", stage="blocklist")
                out.append(self._reject(res, drop, now))
                continue
            docs.append(res)
        results = run_chain(self.stages, docs, self.stats) if self.stages else list(docs)
        for doc, res in zip(docs, results, strict=True):
            if isinstance(res, Drop):
                self.stats.inc(f"{res.stage}/drop/{res.reason}")
                out.append(self._reject(doc, res, now))
            else:
                self.stats.inc("process/out")
                out.append(Outgoing(self.topics.docs_clean, encode(res), exact_key(res.text)))
        return out

    def _reject(self, item: Page | Document, drop: Drop, now: str) -> Outgoing:
        rej = rejection_for(item, drop, now)
        return Outgoing(self.topics.docs_rejected, encode(rej), rej.id.encode())

    def close(self) -> None:
        self.extractor.close()
        for s in self.stages:
            s.close()


class DocumentHandler:
    """Generic ``Document`` topic -> stages -> output topic (the dedup group uses it)."""

    def __init__(
        self,
        name: str,
        stages: Sequence[Stage],
        output_topic: str,
        topics: Topics,
        stats: Stats,
    ) -> None:
        self.name = name
        self.stages = list(stages)
        self.output_topic = output_topic
        self.topics = topics
        self.stats = stats
        self.dlq_topic = topics.dlq

    def handle(self, msgs: Sequence[Message]) -> list[Outgoing]:
        out: list[Outgoing] = []
        docs: list[Document] = []
        now = utcnow()
        for m in msgs:
            try:
                docs.append(decode_as(m.value, Document))
            except DecodeError as exc:
                self.stats.inc(f"{self.name}/dlq/{exc.reason}")
                out.append(dead_letter(m, str(exc), self.topics.dlq))
        self.stats.inc(f"{self.name}/in", len(docs))
        results = run_chain(self.stages, docs) if self.stages else list(docs)
        for doc, res in zip(docs, results, strict=True):
            if isinstance(res, Drop):
                self.stats.inc(f"{res.stage}/drop/{res.reason}")
                rej = rejection_for(doc, res, now)
                out.append(Outgoing(self.topics.docs_rejected, encode(rej), rej.id.encode()))
            else:
                self.stats.inc(f"{self.name}/out")
                out.append(Outgoing(self.output_topic, encode(res), res.doc_id.encode()))
        self._checkpoint(msgs)
        return out

    def _checkpoint(self, msgs: Sequence[Message]) -> None:
        """Stateful stages make their state durable before the runner commits these offsets."""
        stateful = [s for s in self.stages if isinstance(s, Checkpointing)]
        if not stateful or not msgs:
            return
        offsets: dict[TopicPartition, int] = {}
        for m in msgs:
            offsets[m.tp] = max(offsets.get(m.tp, 0), m.offset + 1)
        with self.stats.timer(f"{self.name}/checkpoint"):
            for s in stateful:
                s.checkpoint(offsets)

    def close(self) -> None:
        for s in self.stages:
            s.close()
