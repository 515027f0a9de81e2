"""Where block rules live: a local JSONL store (embedded corpora) and the compacted Kafka topic.

Both feed a :class:`compliance.blocklist.RuleSet`. The last write for a rule id wins, and a rule with
``active=False`` withdraws an earlier one, which is exactly the semantics of a compacted topic keyed by
rule id, so the file and the topic can be replayed into each other.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec

from compliance.blocklist import RuleSet
from streams.bus import Bus, Publisher, TopicPartition, TopicReader
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


def local_blocklist(out_dir: Path) -> RuleSet:
    """The rules of an embedded corpus (``<out>/compliance/blocklist.jsonl``; empty when it has none)."""
    store = LocalRuleStore(Path(out_dir) / LOCAL_STORE)
    rules = store.ruleset()
    if len(rules):
        log.info("%d block rules in force from %s", len(rules), store.path)
    return rules


def publish_rules(publisher: Publisher, topic: str, rules: Iterable[BlockRule]) -> int:
    n = 0
    for r in rules:
        publisher.publish(topic, encode(r), r.rule_id.encode())
        n += 1
    publisher.flush()
    return n


class BlocklistFeed:
    """Keeps a :class:`RuleSet` up to date from the compacted ``compliance.blocklist`` topic.

    Each process reads the whole topic itself, outside any consumer group (compaction keeps one record
    per rule id, so the topic stays small), and then polls for new rules; ``refresh`` never blocks longer
    than its timeout, so stages can call it between batches.
    """

    def __init__(self, bus: Bus, topic: str, ruleset: RuleSet | None = None) -> None:
        self.ruleset = ruleset if ruleset is not None else RuleSet()
        self.topic = topic
        self._sub: TopicReader = bus.topic_reader(topic)
        self.applied = 0
        self.positions: dict[TopicPartition, int] = {}  # next offset to read, per partition

    def refresh(self, timeout: float = 0.0, max_records: int = 1000) -> int:
        applied = 0
        while True:
            msgs = self._sub.poll(max_records, timeout)
            if not msgs:
                break
            for m in msgs:
                tp = TopicPartition(m.topic, m.partition)
                self.positions[tp] = max(self.positions.get(tp, 0), m.offset + 1)
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


class BlocklistFollower:
    """A :class:`BlocklistFeed` on its own thread: catches up with the topic before the stage starts
    (so a restarted consumer never admits what an earlier takedown blocked), then applies new rules
    within ``interval_s`` of their publication. The rule set it fills is what the stages consult."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        *,
        interval_s: float = 1.0,
        catch_up_timeout_s: float = 30.0,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.feed = BlocklistFeed(bus, topic)
        self.ruleset = self.feed.ruleset
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._catch_up(catch_up_timeout_s)

    def _catch_up(self, timeout_s: float) -> None:
        """Read until every rule published before now is applied (or fail loudly after the timeout)."""
        try:
            parts = self.bus.partitions_for(self.topic)
        except Exception as exc:
            log.info("blocklist topic %s not readable yet (%s): starting with no rules", self.topic, exc)
            return
        # Positions, not counts: compaction leaves gaps, but never removes a partition's last record.
        ends = self.bus.log_end_offsets(TopicPartition(self.topic, p) for p in range(parts))
        deadline = time.monotonic() + timeout_s

        def behind() -> list[TopicPartition]:
            return [tp for tp, end in ends.items() if end > 0 and self.feed.positions.get(tp, 0) < end]

        while behind() and time.monotonic() < deadline:
            self.feed.refresh(timeout=0.5)
        if behind():
            raise BlocklistStoreError(
                f"could not read the block rules of {self.topic} up to its end in {timeout_s:.0f} s "
                f"(behind on {len(behind())} partitions); refusing to start without them"
            )
        log.info("blocklist: %d rules in force from %s", len(self.ruleset), self.topic)

    def start(self) -> BlocklistFollower:
        self._thread = threading.Thread(target=self._run, name="blocklist-follower", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.feed.refresh(timeout=self.interval_s)
                if n:
                    log.info("blocklist: %d new rules (%d in force)", n, len(self.ruleset))
            except Exception:
                log.exception("blocklist refresh failed; retrying")
                self._stop.wait(self.interval_s)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 10)
        self.feed.close()
