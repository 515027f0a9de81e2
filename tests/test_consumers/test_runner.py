"""The poll loop's heartbeat phases and its SIGTERM behaviour, on the in-memory bus."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from consumers.runner import ChannelRunner, Heartbeat
from consumers.stats import Stats
from streams.bus import Message, Outgoing
from streams.codec import decode_as
from streams.memory import InMemoryBus
from streams.records import DeadLetter
from streams.topics import TopicSpec


class Recorder:
    """A handler that records the heartbeat phase it runs in and can set the stop event mid-batch."""

    name = "rec"
    dlq_topic = "dlq"

    def __init__(self, heartbeat: Heartbeat, stop: threading.Event | None = None) -> None:
        self.heartbeat = heartbeat
        self.stop = stop
        self.phases: list[str] = []
        self.batches = 0

    def handle(self, msgs: Sequence[Message]) -> list[Outgoing]:
        self.phases.append(self.heartbeat.phase)
        self.batches += 1
        if self.stop is not None:
            self.stop.set()  # SIGTERM arrives while this batch is being handled
        return [Outgoing("out", m.value, m.key) for m in msgs]

    def close(self) -> None:
        pass


def setup(n: int = 10) -> InMemoryBus:
    bus = InMemoryBus()
    bus.ensure_topics([TopicSpec("in", 2), TopicSpec("out", 2), TopicSpec("dlq", 1)])
    pub = bus.publisher()
    for i in range(n):
        pub.publish("in", f"v{i}".encode(), f"k{i}".encode())
    pub.flush()
    return bus


def test_phases_and_assignment_are_reported() -> None:
    bus = setup()
    hb = Heartbeat()
    assert hb.phase == "starting" and hb.age() == 0.0
    handler = Recorder(hb)
    channel = bus.channel("g", ["in"], transactional_id="t")
    runner = ChannelRunner(channel, handler, Stats(), max_records=3, heartbeat=hb)
    while runner.step(timeout=0):
        pass
    assert set(handler.phases) == {"work"}  # stages run in the short-limit phase
    assert hb.phase == "kafka" and hb.iterations >= 4
    assert {tp.partition for tp in hb.assigned} == {0, 1}
    runner.close()
    assert hb.phase == "stopped"


def test_a_batch_in_progress_is_finished_and_committed_and_the_next_poll_is_not_processed() -> None:
    bus = setup()
    stop = threading.Event()
    hb = Heartbeat()
    handler = Recorder(hb, stop)
    stats = Stats()
    channel = bus.channel("g", ["in"], transactional_id="t")
    runner = ChannelRunner(channel, handler, stats, max_records=3, heartbeat=hb)
    runner.run(stop)
    assert handler.batches == 1
    committed = stats.get("rec/committed")
    assert committed == 3
    assert sum(bus.committed_offsets("g", "in").values()) == committed
    # A batch polled after the stop request is released, not processed.
    runner.step(timeout=0, stop=stop)
    released = stats.get("rec/released-on-stop")
    assert handler.batches == 1 and released > 0
    assert sum(bus.committed_offsets("g", "in").values()) == committed
    # The released messages were rewound, not skipped: the next batch processes them.
    handler.stop = None
    assert runner.step(timeout=0) == released
    assert handler.batches == 2
    assert sum(bus.committed_offsets("g", "in").values()) == committed + released
    runner.close()


class Inflater:
    """Turns every input into an output bigger than the bus accepts (a 5 MiB page can become a
    15 MiB document once cp1252 bytes are re-encoded as UTF-8)."""

    name = "inflate"
    dlq_topic = "dlq"

    def handle(self, msgs: Sequence[Message]) -> list[Outgoing]:
        return [
            Outgoing("out", m.value * 10_000, m.key) if m.value == b"v3" else Outgoing("out", m.value, m.key)
            for m in msgs
        ]

    def close(self) -> None:
        pass


def test_an_output_too_large_for_the_bus_is_dead_lettered_not_retried_forever() -> None:
    bus = InMemoryBus(max_message_bytes=4096)
    bus.ensure_topics([TopicSpec("in", 1), TopicSpec("out", 1), TopicSpec("dlq", 1)])
    pub = bus.publisher()
    for i in range(6):
        pub.publish("in", f"v{i}".encode(), f"k{i}".encode())
    pub.flush()
    stats = Stats()
    runner = ChannelRunner(bus.channel("g", ["in"], transactional_id="t"), Inflater(), stats, max_records=10)
    assert runner.step(timeout=0) == 6  # the batch commits instead of aborting on every retry
    assert [m.value for m in bus.read_all("out")] == [b"v0", b"v1", b"v2", b"v4", b"v5"]
    (letter,) = [decode_as(m.value, DeadLetter) for m in bus.read_all("dlq")]
    assert letter.reason.startswith("too-large") and letter.topic == "out" and letter.key == b"k3"
    assert stats.get("inflate/dlq/too-large") == 1
    runner.close()
