"""Where rules live: the local JSONL store and the compacted topic, on both buses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compliance.blocklist_store import BlocklistFollower, LocalRuleStore, local_blocklist, publish_rules
from streams.bus import Bus
from streams.kafka import KafkaBus, KafkaSettings
from streams.memory import InMemoryBus
from streams.records import BlockRule
from streams.topics import Topics


def rule(n: int, active: bool = True) -> BlockRule:
    return BlockRule(rule_id=f"blk-{n}", kind="url", value=f"https://a.example/{n}", request_id="r", active=active)


def test_local_store_last_write_wins_and_survives_a_torn_line(tmp_path: Path) -> None:
    store = LocalRuleStore(tmp_path / "compliance" / "blocklist.jsonl")
    store.append([rule(1), rule(2)])
    store.append([rule(2, active=False)])
    with store.path.open("ab") as fh:
        fh.write(b'{"rule_id": "blk-3", "kin')  # a crash mid-append
    assert [r.rule_id for r in store.rules()] == ["blk-1"]
    rules = local_blocklist(tmp_path)
    assert rules.match_url("https://a.example/1") is not None
    assert rules.match_url("https://a.example/2") is None


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        b: Any = InMemoryBus(default_partitions=2)
    else:
        b = KafkaBus(KafkaSettings(bootstrap=request.getfixturevalue("kafka_bootstrap"), session_timeout_ms=6000))
    yield b
    b.close()


def test_follower_reads_every_earlier_rule_before_it_returns_then_follows(bus: Bus) -> None:
    topics = Topics(prefix=f"bl-{uuid.uuid4().hex[:8]}.")
    bus.ensure_topics([s for s in topics.specs(2) if s.name == topics.blocklist])
    pub = bus.publisher()
    publish_rules(pub, topics.blocklist, [rule(n) for n in range(50)])
    follower = BlocklistFollower(bus, topics.blocklist, interval_s=0.2).start()
    try:
        # No waiting: a stage started now already refuses everything blocked before it started.
        assert len(follower.ruleset) == 50
        publish_rules(pub, topics.blocklist, [rule(7, active=False), rule(99)])
        deadline = time.monotonic() + 30
        while follower.ruleset.match_url("https://a.example/99") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert follower.ruleset.match_url("https://a.example/99") is not None
        assert follower.ruleset.match_url("https://a.example/7") is None
    finally:
        follower.close()
        pub.close()
