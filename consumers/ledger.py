"""The decision ledger: one ``Rejection`` per dropped page or document."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO

from consumers.stage import Drop
from streams.bus import FencedError, Subscriber, TopicPartition
from streams.codec import DecodeError, decode_as, to_json
from streams.records import DeadLetter, Document, Lineage, Page, Rejection, Signal

log = logging.getLogger(__name__)

#: Characters of a dropped document's text kept in its ledger entry (the scorecard's samples).
EXCERPT_CHARS = 300


def rejection_for(item: Page | Document, drop: Drop, at: str) -> Rejection:
    ident = item.doc_id if isinstance(item, Document) else item.page_id
    lineage: Lineage = item.lineage
    signals: tuple[Signal, ...] = item.signals
    return Rejection(
        id=ident,
        url=item.url,
        stage=drop.stage,
        reason=drop.reason,
        values={k: float(v) for k, v in drop.values.items()},
        detail=drop.detail,
        duplicate_of=drop.duplicate_of,
        lineage=lineage,
        signals=signals,
        at=at,
        excerpt=item.text[:EXCERPT_CHARS] if isinstance(item, Document) else "",
        chars=len(item.text) if isinstance(item, Document) else 0,
    )


class JsonlLedger:
    """Appends rejections to a JSONL file (embedded mode and the ``ledger`` consumer group)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[bytes] = path.open("ab")
        self.count = 0

    def write(self, rejection: Rejection) -> None:
        self.write_raw(to_json(rejection))

    def write_raw(self, line: bytes) -> None:
        self._fh.write(line + b"\n")
        self.count += 1

    def flush(self) -> None:
        self._fh.flush()

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


class LedgerSink:
    """Consumes ``docs.rejected`` and ``dlq`` into JSONL files; commits after an fsync, so every entry
    is on disk at least once (the ledger is keyed by id, so a repeated line is harmless)."""

    def __init__(self, directory: Path, rejected_topic: str, dlq_topic: str) -> None:
        self.rejected = JsonlLedger(directory / "rejected.jsonl")
        self.dlq = JsonlLedger(directory / "dlq.jsonl")
        self.rejected_topic = rejected_topic
        self.dlq_topic = dlq_topic
        self.sub: Subscriber | None = None

    def attach(self, sub: Subscriber) -> None:
        self.sub = sub

    def step(self, timeout: float = 1.0, max_records: int = 1000) -> int:
        if self.sub is None:
            raise RuntimeError("LedgerSink.attach() was not called")
        msgs = self.sub.poll(max_records, timeout)
        if not msgs:
            return 0
        offsets: dict[TopicPartition, int] = {}
        for m in msgs:
            offsets[m.tp] = m.offset + 1
            target = self.dlq if m.topic == self.dlq_topic else self.rejected
            # Each topic holds one record type: anything else (a Page published to docs.rejected by
            # mistake) is a dead letter, not a ledger line.
            try:
                rec: Rejection | DeadLetter = (
                    decode_as(m.value, DeadLetter) if m.topic == self.dlq_topic else decode_as(m.value, Rejection)
                )
            except DecodeError as exc:
                bad = DeadLetter(topic=m.topic, partition=m.partition, offset=m.offset, reason=str(exc))
                self.dlq.write_raw(to_json(bad))
                continue
            target.write_raw(to_json(rec))
        self.rejected.sync()
        self.dlq.sync()
        try:
            self.sub.commit(offsets)
        except FencedError:
            log.info("ledger commit refused after rebalance; entries will be written again")
        return len(msgs)

    def close(self) -> None:
        self.rejected.close()
        self.dlq.close()
        if self.sub is not None:
            self.sub.close()
