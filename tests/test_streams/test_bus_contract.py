"""The bus contract, run against the in-memory bus and the real Kafka broker.

Every behaviour the pipeline relies on is pinned here once and checked on both implementations, so the
in-memory fake used by unit tests cannot drift from Kafka.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from consumers.extract import Extractor
from consumers.handlers import ProcessHandler
from consumers.runner import ChannelRunner
from streams.bus import Bus, FencedError, Message, Outgoing, Subscriber, TopicPartition
from streams.codec import decode_as
from streams.kafka import KafkaBus, KafkaSettings
from streams.memory import InMemoryBus
from streams.records import DeadLetter
from streams.stats import Stats
from streams.topics import Topics, TopicSpec

PARTITIONS = 3


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        b: Any = InMemoryBus(default_partitions=PARTITIONS)
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        b = KafkaBus(KafkaSettings(bootstrap=bootstrap, session_timeout_ms=6000))
    yield b
    b.close()


@pytest.fixture
def names() -> Iterator[Any]:
    tag = uuid.uuid4().hex[:8]
    yield lambda base: f"t-{tag}-{base}"


def make_topic(bus: Bus, name: str, partitions: int = PARTITIONS) -> str:
    bus.ensure_topics([TopicSpec(name, partitions)])
    return name


def poll_until(sub: Any, n: int, timeout: float = 30.0) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got.extend(sub.poll(500, 0.5))
    return got


def test_order_per_partition_and_keys(bus: Bus, names: Any) -> None:
    topic = make_topic(bus, names("order"))
    pub = bus.publisher()
    keys = [f"key-{i % 5}".encode() for i in range(60)]
    for i, k in enumerate(keys):
        pub.publish(topic, str(i).encode(), key=k)
    pub.flush()
    sub = bus.subscriber(names("g"), [topic])
    msgs = poll_until(sub, 60)
    sub.close()
    assert len(msgs) == 60
    part_of_key: dict[bytes, int] = {}
    for m in msgs:
        assert m.key is not None
        assert part_of_key.setdefault(m.key, m.partition) == m.partition  # a key has one partition
    for p in range(PARTITIONS):
        values = [int(m.value) for m in msgs if m.partition == p]
        offsets = [m.offset for m in msgs if m.partition == p]
        assert values == sorted(values)  # publish order kept within a partition
        assert offsets == sorted(offsets)


def test_memory_bus_places_keys_like_kafka(kafka_bootstrap: str, names: Any) -> None:
    kbus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap))
    mbus = InMemoryBus(default_partitions=PARTITIONS)
    try:
        placements = []
        for b in (kbus, mbus):
            topic = make_topic(b, names("placement"))
            pub = b.publisher()
            for i in range(40):
                pub.publish(topic, b"v", key=f"url-{i}".encode())
            pub.flush()
            sub = b.subscriber(names("g"), [topic])
            msgs = poll_until(sub, 40)
            sub.close()
            placements.append({m.key: m.partition for m in msgs})
        assert placements[0] == placements[1]
    finally:
        kbus.close()


def test_commit_and_restart_resume_after_last_committed(bus: Bus, names: Any) -> None:
    topic = make_topic(bus, names("resume"), partitions=1)
    group = names("g")
    pub = bus.publisher()
    for i in range(20):
        pub.publish(topic, str(i).encode())
    pub.flush()
    sub = bus.subscriber(group, [topic])
    first = poll_until(sub, 20)
    assert [int(m.value) for m in first] == list(range(20))
    sub.commit({TopicPartition(topic, 0): first[11].offset + 1})  # processed 0..11
    sub.close()
    sub2 = bus.subscriber(group, [topic])
    rest = poll_until(sub2, 8)
    sub2.close()
    assert [int(m.value) for m in rest] == list(range(12, 20))
    assert bus.committed_offsets(group, topic) == {TopicPartition(topic, 0): first[11].offset + 1}


def test_seek_rereads(bus: Bus, names: Any) -> None:
    topic = make_topic(bus, names("seek"), partitions=1)
    pub = bus.publisher()
    for i in range(5):
        pub.publish(topic, str(i).encode())
    pub.flush()
    sub = bus.subscriber(names("g"), [topic])
    msgs = poll_until(sub, 5)
    tp = TopicPartition(topic, 0)
    sub.seek(tp, msgs[2].offset)
    again = poll_until(sub, 3)
    sub.close()
    assert [int(m.value) for m in again] == [2, 3, 4]


def test_large_message_round_trips(bus: Bus, names: Any) -> None:
    topic = make_topic(bus, names("large"), partitions=1)
    payload = bytes(range(256)) * (9 * 1024)  # 2.25 MiB, over Kafka's 1 MiB default
    pub = bus.publisher()
    pub.publish(topic, payload, key=b"k")
    pub.flush()
    sub = bus.subscriber(names("g"), [topic])
    msgs = poll_until(sub, 1)
    sub.close()
    assert len(msgs) == 1 and msgs[0].value == payload


def test_channel_commit_is_atomic_and_abort_rewinds(bus: Bus, names: Any) -> None:
    src = make_topic(bus, names("src"), partitions=1)
    dst = make_topic(bus, names("dst"), partitions=1)
    group = names("g")
    pub = bus.publisher()
    for i in range(6):
        pub.publish(src, str(i).encode())
    pub.flush()
    ch = bus.channel(group, [src], transactional_id=names("tx"))
    reader = bus.subscriber(names("reader"), [dst])
    batch = poll_until(ch, 6)
    for m in batch[:3]:
        ch.send(Outgoing(dst, b"out-" + m.value))
    ch.abort()  # nothing visible, input rewound
    assert poll_until(reader, 1, timeout=3) == []
    again = poll_until(ch, 6)
    assert [int(m.value) for m in again] == list(range(6))
    for m in again:
        ch.send(Outgoing(dst, b"out-" + m.value))
    ch.commit()
    got = poll_until(reader, 6)
    assert sorted(m.value for m in got) == sorted(b"out-" + str(i).encode() for i in range(6))
    assert bus.committed_offsets(group, src) == {TopicPartition(src, 0): again[-1].offset + 1}
    ch.close()
    reader.close()


def test_transactional_publisher_is_all_or_nothing(bus: Bus, names: Any) -> None:
    topic = make_topic(bus, names("txpub"), partitions=1)
    pub = bus.publisher(transactional_id=names("tx"))
    pub.publish(topic, b"aborted")
    pub.abort()
    pub.publish(topic, b"kept-1")
    pub.publish(topic, b"kept-2")
    pub.flush()
    pub.close()
    sub = bus.subscriber(names("g"), [topic])
    msgs = poll_until(sub, 2)
    extra = poll_until(sub, 1, timeout=2)
    sub.close()
    assert [m.value for m in msgs + extra] == [b"kept-1", b"kept-2"]


def test_poison_message_goes_to_dlq(bus: Bus, names: Any) -> None:
    topics = Topics(prefix=f"{names('p')}.")
    bus.ensure_topics(topics.specs(partitions=1))
    pub = bus.publisher()
    pub.publish(topics.pages_raw, b"\x00garbage that is not a record", key=b"bad")
    pub.flush()
    stats = Stats()
    handler = ProcessHandler(Extractor(), [], topics, stats)
    runner = ChannelRunner(
        bus.channel(names("process"), [topics.pages_raw], transactional_id=names("tx")), handler, stats
    )
    deadline = time.monotonic() + 30
    while runner.step(timeout=0.5) == 0 and time.monotonic() < deadline:
        pass
    runner.close()
    dlq = bus.subscriber(names("dlq-reader"), [topics.dlq])
    msgs = poll_until(dlq, 1)
    dlq.close()
    assert len(msgs) == 1
    dead = decode_as(msgs[0].value, DeadLetter)
    assert dead.reason.startswith("bad-magic")
    assert dead.topic == topics.pages_raw and dead.value.startswith(b"\x00garbage")
    assert stats.get("process/dlq/bad-magic") == 1


def test_member_that_lost_its_partitions_cannot_commit() -> None:
    # In-memory only: on Kafka the same rule is exercised by the chaos suite (zombie fencing).
    bus = InMemoryBus(default_partitions=2)
    bus.ensure_topics([TopicSpec("t", 2)])
    a: Subscriber = bus.subscriber("g", ["t"])
    assert a.assignment() == {TopicPartition("t", 0), TopicPartition("t", 1)}
    b = bus.subscriber("g", ["t"])
    with pytest.raises(FencedError):
        a.commit({TopicPartition("t", 0): 1})
    a.poll(timeout=0)
    b.poll(timeout=0)
    assert a.assignment() | b.assignment() == {TopicPartition("t", 0), TopicPartition("t", 1)}
    assert not (a.assignment() & b.assignment())
