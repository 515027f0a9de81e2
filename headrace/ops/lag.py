"""Consumer lag of this member's partitions, measured on a background thread with its own clients.

The poll loop's Kafka clients are not thread-safe and must never wait on a measurement, so the monitor
gets a ``measure(topic) -> {partition: lag}`` function that owns separate clients (an admin client and
a metadata consumer). A failed measurement is counted and logged; it never touches liveness.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from headrace.ops.health import Health
from streams.bus import TopicPartition

log = logging.getLogger(__name__)

MeasureLag = Callable[[str], dict[TopicPartition, int]]


class LagScrapeStats:
    """Counters of the lag monitor itself (errors, last success)."""

    def __init__(self) -> None:
        self.errors = 0
        self.last_success = 0.0

    def success(self) -> None:
        self.last_success = time.time()


class LagMonitor:
    def __init__(
        self,
        health: Health,
        measure: MeasureLag,
        interval_s: float,
        scrape: LagScrapeStats | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.health = health
        self.measure = measure
        self.interval_s = interval_s
        self.scrape = scrape or LagScrapeStats()
        self._close = close
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="headrace-lag", daemon=True)
        self._last_error_log = 0.0

    def start(self) -> LagMonitor:
        self._thread.start()
        return self

    def measure_once(self) -> None:
        assigned = self.health.heartbeat.assigned
        lag: dict[TopicPartition, int] = {}
        for topic in sorted({tp.topic for tp in assigned}):
            per_partition = self.measure(topic)
            lag.update({tp: v for tp, v in per_partition.items() if tp in assigned})
        self.health.set_lag(lag)
        self.scrape.success()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.measure_once()
            except Exception as exc:  # a broker outage must not kill the thread
                self.scrape.errors += 1
                now = time.monotonic()
                if now - self._last_error_log > 300:
                    self._last_error_log = now
                    log.warning("consumer lag measurement failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._close is not None:
            try:
                self._close()
            except Exception:
                log.debug("closing the lag clients failed", exc_info=True)
