"""Where block rules live: a local JSONL store (embedded corpora) and the compacted Kafka topic.

Both feed a :class:`compliance.blocklist.RuleSet`. The last write for a rule id wins, and a rule with
``active=False`` withdraws an earlier one, which is exactly the semantics of a compacted topic keyed by
rule id, so the file and the topic can be replayed into each other.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import msgspec

from compliance.blocklist import RuleSet
from streams.bus import Bus, Publisher, Subscriber
from streams.codec import DecodeError, decode_as, encode
from streams.records import BlockRule

log = logging.getLogger(__name__)

_json = msgspec.json.Encoder()
_decode_rule = msgspec.json.Decoder(BlockRule)

#: Where an embedded corpus keeps its rules, relative to the run's output folder.
LOCAL_STORE = Path("compliance") / "blocklist.jsonl"


class BlocklistStoreError(RuntimeError):
    """The rule store cannot be read or written."""


class LocalRuleStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, rules: Iterable[BlockRule]) -> int:
        rules = list(rules)
        if not rules:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                for r in rules:
                    fh.write(_json.encode(r) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return len(rules)

    def rules(self) -> list[BlockRule]:
        """The effective rules: last write per rule id, withdrawn ones removed."""
        latest: dict[str, BlockRule] = {}
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rule = _decode_rule.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    # A torn last line (crash mid-append) must not hide every other rule.
                    log.error("%s:%d: unreadable block rule skipped: %s", self.path, n, exc)
                    continue
                latest[rule.rule_id] = rule
        return [r for r in latest.values() if r.active]

    def ruleset(self) -> RuleSet:
        return RuleSet(self.rules())


def publish_rules(publisher: Publisher, topic: str, rules: Iterable[BlockRule]) -> int:
    n = 0
    for r in rules:
        publisher.publish(topic, encode(r), r.rule_id.encode())
        n += 1
    publisher.flush()
    return n


class BlocklistFeed:
    """Keeps a :class:`RuleSet` up to date from the compacted ``compliance.blocklist`` topic.

    Each process reads the whole topic with its own throw-away group (compaction keeps one record per
    rule id, so the topic stays small) and then polls for new rules; ``refresh`` never blocks longer
    than its timeout, so stages can call it between batches.
    """

    def __init__(self, bus: Bus, topic: str, group: str, ruleset: RuleSet | None = None) -> None:
        self.ruleset = ruleset or RuleSet()
        self.topic = topic
        self._sub: Subscriber = bus.subscriber(group, [topic])
        self.applied = 0

    def refresh(self, timeout: float = 0.0, max_records: int = 1000) -> int:
        applied = 0
        while True:
            msgs = self._sub.poll(max_records, timeout)
            if not msgs:
                break
            for m in msgs:
                try:
                    self.ruleset.apply(decode_as(m.value, BlockRule))
                    applied += 1
                except DecodeError as exc:
                    log.error("blocklist topic %s[%d]@%d: %s", m.topic, m.partition, m.offset, exc)
            timeout = 0.0
        self.applied += applied
        return applied

    def close(self) -> None:
        self._sub.close()
