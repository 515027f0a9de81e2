"""The Kafka bus on kafka-python, with every delivery-relevant setting explicit.

kafka-python's consumer defaults are unsafe for exactly-once (auto-commit on, read_uncommitted), so
:func:`consumer_config` and :func:`producer_config` spell out the settings we rely on and a unit test
guards them. Kafka-to-Kafka hops use transactions (``send_offsets_to_transaction`` with the consumer's
group metadata, KIP-447), so a zombie member that lost its partitions cannot commit. Because kafka-python
implements KIP-890 only partially, an indefinite error (timeout) inside a transaction closes and
re-creates the producer with the same ``transactional_id`` (which fences the old epoch) before the next
transaction, as Jepsen's Bufstream analysis recommends; the sink is idempotent on its own as well.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CommitFailedError,
    FencedInstanceIdError,
    IllegalGenerationError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    ProducerFencedError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from streams.bus import (
    BusError,
    FencedError,
    Headers,
    Message,
    MessageTooLargeError,
    Outgoing,
    RebalanceListener,
    TopicPartition,
)
from streams.topics import MAX_MESSAGE_BYTES, TopicSpec

log = logging.getLogger(__name__)

_FENCING = (
    CommitFailedError,
    IllegalGenerationError,
    UnknownMemberIdError,
    RebalanceInProgressError,
    FencedInstanceIdError,
)


@dataclass(frozen=True)
class KafkaSettings:
    """Connection and client settings shared by every Kafka client of one process."""

    bootstrap: str = "127.0.0.1:9092"
    client_id: str = "headrace"
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str | None = None  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    replication_factor: int = 1
    min_insync_replicas: int = 1
    max_message_bytes: int = MAX_MESSAGE_BYTES
    session_timeout_ms: int = 45_000
    max_poll_interval_ms: int = 300_000
    transaction_timeout_ms: int = 60_000
    request_timeout_ms: int = 30_000

    def common(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.sasl_mechanism:
            cfg["sasl_mechanism"] = self.sasl_mechanism
            cfg["sasl_plain_username"] = self.sasl_username
            cfg["sasl_plain_password"] = self.sasl_password
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, key):
                cfg[key] = getattr(self, key)
        if self.security_protocol in ("SSL", "SASL_SSL"):
            cfg["ssl_check_hostname"] = True
        return cfg


def producer_config(settings: KafkaSettings, transactional_id: str | None = None) -> dict[str, Any]:
    """Producer settings: idempotent, acks=all, zstd, requests large enough for raw HTML."""
    cfg = settings.common()
    cfg.update(
        acks="all",
        enable_idempotence=True,
        compression_type="zstd",
        max_request_size=settings.max_message_bytes,
        linger_ms=10,
        batch_size=512 * 1024,
        retries=2**31 - 1,
        max_in_flight_requests_per_connection=5,
    )
    if transactional_id:
        cfg["transactional_id"] = transactional_id
        cfg["transaction_timeout_ms"] = settings.transaction_timeout_ms
    return cfg


def consumer_config(settings: KafkaSettings, group: str | None, instance_id: str | None = None) -> dict[str, Any]:
    """Consumer settings: manual commits only, read_committed, fetch sizes that fit a full page."""
    cfg = settings.common()
    cfg.update(
        group_id=group,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=settings.max_message_bytes + 1024 * 1024,
        fetch_max_bytes=max(52_428_800, 2 * settings.max_message_bytes),
        max_poll_records=500,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 3),
        max_poll_interval_ms=settings.max_poll_interval_ms,
    )
    if instance_id:
        cfg["group_instance_id"] = instance_id  # static membership: rolling restarts don't rebalance
    return cfg


def _ktp(tp: TopicPartition) -> KTopicPartition:
    return KTopicPartition(tp.topic, tp.partition)


def _tp(ktp: Any) -> TopicPartition:
    return TopicPartition(ktp.topic, ktp.partition)


def _message(rec: Any) -> Message:
    headers: Headers = tuple((k, v if v is not None else b"") for k, v in (rec.headers or ()))
    return Message(rec.topic, rec.partition, rec.offset, rec.key, rec.value, headers, rec.timestamp)


class _ListenerAdapter(ConsumerRebalanceListener):
    """Records rebalance events on kafka-python's IO thread; the member replays them in ``poll``.

    kafka-python 3 runs listeners on its IO thread, where blocking consumer calls (``committed``,
    ``position``) are forbidden, and rebalances can happen between two polls. So the adapter only
    queues the events and bumps a counter; user callbacks run in the caller's thread inside ``poll``.
    """

    def __init__(self, owner: _KafkaMember) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        with self.owner._events_lock:
            self.owner._rebalances += 1
            self.owner._events.append(("revoked", frozenset(_tp(t) for t in revoked)))

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self.owner._events_lock:
            self.owner._events.append(("assigned", frozenset(_tp(t) for t in assigned)))


class KafkaBus:
    """Implements :class:`streams.bus.Bus` against a Kafka cluster."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._admin: KafkaAdminClient | None = None
        self._meta: KafkaConsumer | None = None
        self._meta_uncommitted: KafkaConsumer | None = None
        self._cluster_id: str | None = None

    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(**self.settings.common())
        return self._admin

    def _meta_consumer(self) -> KafkaConsumer:
        if self._meta is None:
            self._meta = KafkaConsumer(**consumer_config(self.settings, None))
        return self._meta

    @property
    def bus_id(self) -> str:
        if self._cluster_id is None:
            info = self._admin_client().describe_cluster()
            cid = info.get("cluster_id") if isinstance(info, dict) else None
            if not cid:
                raise BusError(f"cannot read the Kafka cluster id from {self.settings.bootstrap}")
            self._cluster_id = str(cid)
        return self._cluster_id

    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        admin = self._admin_client()
        existing = set(admin.list_topics())
        todo = {
            s.name: {
                "num_partitions": s.partitions,
                "replication_factor": self.settings.replication_factor,
                "configs": {
                    **s.configs,
                    "min.insync.replicas": str(self.settings.min_insync_replicas),
                },
            }
            for s in specs
            if s.name not in existing
        }
        if not todo:
            return
        try:
            admin.create_topics(todo, wait_for_metadata=True)
        except TopicAlreadyExistsError:
            log.debug("topics created concurrently: %s", sorted(todo))

    def partitions_for(self, topic: str) -> int:
        meta = self._meta_consumer()
        deadline = time.monotonic() + 30
        while True:
            parts = meta.partitions_for_topic(topic)
            if parts:
                return len(parts)
            if time.monotonic() > deadline:
                raise BusError(f"topic {topic!r} has no partitions (does it exist?)")
            time.sleep(0.2)

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        res = self._meta_consumer().end_offsets([_ktp(tp) for tp in tps])
        return {_tp(k): int(v) for k, v in res.items()}

    def log_end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        if self._meta_uncommitted is None:
            cfg = consumer_config(self.settings, None)
            cfg["isolation_level"] = "read_uncommitted"
            self._meta_uncommitted = KafkaConsumer(**cfg)
        res = self._meta_uncommitted.end_offsets([_ktp(tp) for tp in tps])
        return {_tp(k): int(v) for k, v in res.items()}

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        res = self._meta_consumer().beginning_offsets([_ktp(tp) for tp in tps])
        return {_tp(k): int(v) for k, v in res.items()}

    def committed_offsets(self, group: str, topic: str) -> dict[TopicPartition, int]:
        res = self._admin_client().list_group_offsets({group: None})
        offsets = res.get(group, {})
        return {
            _tp(k): int(v.offset) for k, v in offsets.items() if k.topic == topic and v is not None and v.offset >= 0
        }

    def publisher(self, *, transactional_id: str | None = None) -> KafkaPublisher:
        return KafkaPublisher(self.settings, transactional_id)

    def topic_reader(self, topic: str) -> KafkaTopicReader:
        return KafkaTopicReader(self.settings, topic)

    def subscriber(
        self,
        group: str,
        topics: Sequence[str],
        *,
        listener: RebalanceListener | None = None,
        instance_id: str | None = None,
    ) -> KafkaSubscriber:
        return KafkaSubscriber(self.settings, group, topics, listener, instance_id)

    def channel(
        self,
        group: str,
        topics: Sequence[str],
        *,
        transactional_id: str,
        listener: RebalanceListener | None = None,
        instance_id: str | None = None,
    ) -> KafkaChannel:
        return KafkaChannel(self.settings, group, topics, transactional_id, listener, instance_id)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._meta is not None:
            self._meta.close()
            self._meta = None
        if self._meta_uncommitted is not None:
            self._meta_uncommitted.close()
            self._meta_uncommitted = None


class KafkaPublisher:
    """Appends to topics. With a ``transactional_id``, ``flush`` commits everything since the last
    flush as one transaction and ``abort`` discards it; otherwise ``flush`` waits for all acks."""

    def __init__(self, settings: KafkaSettings, transactional_id: str | None = None) -> None:
        self.settings = settings
        self.transactional_id = transactional_id
        self._producer = self._new_producer()
        self._futures: list[Any] = []
        self._in_txn = False

    def _new_producer(self) -> KafkaProducer:
        producer = KafkaProducer(**producer_config(self.settings, self.transactional_id))
        if self.transactional_id:
            producer.init_transactions()
        return producer

    def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> None:
        if self.transactional_id and not self._in_txn:
            self._producer.begin_transaction()
            self._in_txn = True
        try:
            fut = self._producer.send(topic, value=value, key=key, headers=list(headers) or None)
        except MessageSizeTooLargeError as exc:
            raise MessageTooLargeError(str(exc)) from exc
        except KafkaError as exc:
            raise BusError(f"publish to {topic} failed: {exc}") from exc
        self._futures.append(fut)

    def _bounded(self, begin: str, *args: Any) -> None:
        """A transactional step with a deadline. kafka-python's commit_transaction, abort_transaction and
        send_offsets_to_transaction wait for the broker without one, so a response lost in a broker
        restart hung the stage forever; past the deadline this raises KafkaTimeoutError, the
        indefinite-error path: the producer is re-created, which fences and aborts the old epoch."""
        manager = self._producer._transaction_manager
        result = getattr(manager, begin)(*args)
        self._producer._sender.wakeup()
        if not result.wait(timeout_ms=self.settings.transaction_timeout_ms):
            raise KafkaTimeoutError(f"{begin} got no answer in {self.settings.transaction_timeout_ms} ms")

    def send_offsets(self, offsets: dict[Any, Any], group_metadata: Any) -> None:
        self._bounded("send_offsets_to_transaction", offsets, group_metadata)

    def flush(self, timeout: float | None = None) -> None:
        try:
            if self.transactional_id:
                if self._in_txn:
                    self._bounded("begin_commit")
                    self._in_txn = False
            else:
                self._producer.flush(timeout=timeout)
            for fut in self._futures:
                fut.get(timeout=0)
        except ProducerFencedError as exc:
            raise FencedError(f"producer {self.transactional_id} fenced by a newer instance") from exc
        except KafkaTimeoutError as exc:
            self._reset_after_indefinite_error()
            raise BusError(f"flush timed out; transaction state unknown, producer re-created: {exc}") from exc
        except KafkaError as exc:
            raise BusError(f"flush failed: {exc}") from exc
        finally:
            self._futures.clear()

    def abort(self) -> None:
        self._futures.clear()
        if self.transactional_id and self._in_txn:
            try:
                self._bounded("begin_abort")
            except KafkaError as exc:
                log.warning("abort failed (%s); re-creating producer", exc)
                self._reset_after_indefinite_error()
            self._in_txn = False

    def _reset_after_indefinite_error(self) -> None:
        """Close and re-create with the same transactional id: init_transactions bumps the epoch and
        aborts whatever the old producer left open."""
        try:
            self._producer.close(timeout=5)
        except KafkaError:
            log.debug("close after indefinite error failed", exc_info=True)
        self._in_txn = False
        self._producer = self._new_producer()

    def close(self) -> None:
        if self._in_txn:
            self.abort()
        self._producer.close(timeout=10)


class _KafkaMember:
    def __init__(
        self,
        settings: KafkaSettings,
        group: str,
        topics: Sequence[str],
        listener: RebalanceListener | None,
        instance_id: str | None,
    ) -> None:
        self.settings = settings
        self.group = group
        self.listener = listener or RebalanceListener()
        self._events: list[tuple[str, frozenset[TopicPartition]]] = []
        self._events_lock = threading.Lock()
        self._rebalances = 0  # bumped on every revocation, from the IO thread
        self._seen_generation = 0  # the revocations whose events poll has dispatched
        self._consumer = KafkaConsumer(**consumer_config(settings, group, instance_id))
        self._consumer.subscribe(list(topics), listener=_ListenerAdapter(self))

    def _dispatch_events(self, batch: list[Message]) -> list[Message]:
        """Run queued rebalance callbacks in this thread and drop records that no longer belong to us
        (revoked partitions) or that the assigned-callback may have repositioned (seek)."""
        with self._events_lock:
            events, self._events = self._events, []
            self._seen_generation = self._rebalances
        if not events:
            return batch
        touched: set[TopicPartition] = set()
        for kind, tps in events:
            touched |= tps
            if kind == "revoked":
                self._on_revoked()
                if self.listener.on_revoked and tps:
                    self.listener.on_revoked(tps)
            else:
                first: dict[TopicPartition, int] = {}
                for m in batch:
                    if m.tp in tps and m.tp not in first:
                        first[m.tp] = m.offset
                for tp, off in first.items():
                    self._consumer.seek(_ktp(tp), off)  # refetch after the callback had its say
                if self.listener.on_assigned and tps:
                    self.listener.on_assigned(tps)
        return [m for m in batch if m.tp not in touched]

    def _on_revoked(self) -> None:
        """Hook for subclasses: partitions moved."""

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaConnectionError as exc:
            # The broker is restarting or unreachable: an empty poll, not the end of the process (the
            # client reconnects on the next poll). Found by the chaos run's broker restarts.
            log.warning("poll: broker unreachable (%s); retrying", exc)
            time.sleep(min(max(timeout, 0.1), 1.0))
            return []
        out: list[Message] = []
        for recs in batches.values():
            out.extend(_message(r) for r in recs)
        return self._dispatch_events(out)

    def committed(self, tp: TopicPartition) -> int | None:
        off = self._consumer.committed(_ktp(tp))
        return None if off is None or off < 0 else int(off)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._consumer.seek(_ktp(tp), offset)

    def position(self, tp: TopicPartition) -> int:
        return int(self._consumer.position(_ktp(tp)))

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(_tp(t) for t in self._consumer.assignment())

    def close(self) -> None:
        # autocommit=False: offsets are only ever committed explicitly, after the work is durable.
        self._consumer.close(autocommit=False)


class KafkaTopicReader:
    """Every partition of one topic from its beginning, without a consumer group: no coordinator, no
    join, no rebalance delay, nothing committed. For small compacted topics that each process reads
    whole (the blocklist)."""

    def __init__(self, settings: KafkaSettings, topic: str, timeout_s: float = 30.0) -> None:
        self.topic = topic
        self._consumer = KafkaConsumer(**consumer_config(settings, None))
        deadline = time.monotonic() + timeout_s
        parts = self._consumer.partitions_for_topic(topic)
        while not parts:
            if time.monotonic() > deadline:
                self._consumer.close()
                raise BusError(f"topic {topic!r} has no partitions (does it exist?)")
            time.sleep(0.2)
            parts = self._consumer.partitions_for_topic(topic)
        tps = [KTopicPartition(topic, p) for p in sorted(parts)]
        self._consumer.assign(tps)
        self._consumer.seek_to_beginning(*tps)

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        try:
            recs = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaError as exc:
            raise BusError(f"reading {self.topic} failed: {exc}") from exc
        return [_message(r) for part in recs.values() for r in part]

    def close(self) -> None:
        self._consumer.close()


class KafkaSubscriber(_KafkaMember):
    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        try:
            self._consumer.commit({_ktp(tp): OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
        except _FENCING as exc:
            raise FencedError(f"commit refused for group {self.group}: {exc}") from exc
        except KafkaError as exc:
            raise BusError(f"commit failed for group {self.group}: {exc}") from exc


class KafkaChannel(_KafkaMember):
    """Consume-transform-produce with one Kafka transaction per batch."""

    def __init__(
        self,
        settings: KafkaSettings,
        group: str,
        topics: Sequence[str],
        transactional_id: str,
        listener: RebalanceListener | None,
        instance_id: str | None,
    ) -> None:
        self._publisher = KafkaPublisher(settings, transactional_id)
        self._consumed: dict[TopicPartition, int] = {}
        self._batch_generation = 0
        super().__init__(settings, group, topics, listener, instance_id)

    def _on_revoked(self) -> None:
        # Work polled under the old assignment must not be committed under the new one.
        if self._consumed or self._publisher._in_txn:
            self._publisher.abort()
            self._consumed.clear()

    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[Message]:
        fresh = not self._consumed
        msgs = super().poll(max_records, timeout)
        if fresh:
            self._batch_generation = self._seen_generation
        for m in msgs:
            self._consumed[m.tp] = m.offset + 1
        return msgs

    def send(self, out: Outgoing) -> None:
        self._publisher.publish(out.topic, out.value, out.key, out.headers)

    def commit(self) -> None:
        if not self._consumed and not self._publisher._in_txn:
            return
        if self._rebalances != self._batch_generation:
            # Partitions were revoked (IO thread) after this batch was polled: it is not ours to commit.
            self.abort()
            raise FencedError(f"group {self.group} rebalanced while the batch was in flight")
        pub = self._publisher
        try:
            if not pub._in_txn:
                pub._producer.begin_transaction()
                pub._in_txn = True
            offsets = {_ktp(tp): OffsetAndMetadata(off, "", -1) for tp, off in self._consumed.items()}
            if offsets:
                pub.send_offsets(offsets, self._consumer.group_metadata())
            pub.flush()
        except (FencedError, ProducerFencedError, *_FENCING) as exc:
            self.abort()
            raise FencedError(f"transaction for group {self.group} fenced: {exc}") from exc
        except (BusError, KafkaError) as exc:
            self.abort()
            raise BusError(f"transaction for group {self.group} failed: {exc}") from exc
        self._consumed.clear()

    def abort(self) -> None:
        self._publisher.abort()
        self._consumed.clear()
        # Rewind to the committed offsets so the aborted batch is read again.
        for ktp in self._consumer.assignment():
            try:
                committed = self._consumer.committed(ktp, timeout_ms=self.settings.request_timeout_ms)
            except KafkaError as exc:
                # Without the committed offset the aborted batch cannot be re-read in place: stop, and
                # let the restart resume from the committed offsets (nothing is lost or repeated).
                raise BusError(f"cannot rewind {ktp.topic}[{ktp.partition}] after an abort: {exc}") from exc
            if committed is not None and committed >= 0:
                self._consumer.seek(ktp, committed)
            else:
                self._consumer.seek_to_beginning(ktp)

    def committed(self, tp: TopicPartition) -> int | None:
        return super().committed(tp)

    def close(self) -> None:
        self._publisher.close()
        super().close()
