"""The consume-transform-produce loop of a stage group.

Each iteration: poll a batch, let the handler turn it into outputs, send them, and commit outputs and
input offsets together (:meth:`streams.bus.Channel.commit`). The loop always commits before it polls
again, so a rebalance (which happens inside poll) never strands uncommitted work. A fenced commit
means another member owns the partitions now: the batch was aborted and is simply dropped here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from consumers.faults import fault_point
from consumers.handlers import BatchHandler, dead_letter
from consumers.stats import Stats
from streams.bus import BusError, Channel, FencedError, Message, Outgoing

log = logging.getLogger(__name__)


@dataclass
class Heartbeat:
    """Liveness signal: the loop touches it every iteration; ``/healthz`` reads its age."""

    last: float = 0.0
    busy_since: float = 0.0

    def beat(self) -> None:
        self.last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.last if self.last else 0.0


class ChannelRunner:
    def __init__(
        self,
        channel: Channel,
        handler: BatchHandler,
        stats: Stats,
        *,
        max_records: int = 256,
        poll_timeout: float = 1.0,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.channel = channel
        self.handler = handler
        self.stats = stats
        self.max_records = max_records
        self.poll_timeout = poll_timeout
        self.heartbeat = heartbeat or Heartbeat()
        self._backoff = 0.0

    def step(self, timeout: float | None = None) -> int:
        """One poll-handle-commit round; returns the number of input messages committed."""
        self.heartbeat.beat()
        msgs = self.channel.poll(self.max_records, self.poll_timeout if timeout is None else timeout)
        if not msgs:
            return 0
        self.heartbeat.busy_since = time.monotonic()
        try:
            with self.stats.timer(f"{self.handler.name}/batch"):
                outputs = self._handle(msgs)
            for out in outputs:
                self.channel.send(out)
            fault_point("channel.before-commit")
            self.channel.commit()
        except FencedError as exc:
            self.stats.inc(f"{self.handler.name}/fenced")
            log.warning("%s: batch of %d dropped, partitions moved: %s", self.handler.name, len(msgs), exc)
            return 0
        except BusError as exc:
            self.stats.inc(f"{self.handler.name}/bus-error")
            log.error("%s: batch of %d aborted, will retry: %s", self.handler.name, len(msgs), exc)
            self._backoff = min(max(self._backoff * 2, 0.5), 30.0)
            time.sleep(self._backoff)
            return 0
        finally:
            self.heartbeat.busy_since = 0.0
        self._backoff = 0.0
        self.stats.inc(f"{self.handler.name}/committed", len(msgs))
        return len(msgs)

    def _handle(self, msgs: list[Message]) -> list[Outgoing]:
        try:
            return self.handler.handle(msgs)
        except Exception:
            log.exception("%s: batch failed; retrying message by message", self.handler.name)
        outputs: list[Outgoing] = []
        for m in msgs:
            try:
                outputs.extend(self.handler.handle([m]))
            except Exception as exc:
                self.stats.inc(f"{self.handler.name}/dlq/handler-error")
                reason = f"handler-error:{type(exc).__name__}: {exc}"[:500]
                outputs.append(dead_letter(m, reason, self.handler.dlq_topic))
        return outputs

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> None:
        """Loop until ``stop`` is set (SIGTERM) or, if given, the input has been idle that long."""
        idle_since = time.monotonic()
        while not stop.is_set():
            n = self.step()
            if n:
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                break

    def close(self) -> None:
        self.handler.close()
        self.channel.close()
