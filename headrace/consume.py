"""``headrace consume GROUP``: one stage group as a long-running Kafka consumer.

:func:`consume` is the whole process: graceful shutdown (SIGTERM: finish or release the batch in hand,
commit, leave the group, exit before the grace period ends), the ops server (``/metrics``, ``/healthz``,
``/readyz``) and the consumer-lag monitor around :func:`run_group`, the loop itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from compliance.blocklist import Blocklist, EmptyBlocklist
from compliance.blocklist_store import BlocklistFollower
from consumers.ledger import LedgerSink
from consumers.runner import ChannelRunner, Heartbeat
from consumers.shards.sink import ShardSink
from headrace.config import PipelineConfig
from headrace.ops import GracefulShutdown, serve
from headrace.pipeline import (
    build_dedup_handler,
    build_process_handler,
    headrace_version,
    pipeline_id,
    topics_for,
)
from streams.bus import TopicPartition, lag
from streams.kafka import KafkaBus
from streams.stats import Stats

log = logging.getLogger(__name__)

GROUP_NAMES = ("process", "dedup", "shards", "ledger")


def group_id(config: PipelineConfig, group: str) -> str:
    return f"{config.bus.topic_prefix}headrace-{group}"


def consume(
    group: str,
    config: PipelineConfig,
    *,
    out: Path | None = None,
    instance_id: str,
    static_member: bool = False,
    idle_exit_s: float | None = None,
    create_topics: bool = True,
) -> Stats:
    """Run one stage group until SIGTERM/SIGINT (or ``idle_exit_s`` of idle input). Main thread only."""
    stats = Stats()
    heartbeat = Heartbeat()
    gid = group_id(config, group)
    lag_bus: list[KafkaBus] = []  # created lazily on the monitor's thread, closed when it stops

    def measure(topic: str) -> dict[TopicPartition, int]:
        if not lag_bus:
            lag_bus.append(KafkaBus(config.kafka))
        return lag(lag_bus[0], gid, topic).per_partition

    def close_lag() -> None:
        for bus in lag_bus:
            bus.close()

    info = {"version": headrace_version(), "instance": instance_id, "pipeline": pipeline_id(config)}
    with (
        GracefulShutdown(config.ops) as shutdown,
        serve(config.ops, stats, heartbeat, group=group, info=info, measure_lag=measure, close_lag=close_lag) as health,
    ):
        shutdown.health = health
        run_group(
            group,
            config,
            stop=shutdown.stop,
            out=out,
            instance_id=instance_id,
            static_member=static_member,
            idle_exit_s=idle_exit_s,
            create_topics=create_topics,
            stats=stats,
            heartbeat=heartbeat,
            stopped_at=shutdown.elapsed,
        )
    return stats


def run_group(
    group: str,
    config: PipelineConfig,
    *,
    stop: threading.Event,
    out: Path | None = None,
    instance_id: str,
    static_member: bool = False,
    idle_exit_s: float | None = None,
    create_topics: bool = True,
    stats: Stats | None = None,
    heartbeat: Heartbeat | None = None,
    stopped_at: Callable[[], float | None] | None = None,
) -> Stats:
    """The loop of one stage group. With ``static_member`` the instance id is also the consumer's
    ``group_instance_id`` (KIP-345): a restart under the same id (a StatefulSet pod) rejoins without a
    rebalance, but a static member does not leave the group on close, so use it only with stable ids."""
    stats = stats or Stats()
    heartbeat = heartbeat or Heartbeat()
    topics = topics_for(config)
    bus = KafkaBus(config.kafka)
    if create_topics:
        bus.ensure_topics(topics.specs(config.bus.partitions, config.kafka.min_insync_replicas))
    follower: BlocklistFollower | None = None
    blocklist: Blocklist = EmptyBlocklist()
    gid = group_id(config, group)
    member = instance_id if static_member else None
    log.info("starting group %s as %s on %s", gid, instance_id, config.kafka.bootstrap)
    drain = _DrainClock(stats, stopped_at)
    try:
        if group != "ledger":
            # The takedown rules, kept current from the compacted topic (read to its end first).
            follower = BlocklistFollower(bus, topics.blocklist).start()
            blocklist = follower.ruleset
        if group in ("process", "dedup"):
            if group == "process":
                handler = build_process_handler(config, stats, blocklist)
                source = topics.pages_raw
            else:
                handler = build_dedup_handler(config, stats, out, blocklist)  # type: ignore[assignment]
                source = topics.docs_clean
            channel = bus.channel(gid, [source], transactional_id=f"{gid}-{instance_id}", instance_id=member)
            runner = ChannelRunner(channel, handler, stats, max_records=config.bus.batch_size, heartbeat=heartbeat)
            try:
                runner.run(stop, idle_exit_s)
                drain.loop_exited()
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
            _loop(sink.step, sink.sub.assignment, heartbeat, stop, idle_exit_s)  # type: ignore[union-attr]
            drain.loop_exited()
            heartbeat.enter("work")
            sink.flush_all()  # seal what we have and commit it before leaving the group
            sink.close()
        elif group == "ledger":
            directory = out or Path("ledger")
            ledger = LedgerSink(directory, topics.docs_rejected, topics.dlq)
            ledger.attach(bus.subscriber(gid, [topics.docs_rejected, topics.dlq], instance_id=member))
            _loop(ledger.step, ledger.sub.assignment, heartbeat, stop, idle_exit_s)  # type: ignore[union-attr]
            drain.loop_exited()
            ledger.close()
        else:
            raise ValueError(f"unknown stage group {group!r}")
    finally:
        heartbeat.enter("stopped")
        if follower is not None:
            follower.close()
        bus.close()
    drain.closed()
    return stats


class _DrainClock:
    """Records how long a SIGTERM took to drain: finishing the batch, then commit + close + leave."""

    def __init__(self, stats: Stats, stopped_at: Callable[[], float | None] | None) -> None:
        self.stats = stats
        self.since_stop = stopped_at or (lambda: None)
        self._loop_exit: float | None = None

    def loop_exited(self) -> None:
        self._loop_exit = time.monotonic()
        elapsed = self.since_stop()
        if elapsed is not None:
            self.stats.add_time("ops/shutdown/finish-batch", elapsed)

    def closed(self) -> None:
        elapsed = self.since_stop()
        if elapsed is None or self._loop_exit is None:
            return
        close_s = time.monotonic() - self._loop_exit
        self.stats.add_time("ops/shutdown/commit-close", close_s)
        self.stats.add_time("ops/shutdown/total", elapsed)
        log.warning("drained after the stop request in %.2fs (commit, seal and close: %.2fs)", elapsed, close_s)


def _loop(
    step: Callable[..., int],
    assignment: Callable[[], frozenset[TopicPartition]],
    heartbeat: Heartbeat,
    stop: threading.Event,
    idle_exit_s: float | None,
) -> None:
    idle_since = time.monotonic()
    while not stop.is_set():
        heartbeat.beat()
        heartbeat.enter("work")  # the sinks poll, tokenize, seal and commit in one step
        n = step(timeout=1.0)
        heartbeat.assigned = assignment()
        if n:
            idle_since = time.monotonic()
        elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
            break
