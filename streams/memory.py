"""An in-process bus that models Kafka's partitions, offsets, consumer groups and commits.

It is the embedded default (``headrace run``) and the fast fake for unit tests; the same contract
suite runs against it and against real Kafka (``tests/test_streams/test_bus_contract.py``).
Modelled: key -> partition with Kafka's murmur2, per-partition order, group membership with eager
range assignment and generations (a member with a stale generation cannot commit, like Kafka's
``CommitFailedError``), committed offsets as ``last + 1``, atomic produce+commit for channels,
``auto.offset.reset=earliest``, message-size limits, and retention (``trim``) so a long embedded
run does not keep every page in memory. Thread-safe; ``poll`` with a timeout waits for data.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from streams.bus import (
    BusError,
    FencedError,
    Headers,
    Message,
    MessageTooLargeError,
    Outgoing,
    RebalanceListener,
    TopicPartition,
)
from streams.partitioner import partition_for
from streams.topics import MAX_MESSAGE_BYTES, TopicSpec


@dataclass
class _Partition:
    base: int = 0  # offset of records[0]; grows when trimmed
    records: list[tuple[bytes | None, bytes, Headers, int]] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.records)


@dataclass
class _Group:
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    members: dict[str, _GroupMember] = field(default_factory=dict)
    generation: int = 0


class InMemoryBus:
    """Implements :class:`streams.bus.Bus` in process memory."""

    def __init__(self, default_partitions: int = 4, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.default_partitions = default_partitions
        #: Identity of this bus instance; shard ids include it so offsets of different runs never clash.
        self.bus_id = uuid.uuid4().hex
        self.max_message_bytes = max_message_bytes
        self._topics: dict[str, list[_Partition]] = {}
        self._groups: dict[str, _Group] = {}
        self._lock = threading.RLock()
        self._data = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._rr = itertools.count()

    # -- admin -----------------------------------------------------------------------------------
    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        with self._lock:
            for spec in specs:
                if spec.name not in self._topics:
                    self._topics[spec.name] = [_Partition() for _ in range(spec.partitions)]

    def _topic(self, name: str) -> list[_Partition]:
        parts = self._topics.get(name)
        if parts is None:  # auto-create, like a broker with auto.create.topics.enable
            parts = self._topics[name] = [_Partition() for _ in range(self.default_partitions)]
        return parts

    def partitions_for(self, topic: str) -> int:
        with self._lock:
            return len(self._topic(topic))

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        with self._lock:
            return {tp: self._topic(tp.topic)[tp.partition].end for tp in tps}

    def log_end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        # Transactional publishers append only at commit, so no open transaction is ever in the log.
        return self.end_offsets(tps)

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        with self._lock:
            return {tp: self._topic(tp.topic)[tp.partition].base for tp in tps}

    def committed_offsets(self, group: str, topic: str) -> dict[TopicPartition, int]:
        with self._lock:
            g = self._groups.get(group)
            if g is None:
                return {}
            return {tp: off for tp, off in g.committed.items() if tp.topic == topic}

    def read_all(self, topic: str) -> list[Message]:
        """Every retained message of a topic, partition by partition (for tests and tools)."""
        with self._lock:
            out: list[Message] = []
            for p, part in enumerate(self._topic(topic)):
                for i, (k, v, h, ts) in enumerate(part.records):
                    out.append(Message(topic, p, part.base + i, k, v, h, ts))
            return out

    def trim(self, topic: str) -> int:
        """Drop messages every group that consumes ``topic`` has committed past; returns count."""
        dropped = 0
        with self._lock:
            parts = self._topic(topic)
            for p, part in enumerate(parts):
                tp = TopicPartition(topic, p)
                marks = [g.committed[tp] for g in self._groups.values() if tp in g.committed]
                if not marks:
                    continue
                upto = min(*marks, part.end)
                n = upto - part.base
                if n > 0:
                    del part.records[:n]
                    part.base = upto
                    dropped += n
        return dropped

    # -- produce ---------------------------------------------------------------------------------
    def _append(self, topic: str, value: bytes, key: bytes | None, headers: Headers) -> None:
        size = len(value) + (len(key) if key else 0) + sum(len(k) + len(v) for k, v in headers)
        if size > self.max_message_bytes:
            raise MessageTooLargeError(
                f"message of {size} bytes exceeds max_message_bytes={self.max_message_bytes} ({topic})"
            )
        parts = self._topic(topic)
        p = partition_for(key, len(parts)) if key is not None else next(self._rr) % len(parts)
        parts[p].records.append((key, bytes(value), tuple(headers), int(time.time() * 1000)))

    def publisher(self, *, transactional_id: str | None = None) -> _Publisher:
        return _Publisher(self, transactional=transactional_id is not None)

    # -- groups ----------------------------------------------------------------------------------
    def _join(self, member: _GroupMember) -> None:
        with self._lock:
            g = self._groups.setdefault(member.group, _Group())
            g.members[member.member_id] = member
            self._rebalance(g)

    def _leave(self, member: _GroupMember) -> None:
        with self._lock:
            g = self._groups.get(member.group)
            if g is not None and g.members.pop(member.member_id, None) is not None:
                self._rebalance(g)

    def _rebalance(self, g: _Group) -> None:
        """Eager range assignment, as Kafka's RangeAssignor; members pick it up at their next poll."""
        g.generation += 1
        plan: dict[str, set[TopicPartition]] = {m: set() for m in g.members}
        topics = sorted({t for m in g.members.values() for t in m.topics})
        for topic in topics:
            subs = sorted(m for m, mem in g.members.items() if topic in mem.topics)
            n = len(self._topic(topic))
            per, extra = divmod(n, len(subs))
            start = 0
            for i, m in enumerate(subs):
                count = per + (1 if i < extra else 0)
                plan[m].update(TopicPartition(topic, p) for p in range(start, start + count))
                start += count
        for m, mem in g.members.items():
            mem._planned = frozenset(plan[m])
        self._data.notify_all()

    def topic_reader(self, topic: str) -> _Member:
        """Every partition of ``topic`` from its beginning (a group of its own that nothing else joins)."""
        return _Member(self, f"__reader-{uuid.uuid4().hex}", [topic], None, None)

    def subscriber(
        self,
        group: str,
        topics: Sequence[str],
        *,
        listener: RebalanceListener | None = None,
        instance_id: str | None = None,
    ) -> _Member:
        return _Member(self, group, topics, listener, instance_id)

    def channel(
        self,
        group: str,
        topics: Sequence[str],
        *,
        transactional_id: str,
        listener: RebalanceListener | None = None,
        instance_id: str | None = None,
    ) -> _Channel:
        return _Channel(self, group, topics, listener, instance_id)

    def close(self) -> None:
        """Nothing to release; the state lives as long as the object."""


class _Publisher:
    """Appends synchronously; a transactional publisher buffers until ``flush`` (the commit)."""

    def __init__(self, bus: InMemoryBus, transactional: bool = False) -> None:
        self._bus = bus
        self._closed = False
        self._transactional = transactional
        self._pending: list[Outgoing] = []

    def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> None:
        if self._closed:
            raise BusError("publisher is closed")
        if self._transactional:
            size = len(value) + (len(key) if key else 0)
            if size > self._bus.max_message_bytes:
                raise MessageTooLargeError(f"message of {size} bytes exceeds {self._bus.max_message_bytes}")
            self._pending.append(Outgoing(topic, value, key, headers))
            return
        with self._bus._lock:
            self._bus._append(topic, value, key, headers)
            self._bus._data.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        if not self._pending:
            return
        with self._bus._lock:
            for out in self._pending:
                self._bus._append(out.topic, out.value, out.key, out.headers)
            self._pending.clear()
            self._bus._data.notify_all()

    def abort(self) -> None:
        self._pending.clear()

    def close(self) -> None:
        self._pending.clear()
        self._closed = True


class _GroupMember:
    """What subscribers and channels share: membership, assignment and positions."""

    def __init__(
        self,
        bus: InMemoryBus,
        group: str,
        topics: Sequence[str],
        listener: RebalanceListener | None,
        instance_id: str | None,
    ) -> None:
        self._bus = bus
        self.group = group
        self.topics = tuple(topics)
        self.listener = listener or RebalanceListener()
        self.member_id = f"{instance_id or 'member'}-{next(bus._ids):06d}"
        self._planned: frozenset[TopicPartition] = frozenset()
        self._assignment: frozenset[TopicPartition] = frozenset()
        self._generation = -1
        self._positions: dict[TopicPartition, int] = {}
        self._closed = False
        with bus._lock:
            for t in self.topics:
                bus._topic(t)
        bus._join(self)

    # Rebalances are delivered inside poll, as in Kafka.
    def _sync(self) -> None:
        g = self._bus._groups[self.group]
        if self._generation == g.generation:
            return
        if self._assignment and self.listener.on_revoked:
            self.listener.on_revoked(self._assignment)
        with self._bus._lock:
            self._generation = g.generation
            self._assignment = self._planned
            self._positions = {tp: self._initial(tp) for tp in self._assignment}
        if self._assignment and self.listener.on_assigned:
            self.listener.on_assigned(self._assignment)

    def _initial(self, tp: TopicPartition) -> int:
        g = self._bus._groups[self.group]
        part = self._bus._topic(tp.topic)[tp.partition]
        return max(g.committed.get(tp, part.base), part.base)

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        if self._closed:
            raise BusError("subscriber is closed")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            self._sync()
            with self._bus._lock:
                out = self._take(max_records)
                if out or self._generation != self._bus._groups[self.group].generation:
                    if out:
                        return out
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._bus._data.wait(remaining)

    def _take(self, max_records: int) -> list[Message]:
        out: list[Message] = []
        tps = sorted(self._assignment)
        if not tps:
            return out
        start = next(self._bus._rr) % len(tps)
        for tp in tps[start:] + tps[:start]:
            part = self._bus._topic(tp.topic)[tp.partition]
            pos = max(self._positions[tp], part.base)
            while pos < part.end and len(out) < max_records:
                k, v, h, ts = part.records[pos - part.base]
                out.append(Message(tp.topic, tp.partition, pos, k, v, h, ts))
                pos += 1
            self._positions[tp] = pos
            if len(out) >= max_records:
                break
        return out

    def _check_generation(self) -> None:
        if self._generation != self._bus._groups[self.group].generation:
            raise FencedError(f"{self.member_id}: group {self.group} rebalanced; commit refused")

    def committed(self, tp: TopicPartition) -> int | None:
        with self._bus._lock:
            return self._bus._groups[self.group].committed.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._assignment:
            raise BusError(f"cannot seek {tp}: not assigned to {self.member_id}")
        self._positions[tp] = offset

    def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    def assignment(self) -> frozenset[TopicPartition]:
        self._sync()
        return self._assignment

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._leave(self)


class _Member(_GroupMember):
    """A consumer-group member (implements :class:`streams.bus.Subscriber`)."""

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        with self._bus._lock:
            self._check_generation()
            g = self._bus._groups[self.group]
            for tp, off in offsets.items():
                if tp not in self._assignment:
                    raise FencedError(f"{self.member_id} does not own {tp}")
                g.committed[tp] = off


class _Channel(_GroupMember):
    """Consume-transform-produce member; commit appends outputs and offsets under one lock."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._staged: list[Outgoing] = []
        self._consumed: dict[TopicPartition, int] = {}

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        before = self._generation
        msgs = super().poll(max_records, timeout)
        if self._generation != before:
            # A rebalance happened inside poll: anything staged belongs to the old assignment.
            self._staged.clear()
            self._consumed.clear()
        for m in msgs:
            self._consumed[m.tp] = m.offset + 1
        return msgs

    def send(self, out: Outgoing) -> None:
        size = len(out.value) + (len(out.key) if out.key else 0)
        if size > self._bus.max_message_bytes:
            raise MessageTooLargeError(f"message of {size} bytes exceeds {self._bus.max_message_bytes}")
        self._staged.append(out)

    def commit(self) -> None:
        with self._bus._lock:
            try:
                self._check_generation()
            except FencedError:
                self.abort()
                raise
            for out in self._staged:
                self._bus._append(out.topic, out.value, out.key, out.headers)
            g = self._bus._groups[self.group]
            g.committed.update(self._consumed)
            self._staged.clear()
            self._consumed.clear()
            self._bus._data.notify_all()

    def abort(self) -> None:
        self._staged.clear()
        self._consumed.clear()
        with self._bus._lock:
            g = self._bus._groups[self.group]
            for tp in self._assignment:
                part = self._bus._topic(tp.topic)[tp.partition]
                self._positions[tp] = max(g.committed.get(tp, part.base), part.base)
