"""Operations surface of long-running processes: metrics, health probes, graceful shutdown.

``headrace consume`` uses all of it; any other long-running command (``headrace crawl``) can reuse it::

    heartbeat = Heartbeat()
    with GracefulShutdown(cfg.ops) as shutdown, serve(cfg.ops, stats, heartbeat, group="crawl",
                                                       consumer=False) as health:
        shutdown.health = health
        while not shutdown.stop.is_set():
            heartbeat.beat(); ...; heartbeat.enter("work"); ...

``serve`` is a no-op (it still yields a :class:`Health`) when ``metrics_port`` is 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from consumers.runner import Heartbeat
from consumers.stats import Stats
from headrace.ops.config import OpsConfig
from headrace.ops.health import Health, Verdict
from headrace.ops.lag import LagMonitor, LagScrapeStats, MeasureLag
from headrace.ops.shutdown import EXIT_SHUTDOWN_DEADLINE, GracefulShutdown

__all__ = [
    "EXIT_SHUTDOWN_DEADLINE",
    "GracefulShutdown",
    "Health",
    "Heartbeat",
    "OpsConfig",
    "OpsUnavailableError",
    "Verdict",
    "serve",
]

log = logging.getLogger(__name__)


class OpsUnavailableError(RuntimeError):
    """The metrics server was asked for but cannot run (missing extra, port in use)."""


@contextmanager
def serve(
    config: OpsConfig,
    stats: Stats,
    heartbeat: Heartbeat,
    *,
    group: str,
    info: dict[str, str] | None = None,
    measure_lag: MeasureLag | None = None,
    close_lag: Callable[[], None] | None = None,
    consumer: bool = True,
) -> Iterator[Health]:
    """Run the ops server (and the lag monitor, given ``measure_lag``) for the duration of the block."""
    health = Health(config, heartbeat, consumer=consumer)
    if config.metrics_port == 0:
        yield health
        return
    try:
        from headrace.ops.metrics import build_registry
        from headrace.ops.server import OpsServer
    except ImportError as exc:
        raise OpsUnavailableError(
            f"ops.metrics_port is set but prometheus-client is missing ({exc}); install headrace[ops]"
        ) from exc
    scrape = LagScrapeStats()
    registry, observer = build_registry(stats, health, group, {"group": group, **(info or {})}, scrape)
    stats.observe(observer)
    try:
        server = OpsServer(config.host, config.metrics_port, registry, health)
    except OSError as exc:
        raise OpsUnavailableError(f"cannot serve metrics on {config.host}:{config.metrics_port}: {exc}") from exc
    monitor = None
    if measure_lag is not None:
        monitor = LagMonitor(
            health,
            measure_lag,
            config.lag_interval_s,
            scrape,
            close=close_lag,
        ).start()
    with server:
        try:
            yield health
        finally:
            if monitor is not None:
                monitor.stop()
