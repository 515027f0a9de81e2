"""K-1: the delivery-relevant client settings are explicit and safe; any deviation fails CI."""

from __future__ import annotations

from streams.kafka import KafkaSettings, consumer_config, producer_config
from streams.topics import MAX_MESSAGE_BYTES, Topics


def test_consumer_is_safe_for_exactly_once() -> None:
    cfg = consumer_config(KafkaSettings(bootstrap="h:1"), "g")
    assert cfg["enable_auto_commit"] is False
    assert cfg["isolation_level"] == "read_committed"
    assert cfg["auto_offset_reset"] == "earliest"
    assert cfg["max_partition_fetch_bytes"] > MAX_MESSAGE_BYTES


def test_producer_is_idempotent_and_fits_raw_html() -> None:
    cfg = producer_config(KafkaSettings(bootstrap="h:1"), transactional_id="tx-1")
    assert cfg["enable_idempotence"] is True
    assert cfg["acks"] == "all"
    assert cfg["compression_type"] == "zstd"
    assert cfg["max_request_size"] >= MAX_MESSAGE_BYTES
    assert cfg["transactional_id"] == "tx-1"


def test_static_membership_when_instance_id_given() -> None:
    assert consumer_config(KafkaSettings(), "g", "pod-0")["group_instance_id"] == "pod-0"
    assert "group_instance_id" not in consumer_config(KafkaSettings(), "g")


def test_tls_and_sasl_settings_reach_the_clients() -> None:
    s = KafkaSettings(
        bootstrap="h:1", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u", sasl_password="p", ssl_cafile="/ca.pem",
    )
    cfg = producer_config(s)
    assert cfg["security_protocol"] == "SASL_SSL"
    assert cfg["sasl_mechanism"] == "SCRAM-SHA-512" and cfg["sasl_plain_password"] == "p"
    assert cfg["ssl_cafile"] == "/ca.pem" and cfg["ssl_check_hostname"] is True


def test_topics_allow_large_pages_and_compact_the_blocklist() -> None:
    specs = {s.name: s for s in Topics(prefix="x.").specs(partitions=6, min_isr=2)}
    assert specs["x.pages.raw"].partitions == 6
    assert int(specs["x.pages.raw"].configs["max.message.bytes"]) >= MAX_MESSAGE_BYTES
    assert specs["x.pages.raw"].configs["min.insync.replicas"] == "2"
    assert specs["x.pages.raw"].configs["unclean.leader.election.enable"] == "false"
    assert specs["x.compliance.blocklist"].configs["cleanup.policy"] == "compact"
    assert specs["x.replay.progress"].configs["cleanup.policy"] == "compact"


def test_a_poll_while_the_broker_is_down_is_empty_not_fatal() -> None:
    """Found by the chaos run: during a broker restart the consumer's poll raised
    KafkaConnectionError (ECONNREFUSED) out of the stage loop and the process exited."""
    from kafka.errors import KafkaConnectionError

    from streams.kafka import KafkaSubscriber

    class DownConsumer:
        def poll(self, timeout_ms: int, max_records: int) -> dict:
            raise KafkaConnectionError("111 ECONNREFUSED")

    sub = KafkaSubscriber.__new__(KafkaSubscriber)
    sub._consumer = DownConsumer()  # type: ignore[assignment]
    assert sub.poll(10, timeout=0.01) == []
