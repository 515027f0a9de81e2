"""Integration tests for tools/kafka/broker.py against the real broker (fixture: tests/kafka_fixture.py).

Run: PYTHONPATH=tests python -m pytest -p kafka_fixture tests/test_tools
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

pytestmark = pytest.mark.kafka

TWO_MIB = 2 * 1024 * 1024
POLL_TIMEOUT_S = 30.0


def _producer(bootstrap: str, **extra: Any) -> KafkaProducer:
    # The safe settings are spelled out, not left to kafka-python's defaults.
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": "zstd",
        "linger_ms": 0,
    }
    settings.update(extra)
    return KafkaProducer(**settings)


def _consumer(bootstrap: str, group: str | None, topic: str, **extra: Any) -> KafkaConsumer:
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "auto_offset_reset": "earliest",
    }
    settings.update(extra)
    consumer = KafkaConsumer(**settings)
    if group is None:
        consumer.assign([TopicPartition(topic, 0)])
    else:
        consumer.subscribe([topic])
    return consumer


def _poll(consumer: KafkaConsumer, count: int, timeout: float = POLL_TIMEOUT_S) -> list[ConsumerRecord]:
    """Poll until ``count`` records arrived (or time out with what came)."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    """Clients appended here are closed after the test, pass or fail."""
    clients: list[Any] = []
    yield clients
    for client in reversed(clients):
        if isinstance(client, KafkaProducer):
            client.close(timeout=5)
        else:
            client.close()


def test_produce_consume_roundtrip(kafka_bootstrap: str, unique_name: str, closing: list[Any]) -> None:
    topic = f"{unique_name}-t"
    producer = _producer(kafka_bootstrap)
    closing.append(producer)
    meta = producer.send(topic, key=b"k1", value=b"hello", headers=[("h", b"v")]).get(timeout=30)
    assert meta.offset == 0

    consumer = _consumer(kafka_bootstrap, f"{unique_name}-g", topic)
    closing.append(consumer)
    records = _poll(consumer, 1)
    assert [(r.key, r.value, list(r.headers)) for r in records] == [(b"k1", b"hello", [("h", b"v")])]
    consumer.commit()
    assert consumer.committed(TopicPartition(topic, 0)) == 1


def test_two_mib_message_roundtrip(kafka_bootstrap: str, unique_name: str, closing: list[Any]) -> None:
    topic = f"{unique_name}-t"
    payload = os.urandom(TWO_MIB)  # incompressible, so the request really is > 1 MiB on the wire
    producer = _producer(kafka_bootstrap, max_request_size=4 * TWO_MIB)
    closing.append(producer)
    producer.send(topic, value=payload).get(timeout=30)

    consumer = _consumer(
        kafka_bootstrap,
        None,
        topic,
        max_partition_fetch_bytes=4 * TWO_MIB,
        fetch_max_bytes=8 * TWO_MIB,
    )
    closing.append(consumer)
    records = _poll(consumer, 1)
    assert len(records) == 1
    assert records[0].value == payload


def test_transaction_commit_visible_abort_hidden(
    kafka_bootstrap: str, unique_name: str, closing: list[Any]
) -> None:
    topic = f"{unique_name}-t"
    producer = _producer(kafka_bootstrap, transactional_id=f"{unique_name}-tx")
    closing.append(producer)
    producer.init_transactions()
    for value, commit in ((b"committed-1", True), (b"aborted", False), (b"committed-2", True)):
        producer.begin_transaction()
        producer.send(topic, value=value)
        # Flush first: an abort drops batches still in the accumulator, and the aborted record must
        # really reach the log for this test to prove anything.
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()

    committed = _consumer(kafka_bootstrap, None, topic)
    closing.append(committed)
    # committed-2 comes after the aborted batch, so seeing it proves the aborted one was skipped.
    assert [r.value for r in _poll(committed, 2)] == [b"committed-1", b"committed-2"]

    # The aborted record did reach the log: a read_uncommitted reader sees it.
    uncommitted = _consumer(kafka_bootstrap, None, topic, isolation_level="read_uncommitted")
    closing.append(uncommitted)
    assert [r.value for r in _poll(uncommitted, 3)] == [b"committed-1", b"aborted", b"committed-2"]


def test_restart_keeps_committed_data_and_group_offset(
    kafka_local_broker: Any, unique_name: str, closing: list[Any]
) -> None:
    bootstrap = kafka_local_broker.bootstrap
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    tp = TopicPartition(topic, 0)

    producer = _producer(bootstrap)
    producer.send(topic, value=b"before-restart").get(timeout=30)
    producer.close(timeout=5)
    consumer = _consumer(bootstrap, group, topic)
    assert [r.value for r in _poll(consumer, 1)] == [b"before-restart"]
    consumer.commit()
    consumer.close()

    kafka_local_broker.restart()
    assert kafka_local_broker.bootstrap == bootstrap

    producer = _producer(bootstrap)
    closing.append(producer)
    producer.send(topic, value=b"after-restart").get(timeout=30)

    resumed = _consumer(bootstrap, group, topic)
    closing.append(resumed)
    assert resumed.committed(tp) == 1
    assert [r.value for r in _poll(resumed, 1)] == [b"after-restart"]

    fresh = _consumer(bootstrap, None, topic)
    closing.append(fresh)
    assert [r.value for r in _poll(fresh, 2)] == [b"before-restart", b"after-restart"]
