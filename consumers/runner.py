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

import msgspec

from consumers.handlers import BatchHandler, dead_letter, utcnow
from streams.bus import BusError, Channel, FencedError, Message, MessageTooLargeError, Outgoing, TopicPartition
from streams.codec import encode
from streams.faults import fault_point
from streams.records import DeadLetter
from streams.stats import Stats

log = logging.getLogger(__name__)

#: Bytes of a too-large output kept in its dead letter (the rest can be rebuilt from the input).
TOO_LARGE_KEPT = 1024 * 1024


@dataclass
class Heartbeat:
    """Liveness signal of a poll loop, read by ``/healthz`` from another thread (plain attribute reads).

    ``phase`` says what the loop is doing since ``last``: ``work`` (our own code: stages, tokenizing,
    sealing), ``kafka`` (poll, commit: waiting on the broker) or ``backoff``. A health check applies a
    short stall limit to ``work`` (a hung stage) and a long one to ``kafka``, so a broker outage does not
    restart every consumer. ``assigned`` is the member's partitions after the last poll.
    """

    last: float = 0.0
    phase: str = "starting"
    assigned: frozenset[TopicPartition] = frozenset()
    iterations: int = 0

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.last = time.monotonic()

    def beat(self) -> None:
        """One loop iteration begins (it polls first)."""
        self.iterations += 1
        self.enter("kafka")

    def age(self) -> float:
        """Seconds in the current phase (0 before the loop starts)."""
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

    def step(self, timeout: float | None = None, stop: threading.Event | None = None) -> int:
        """One poll-handle-commit round; returns the number of input messages committed.

        If ``stop`` is already set when the poll returns, the polled batch is released unprocessed
        (nothing sent, nothing committed: the next owner reads it again), so SIGTERM costs no extra
        batch. A batch that has started is finished and committed.
        """
        hb = self.heartbeat
        hb.beat()
        msgs = self.channel.poll(self.max_records, self.poll_timeout if timeout is None else timeout)
        hb.assigned = self.channel.assignment()
        if not msgs:
            return 0
        if stop is not None and stop.is_set():
            # Rewind, so that nothing polled but unprocessed can ever be committed by a later batch.
            self.channel.abort()
            self.stats.inc(f"{self.handler.name}/released-on-stop", len(msgs))
            return 0
        try:
            hb.enter("work")
            with self.stats.timer(f"{self.handler.name}/batch"):
                outputs = self._handle(msgs)
            hb.enter("kafka")
            for out in outputs:
                self._send(out)
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
            hb.enter("backoff")
            if stop is not None:
                stop.wait(self._backoff)
            else:
                time.sleep(self._backoff)
            return 0
        self._backoff = 0.0
        self.stats.inc(f"{self.handler.name}/committed", len(msgs))
        return len(msgs)

    def _send(self, out: Outgoing) -> None:
        """Send one output; one too large for the bus goes to the DLQ instead (capped), because
        retrying the batch would fail the same way forever and stall the partition."""
        try:
            self.channel.send(out)
        except MessageTooLargeError as exc:
            self.stats.inc(f"{self.handler.name}/dlq/too-large")
            log.warning("%s: output for %s too large, dead-lettered: %s", self.handler.name, out.topic, exc)
            dl = DeadLetter(
                topic=out.topic,
                partition=-1,
                offset=-1,
                reason=f"too-large: {exc}"[:500],
                key=out.key,
                value=bytes(out.value[:TOO_LARGE_KEPT]),
                at=utcnow(),
            )
            try:
                self.channel.send(Outgoing(self.handler.dlq_topic, encode(dl), out.key))
            except MessageTooLargeError:  # a bus limit below TOO_LARGE_KEPT: keep the reason only
                dl = msgspec.structs.replace(dl, value=b"")
                self.channel.send(Outgoing(self.handler.dlq_topic, encode(dl), out.key))

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
            n = self.step(stop=stop)
            if n:
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                break

    def close(self) -> None:
        self.heartbeat.enter("stopped")
        self.handler.close()
        self.channel.close()
