"""Liveness and readiness verdicts from the loop's heartbeat (no Kafka involved)."""

from __future__ import annotations

import time

from consumers.runner import Heartbeat
from headrace.ops.config import OpsConfig
from headrace.ops.health import Health
from streams.bus import TopicPartition

TP = TopicPartition("pages.raw", 0)


def health(**kw: float) -> Health:
    return Health(
        OpsConfig(
            stall_after_s=kw.get("stall", 5.0),
            kafka_stall_after_s=kw.get("kafka", 50.0),
            ready_max_lag=int(kw.get("max_lag", 0)),
        )
    )


def test_starting_is_alive_but_not_ready() -> None:
    h = health()
    assert h.live().ok
    assert not h.ready().ok and h.ready().reason == "starting"


def test_stuck_work_phase_fails_liveness_after_the_stall_limit() -> None:
    h = health(stall=5.0)
    h.heartbeat.beat()
    h.heartbeat.assigned = frozenset({TP})
    h.heartbeat.enter("work")
    assert h.live().ok and h.ready().ok
    h.heartbeat.last = time.monotonic() - 6.0  # six seconds inside one batch
    verdict = h.live()
    assert not verdict.ok
    assert "work" in verdict.reason and verdict.detail["limit_s"] == 5.0
    assert not h.ready().ok


def test_waiting_on_kafka_gets_the_longer_limit() -> None:
    h = health(stall=5.0, kafka=50.0)
    h.heartbeat.beat()  # phase "kafka": polling or committing
    h.heartbeat.last = time.monotonic() - 30.0
    assert h.live().ok
    h.heartbeat.last = time.monotonic() - 51.0
    assert not h.live().ok


def test_ready_needs_partitions_and_not_stopping() -> None:
    h = health()
    h.heartbeat.beat()
    assert h.ready().reason.startswith("no partitions")
    h.heartbeat.assigned = frozenset({TP})
    assert h.ready().ok
    h.stopping.set()
    assert not h.ready().ok and h.ready().reason == "shutting down"
    assert h.live().ok  # draining is not a liveness failure


def test_producers_need_no_partitions() -> None:
    h = Health(OpsConfig(), Heartbeat(), consumer=False)
    h.heartbeat.beat()
    assert h.ready().ok


def test_ready_max_lag_gates_readiness_on_own_partitions_only() -> None:
    h = health(max_lag=100)
    h.heartbeat.beat()
    h.heartbeat.assigned = frozenset({TP})
    assert h.ready().reason == "lag not measured yet"
    other = TopicPartition("pages.raw", 1)
    h.set_lag({TP: 10, other: 10_000})
    assert h.ready().ok
    h.set_lag({TP: 101})
    assert not h.ready().ok and "catching up" in h.ready().reason
