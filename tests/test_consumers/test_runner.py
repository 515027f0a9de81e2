"""The poll loop's heartbeat phases and its SIGTERM behaviour, on the in-memory bus."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from consumers.runner import ChannelRunner, Heartbeat
from consumers.stats import Stats
from streams.bus import Message, Outgoing
from streams.memory import InMemoryBus
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
