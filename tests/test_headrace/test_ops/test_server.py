"""The ops HTTP server on loopback: status codes follow the verdicts, /metrics is Prometheus text."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from consumers.runner import Heartbeat
from consumers.stats import Stats
from headrace.ops import OpsUnavailableError, serve
from headrace.ops.config import OpsConfig
from headrace.ops.health import Health
from headrace.ops.metrics import build_registry
from headrace.ops.server import OpsServer
from streams.bus import TopicPartition


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_endpoints_follow_the_heartbeat() -> None:
    stats = Stats()
    health = Health(OpsConfig(stall_after_s=1.0))
    registry, _ = build_registry(stats, health, "process", {})
    with OpsServer("127.0.0.1", 0, registry, health) as server:
        base = f"http://127.0.0.1:{server.port}"
        hb = health.heartbeat
        hb.beat()
        hb.assigned = frozenset({TopicPartition("t", 0)})
        assert get(f"{base}/healthz")[0] == 200
        assert get(f"{base}/readyz")[0] == 200
        hb.enter("work")
        hb.last = time.monotonic() - 2.0
        status, body = get(f"{base}/healthz")
        assert status == 503
        assert json.loads(body)["phase"] == "work"
        assert get(f"{base}/readyz")[0] == 503
        status, text = get(f"{base}/metrics")
        assert status == 200 and "headrace_live 0.0" in text
        assert get(f"{base}/nope")[0] == 404


def test_serve_is_a_no_op_when_the_port_is_zero() -> None:
    with serve(OpsConfig(metrics_port=0), Stats(), Heartbeat(), group="process") as health:
        assert isinstance(health, Health)


def test_serve_reports_a_port_in_use() -> None:
    stats = Stats()
    health = Health(OpsConfig())
    registry, _ = build_registry(stats, health, "x", {})
    with OpsServer("127.0.0.1", 0, registry, health) as busy:
        cfg = OpsConfig(metrics_port=busy.port, host="127.0.0.1")
        with pytest.raises(OpsUnavailableError), serve(cfg, stats, Heartbeat(), group="x"):
            pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_the_server_the_lag_monitor_and_the_latency_histograms() -> None:
    tp = TopicPartition("pages.raw", 3)
    calls: list[str] = []
    closed: list[bool] = []

    def measure(topic: str) -> dict[TopicPartition, int]:
        calls.append(topic)
        if len(calls) == 1:
            raise OSError("broker down")  # counted, never fatal
        return {tp: 17, TopicPartition(topic, 9): 5}  # partition 9 is not ours

    stats, hb = Stats(), Heartbeat()
    cfg = OpsConfig(metrics_port=free_port(), lag_interval_s=0.05)
    with serve(cfg, stats, hb, group="process", measure_lag=measure, close_lag=lambda: closed.append(True)) as health:
        hb.beat()
        hb.assigned = frozenset({tp})
        with stats.timer("process/batch"):
            pass
        base = f"http://127.0.0.1:{cfg.metrics_port}"
        deadline = time.monotonic() + 10
        while health.lag() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health.lag() == {tp: 17}
        status, text = get(f"{base}/metrics")
        assert status == 200
        assert 'headrace_consumer_lag{group="process",partition="3",topic="pages.raw"} 17.0' in text
        assert "headrace_lag_errors_total 1.0" in text
        assert 'headrace_stage_duration_seconds_count{timer="process/batch"} 1.0' in text
        assert get(f"{base}/readyz")[0] == 200
    assert closed == [True]
    with pytest.raises(urllib.error.URLError):  # the server is gone after the block
        get(f"{base}/healthz")


def test_a_producer_health_needs_no_partitions() -> None:
    cfg = OpsConfig(metrics_port=free_port())
    hb = Heartbeat()
    with serve(cfg, Stats(), hb, group="crawl", consumer=False):
        hb.beat()
        assert get(f"http://127.0.0.1:{cfg.metrics_port}/readyz")[0] == 200
