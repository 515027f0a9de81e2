"""The message-bus contract that both the in-memory bus and the Kafka bus implement.

Semantics follow Kafka because production runs on Kafka: topics have partitions, a key always maps
to the same partition, consumer groups split partitions between members and store a *committed*
offset per partition, and the committed offset is the next offset to read (``last + 1``).

Three roles:

* :class:`Publisher` appends messages (replay, crawler, takedown).
* :class:`Subscriber` is one member of a consumer group (sinks such as the shard writer).
* :class:`Channel` is a consume-transform-produce member whose :meth:`Channel.commit` publishes the
  outputs of a batch and commits the consumed offsets as one unit (a Kafka transaction on the Kafka
  bus), so a crash can neither lose nor double a hop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from streams.topics import TopicSpec

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()
    timestamp_ms: int = 0

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = ()


class BusError(RuntimeError):
    """Base class of bus failures."""


class FencedError(BusError):
    """This member lost its partitions (rebalance) or was replaced by a newer instance.

    The batch in flight was not committed; the caller drops its uncommitted work and polls again.
    """


class MessageTooLargeError(BusError):
    """A message exceeds the bus's maximum message size."""


RebalanceCallback = Callable[[frozenset[TopicPartition]], None]


@dataclass
class RebalanceListener:
    """Called from inside ``poll``: revoked first (commit or drop work), then assigned (seek)."""

    on_revoked: RebalanceCallback | None = None
    on_assigned: RebalanceCallback | None = None


@runtime_checkable
class Publisher(Protocol):
    def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> None: ...

    def flush(self, timeout: float | None = None) -> None:
        """Make everything published so far durable; for a transactional publisher, commit it
        atomically (read_committed readers see all of it or none)."""
        ...

    def abort(self) -> None:
        """Transactional publishers: discard everything since the last flush. Others: no-op."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Subscriber(Protocol):
    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]: ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit *next* offsets (``last processed + 1``) for the given partitions."""
        ...

    def committed(self, tp: TopicPartition) -> int | None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    def position(self, tp: TopicPartition) -> int: ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    def close(self) -> None:
        """Leave the group (partitions move to the other members) and release resources."""
        ...


@runtime_checkable
class Channel(Protocol):
    """A consumer-group member that produces outputs and commits them with its input offsets."""

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]: ...

    def send(self, out: Outgoing) -> None:
        """Stage an output; it becomes visible to ``read_committed`` readers only at commit."""
        ...

    def commit(self) -> None:
        """Publish the staged outputs and commit the offsets of everything polled, atomically.

        Raises :class:`FencedError` if the member lost its partitions; nothing was committed then.
        """
        ...

    def abort(self) -> None:
        """Discard staged outputs and rewind to the last committed offsets."""
        ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    def committed(self, tp: TopicPartition) -> int | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class GroupLag:
    group: str
    per_partition: dict[TopicPartition, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.per_partition.values())


class TopicReader(Protocol):
    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]: ...

    def close(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """Factory for the three roles plus the little admin the pipeline needs."""

    #: Stable identity of the log (Kafka cluster id; a fresh id per in-memory bus). Offsets are only
    #: comparable within one bus, so shard ids and manifests carry it.
    @property
    def bus_id(self) -> str: ...

    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None: ...

    def partitions_for(self, topic: str) -> int: ...

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Where a read_committed reader stops (Kafka: the last stable offset)."""
        ...

    def log_end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """End of the log including records of transactions still open (Kafka: the high watermark)."""
        ...

    def committed_offsets(self, group: str, topic: str) -> dict[TopicPartition, int]: ...

    def publisher(self, *, transactional_id: str | None = None) -> Publisher: ...

    def topic_reader(self, topic: str) -> TopicReader:
        """Read all of ``topic`` from the beginning, outside any consumer group, committing nothing."""
        ...

    def subscriber(
        self,
        group: str,
        topics: Sequence[str],
        *,
        listener: RebalanceListener | None = None,
        instance_id: str | None = None,
    ) -> Subscriber: ...

    def channel(
        self,
        group: str,
        topics: Sequence[str],
        *,
        transactional_id: str,
        listener: RebalanceListener | None = None,
        instance_id: str | None = None,
    ) -> Channel: ...

    def close(self) -> None: ...


def lag(bus: Bus, group: str, topic: str) -> GroupLag:
    """Consumer lag of ``group`` on ``topic`` (end offset minus committed offset per partition)."""
    n = bus.partitions_for(topic)
    tps = [TopicPartition(topic, p) for p in range(n)]
    ends = bus.end_offsets(tps)
    committed = bus.committed_offsets(group, topic)
    return GroupLag(group, {tp: max(0, ends.get(tp, 0) - committed.get(tp, 0)) for tp in tps})
