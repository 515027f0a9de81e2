"""Liveness and readiness, decided from what the poll loop last reported; never from Kafka calls.

``/healthz`` (liveness) only reads the loop's :class:`~consumers.runner.Heartbeat`: a loop stuck in a
stage longer than ``stall_after_s`` (or waiting on Kafka longer than ``kafka_stall_after_s``) is not
alive, and the kubelet restarts the container. ``/readyz`` says the member is doing useful work: the
loop runs, the member holds partitions (an empty assignment also means a rebalance is in progress),
it is not shutting down and, if configured, its lag is small enough.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from consumers.runner import Heartbeat
from headrace.ops.config import OpsConfig
from streams.bus import TopicPartition


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


class Health:
    def __init__(self, config: OpsConfig, heartbeat: Heartbeat | None = None, *, consumer: bool = True) -> None:
        self.config = config
        self.heartbeat = heartbeat or Heartbeat()
        #: Consumers need partitions to be ready; a producer (crawl) does not.
        self.consumer = consumer
        self.stopping = threading.Event()
        self._lag: dict[TopicPartition, int] | None = None
        self._lock = threading.Lock()

    # -- written by the lag monitor ------------------------------------------------------------------
    def set_lag(self, lag: dict[TopicPartition, int]) -> None:
        with self._lock:
            self._lag = dict(lag)

    def lag(self) -> dict[TopicPartition, int] | None:
        with self._lock:
            return None if self._lag is None else dict(self._lag)

    # -- verdicts --------------------------------------------------------------------------------------
    def live(self) -> Verdict:
        hb = self.heartbeat
        age = hb.age()
        limit = self.config.stall_after_s if hb.phase == "work" else self.config.kafka_stall_after_s
        detail = {"phase": hb.phase, "phase_age_s": round(age, 3), "limit_s": limit, "iterations": hb.iterations}
        if hb.phase in ("starting", "stopped"):
            return Verdict(True, hb.phase, detail)
        if age > limit:
            return Verdict(False, f"poll loop stalled in phase {hb.phase!r} for {age:.1f}s (limit {limit:g}s)", detail)
        return Verdict(True, "ok", detail)

    def ready(self) -> Verdict:
        alive = self.live()
        hb = self.heartbeat
        detail = dict(alive.detail, partitions=len(hb.assigned))
        if self.stopping.is_set():
            return Verdict(False, "shutting down", detail)
        if not alive.ok:
            return Verdict(False, alive.reason, detail)
        if hb.phase == "starting" or hb.iterations == 0:
            return Verdict(False, "starting", detail)
        if self.consumer and not hb.assigned:
            return Verdict(False, "no partitions assigned (joining or rebalancing)", detail)
        if self.config.ready_max_lag > 0:
            lag = self.lag()
            if lag is None:
                return Verdict(False, "lag not measured yet", detail)
            mine = sum(v for tp, v in lag.items() if tp in hb.assigned)
            detail["lag"] = mine
            if mine > self.config.ready_max_lag:
                return Verdict(False, f"catching up: lag {mine} > {self.config.ready_max_lag}", detail)
        return Verdict(True, "ok", detail)
