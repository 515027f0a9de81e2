"""``headrace consume GROUP``: one stage group as a long-running Kafka consumer."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

from compliance.blocklist import EmptyBlocklist
from consumers.ledger import LedgerSink
from consumers.runner import ChannelRunner
from consumers.shards.sink import ShardSink
from consumers.stats import Stats
from headrace.config import PipelineConfig
from headrace.pipeline import build_dedup_handler, build_process_handler, pipeline_id, topics_for
from streams.kafka import KafkaBus

log = logging.getLogger(__name__)

GROUP_NAMES = ("process", "dedup", "shards", "ledger")


def group_id(config: PipelineConfig, group: str) -> str:
    return f"{config.bus.topic_prefix}headrace-{group}"


def run_group(
    group: str,
    config: PipelineConfig,
    *,
    stop: threading.Event,
    out: Path | None = None,
    instance_id: str,
    idle_exit_s: float | None = None,
    create_topics: bool = True,
    stats: Stats | None = None,
    static_membership: bool = False,
) -> Stats:
    """Run one stage group until ``stop`` is set (or it was idle ``idle_exit_s``).

    ``static_membership``: join as ``group.instance.id = instance_id`` (KIP-345). Use it when the
    instance id is stable across restarts (a StatefulSet pod name): a restarted member takes its
    partitions back at once instead of waiting for the dead one's session to expire, and the broker
    fences the old incarnation. The transactional id is ``<group>-<instance_id>`` either way, so a
    restart with the same id also aborts the dead incarnation's open transaction.
    """
    stats = stats or Stats()
    topics = topics_for(config)
    bus = KafkaBus(config.kafka)
    if create_topics:
        bus.ensure_topics(topics.specs(config.bus.partitions, config.kafka.min_insync_replicas))
    blocklist = EmptyBlocklist()
    gid = group_id(config, group)
    member = instance_id if static_membership else None
    log.info("starting group %s as %s on %s", gid, instance_id, config.kafka.bootstrap)
    try:
        if group in ("process", "dedup"):
            if group == "process":
                handler = build_process_handler(config, stats, blocklist)
                source = topics.pages_raw
            else:
                handler = build_dedup_handler(config, stats)  # type: ignore[assignment]
                source = topics.docs_clean
            channel = bus.channel(gid, [source], transactional_id=f"{gid}-{instance_id}", instance_id=member)
            runner = ChannelRunner(channel, handler, stats, max_records=config.bus.batch_size)
            try:
                runner.run(stop, idle_exit_s)
            finally:
                runner.close()
        elif group == "shards":
            directory = out or Path(config.shards.directory)
            sink = ShardSink(
                replace(config.shards, directory=str(directory)),
                topics,
                bus.bus_id,
                stats,
                side_publisher=bus.publisher(),
                blocklist=blocklist,
                pipeline=pipeline_id(config),
            )
            sink.attach(bus.subscriber(gid, [topics.docs_unique], listener=sink.listener(), instance_id=member))
            _loop(sink.step, stop, idle_exit_s)
            sink.flush_all()  # SIGTERM: seal what we have and commit it before leaving the group
            sink.close()
        elif group == "ledger":
            directory = out or Path("ledger")
            ledger = LedgerSink(directory, topics.docs_rejected, topics.dlq)
            ledger.attach(bus.subscriber(gid, [topics.docs_rejected, topics.dlq]))
            _loop(ledger.step, stop, idle_exit_s)
            ledger.close()
        else:
            raise ValueError(f"unknown stage group {group!r}")
    finally:
        bus.close()
    return stats


def _loop(step: object, stop: threading.Event, idle_exit_s: float | None) -> None:
    idle_since = time.monotonic()
    while not stop.is_set():
        n = step(timeout=1.0)  # type: ignore[operator]
        if n:
            idle_since = time.monotonic()
        elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
            break
