"""Replay checkpoints on the compacted ``replay.progress`` topic (key = input name).

A checkpoint says where reading an input resumes (``offset``, ``skip``) and what was counted up to
there. The replayer writes it in the same transaction as the pages it covers, so after a crash the
last *committed* checkpoint and the committed pages agree: resuming there publishes every page exactly
once. JSON on the wire (``v`` = format version) so operators can read it with any Kafka tool.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec

from streams.bus import Subscriber, TopicPartition

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """The checkpoints could not be read completely; resuming now could publish pages twice."""


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    v: int = FORMAT_VERSION
    input: str
    offset: int = 0  # raw offset where reading resumes
    skip: int = 0  # records to skip inside the gzip member at ``offset`` (single-member gzip files)
    done: bool = False
    records: int = 0
    pages: int = 0
    damaged: int = 0
    skipped: dict[str, int] = msgspec.field(default_factory=dict)
    crawl: str | None = None  # from the warcinfo record, which a resumed read does not see again
    worker: str = ""  # transactional id of the writer
    at: str = ""  # ISO-8601 UTC


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Checkpoint)


def encode_checkpoint(cp: Checkpoint) -> bytes:
    return _encoder.encode(cp)


def decode_checkpoint(data: bytes) -> Checkpoint | None:
    try:
        cp = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return cp if cp.v == FORMAT_VERSION else None


def checkpoint_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")


class _ProgressLog(Protocol):
    """The part of :class:`streams.bus.Bus` that reading checkpoints needs."""

    def partitions_for(self, topic: str) -> int: ...

    def log_end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]: ...

    def subscriber(self, group: str, topics: Sequence[str]) -> Subscriber: ...


def load_checkpoints(
    bus: _ProgressLog,
    topic: str,
    wanted: Iterable[str] | None = None,
    timeout_s: float = 120.0,
) -> dict[str, Checkpoint]:
    """The latest committed checkpoint per input, reading ``topic`` from the start.

    Reads (read_committed) until every partition's position passes its log end offset as it was when
    called: a transaction another worker still has open holds read_committed readers back, and stopping
    at the last stable offset could miss one of our own later commits.
    """
    want = set(wanted) if wanted is not None else None
    tps = [TopicPartition(topic, p) for p in range(bus.partitions_for(topic))]
    ends = bus.log_end_offsets(tps)
    if not any(ends.values()):
        return {}
    sub = bus.subscriber(f"headrace-replay-progress-reader-{uuid.uuid4().hex[:12]}", [topic])
    latest: dict[str, Checkpoint] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            for msg in sub.poll(max_records=5000, timeout=0.5):
                if msg.key is None:
                    continue
                name = msg.key.decode("utf-8", "surrogatepass")
                if want is not None and name not in want:
                    continue
                cp = decode_checkpoint(msg.value)
                if cp is None:
                    log.warning("ignoring unreadable checkpoint for %s at %s[%d]", name, topic, msg.offset)
                    continue
                latest[name] = cp
            assigned = sub.assignment()
            if len(assigned) == len(tps) and all(sub.position(tp) >= ends.get(tp, 0) for tp in tps):
                return latest
            if time.monotonic() > deadline:
                raise CheckpointError(
                    f"could not read {topic} to its end within {timeout_s:g}s; not resuming blind "
                    "(rerun, or pass --no-resume to start every input from the beginning)"
                )
    finally:
        sub.close()
