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
