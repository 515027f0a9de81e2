"""Settings of the operations surface: metrics/health server, liveness limits, graceful shutdown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpsConfig:
    #: Port of the ``/metrics``, ``/healthz`` and ``/readyz`` server; 0 turns it off.
    metrics_port: int = 0
    #: Address to bind. Loopback by default; containers set ``0.0.0.0`` so probes and scrapes reach it.
    host: str = "127.0.0.1"
    #: Liveness fails when the loop spends longer than this in our own code (a stage, tokenizing,
    #: sealing) without finishing the batch: a hung extraction. Must exceed the slowest legitimate batch.
    stall_after_s: float = 60.0
    #: The same limit while the loop waits on Kafka (poll, commit, retry backoff). Longer, so a broker
    #: outage does not restart every consumer at once; keep it below ``max_poll_interval_ms``.
    kafka_stall_after_s: float = 240.0
    #: Readiness also requires consumer lag <= this on the member's partitions (0: ignore lag).
    ready_max_lag: int = 0
    #: How often the lag of the member's partitions is computed (off the poll loop, own clients).
    lag_interval_s: float = 30.0
    #: The pod's ``terminationGracePeriodSeconds``: SIGTERM to SIGKILL.
    shutdown_grace_s: float = 30.0
    #: The process exits on its own at the latest ``grace - margin`` after SIGTERM, even if a stage hangs.
    shutdown_margin_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"ops.metrics_port must be 0..65535, got {self.metrics_port}")
        for name in ("stall_after_s", "kafka_stall_after_s", "lag_interval_s", "shutdown_grace_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ops.{name} must be > 0")
        if not 0 <= self.shutdown_margin_s < self.shutdown_grace_s:
            raise ValueError("ops.shutdown_margin_s must be >= 0 and smaller than ops.shutdown_grace_s")

    @property
    def shutdown_deadline_s(self) -> float:
        """Seconds after SIGTERM at which a process that has not drained aborts."""
        return self.shutdown_grace_s - self.shutdown_margin_s
