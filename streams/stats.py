"""Counters and timings keyed ``stage/event/detail`` (e.g. ``quality/drop/gopher_short_doc``).

Lives in ``streams`` because every side (crawler, consumers, headrace) counts with it and ``crawler``
must not import ``consumers``."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Stats:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()
        self._observers: list[Callable[[str, float], None]] = []

    def observe(self, callback: Callable[[str, float], None]) -> None:
        """Call ``callback(key, seconds)`` for every timing recorded from now on (latency histograms)."""
        self._observers.append(callback)

    def inc(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def add_time(self, key: str, seconds: float) -> None:
        with self._lock:
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        for callback in self._observers:
            callback(key, seconds)

    @contextmanager
    def timer(self, key: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add_time(key, time.perf_counter() - t0)

    def merge(self, other: Stats) -> None:
        with self._lock:
            self.counts.update(other.counts)
            for k, v in other.seconds.items():
                self.seconds[k] = self.seconds.get(k, 0.0) + v

    def get(self, key: str) -> int:
        return self.counts.get(key, 0)

    def prefixed(self, prefix: str) -> dict[str, int]:
        return {k: v for k, v in sorted(self.counts.items()) if k.startswith(prefix)}

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                "counts": dict(sorted(self.counts.items())),
                "seconds": {k: round(v, 6) for k, v in sorted(self.seconds.items())},
            }
