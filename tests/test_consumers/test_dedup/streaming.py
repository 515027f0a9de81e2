"""Helpers that stream documents through the real dedup group (ChannelRunner + DocumentHandler +
DedupStage) on the in-memory bus, with crashes injected at chosen points."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from test_consumers.test_dedup.conftest import random_text

from consumers.dedup.index import DedupIndex
from consumers.dedup.stage import DedupStage
from consumers.handlers import DocumentHandler
from consumers.runner import ChannelRunner
from consumers.stats import Stats
from consumers.textnorm import exact_key
from streams.codec import decode_as, encode
from streams.ids import content_hash, doc_id
from streams.memory import InMemoryBus
from streams.records import Document, Rejection
from streams.topics import Topics


class Crash(BaseException):
    """Stands for kill -9: not an Exception, so no handler or runner catches it."""


def make_doc(url: str, text: str) -> Document:
    h = content_hash(text)
    return Document(doc_id=doc_id(url, h), page_id=url, url=url, text=text, content_hash=h)


def synthetic_corpus(n_base: int = 1200, seed: int = 7) -> list[Document]:
    """Base documents plus exact copies, case/space variants and near copies under other URLs."""
    rng = random.Random(seed)
    docs: list[Document] = []
    bases = [random_text(rng, rng.randint(60, 250)) for _ in range(n_base)]
    for i, text in enumerate(bases):
        docs.append(make_doc(f"https://site{i % 50}.example/{i}", text))
        r = rng.random()
        if r < 0.25:
            docs.append(make_doc(f"https://mirror.example/{i}", text))
        elif r < 0.45:
            docs.append(make_doc(f"https://caps.example/{i}", "  " + text.upper().replace(" ", " \n ")))
        elif r < 0.75:
            words = text.split()
            for _ in range(rng.randint(1, 4)):
                words[rng.randrange(len(words))] = "edited"
            docs.append(make_doc(f"https://near.example/{i}", " ".join(words)))
    rng.shuffle(docs)
    return docs


@dataclass
class StreamResult:
    kept: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    crashes: int = 0


def stream(
    open_index: Callable[[], DedupIndex],
    chunks: Sequence[Sequence[Document]],
    crashes: dict[int, str] | None = None,
    batch: int = 64,
    partitions: int = 1,
) -> StreamResult:
    """Publish each chunk to docs.clean, then run the dedup group over it as one "run" (a process that
    opens the index, drains, closes). ``crashes[chunk] = "mid-batch" | "before-commit" | "torn-write"``
    kills that run during its second batch; a new run then recovers and finishes the chunk.

    One partition by default: which copy of a near-duplicate pair is kept depends on arrival order (the
    first writer wins), and across partitions that order is undefined, in a batch run too."""
    crashes = crashes or {}
    bus = InMemoryBus(default_partitions=partitions)
    topics = Topics()
    bus.ensure_topics(topics.specs(partitions))
    pub = bus.publisher()
    result = StreamResult()
    for ci, chunk in enumerate(chunks):
        for doc in chunk:
            pub.publish(topics.docs_clean, encode(doc), exact_key(doc.text))
        kind = crashes.get(ci)
        if kind is not None:
            runner, index = _runner(bus, topics, open_index, batch)
            _arm(runner, index, kind)
            try:
                while runner.step(timeout=0):
                    pass
            except Crash:
                result.crashes += 1
            runner.channel.close()  # the group notices the dead member (session timeout)
            _abandon(index)
        runner, index = _runner(bus, topics, open_index, batch)
        while runner.step(timeout=0):
            pass
        runner.close()
    for m in bus.read_all(topics.docs_unique):
        result.kept.append(decode_as(m.value, Document).doc_id)
    for m in bus.read_all(topics.docs_rejected):
        result.rejected.append(decode_as(m.value, Rejection))
    return result


def _runner(bus: InMemoryBus, topics: Topics, open_index: Callable[[], DedupIndex], batch: int) -> tuple[Any, Any]:
    index = open_index()
    handler = DocumentHandler("dedup", [DedupStage(index)], topics.docs_unique, topics, Stats())
    channel = bus.channel("headrace-dedup", [topics.docs_clean], transactional_id="dedup-0")
    return ChannelRunner(channel, handler, Stats(), max_records=batch), index


def _arm(runner: ChannelRunner, index: Any, kind: str) -> None:
    """Make the second batch of this run crash at the given point."""
    state = {"batches": 0}
    stage = runner.handler.stages[0]  # type: ignore[attr-defined]
    real_process = stage.process_batch
    real_commit = runner.channel.commit

    def process_batch(docs: Any) -> Any:
        out = real_process(docs)  # the index has admitted the batch's documents (not yet durable)
        state["batches"] += 1
        if kind == "mid-batch" and state["batches"] == 2:
            raise Crash
        return out

    def commit() -> None:
        if state["batches"] == 2 and kind in ("before-commit", "torn-write"):
            if kind == "torn-write" and hasattr(index, "directory"):
                with (index.directory / "records.bin").open("ab") as fh:
                    fh.write(b"\x01" * 37)  # half a record after the checkpoint
            raise Crash  # the index checkpoint is written, the offsets are not committed
        real_commit()

    stage.process_batch = process_batch
    runner.channel.commit = commit  # type: ignore[method-assign]


def _abandon(index: Any) -> None:
    if hasattr(index, "abandon"):
        index.abandon()
    else:
        index._redis.close()
