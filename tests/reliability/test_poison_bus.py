"""Poison messages on every topic a consumer group reads, on the real broker.

Garbage bytes, a foreign magic, an unknown schema version, an unknown record kind, a record of the
wrong kind, and a msgpack string that is not UTF-8 (which used to escape the codec as a bare
``UnicodeDecodeError`` and kill the shard and ledger consumers) are published to ``pages.raw``,
``docs.clean``, ``docs.unique`` and ``docs.rejected`` between good pages. Each consumer must
dead-letter each of them with a reason and go on: no process exits, every good page is sealed once.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from integration.crash_harness import PipelineProbe, base_env, run_replay
from reliability.common import check_urls, read_jsonl, write_batch
from reliability.fleet import ChaosFleet

from streams.codec import MAGIC, encode
from streams.kafka import KafkaBus, KafkaSettings
from streams.records import Document, Page

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def poison_messages() -> dict[str, bytes]:
    page = encode(Page(page_id="p-poison", url="http://poison.example/", fetched_at="2024-01-01T00:00:00Z"))
    doc = encode(Document(doc_id="d-poison", page_id="p", url="http://poison.example/d", text="x"))
    return {
        "garbage": b"\x00\xffnot a record at all",
        "empty": b"",
        "foreign-magic": b"PK\x03\x04" + page[4:],
        "unknown-version": MAGIC + bytes((99, 1)) + page[4:],
        "unknown-kind": MAGIC + bytes((page[2], 77)) + page[4:],
        "invalid-utf8": page.replace(b"http://poison.example/", b"http://\xd0O.example/"),
        "truncated": page[: len(page) // 2],
        "wrong-kind": doc,
    }


def test_poison_on_every_consumed_topic_is_dead_lettered(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = base_env(f"poison-{uuid.uuid4().hex[:6]}.", HEADRACE_DEDUP__DIRECTORY=str(tmp_path / "dedup"))
    shards, ledger = tmp_path / "shards", tmp_path / "ledger"
    fleet = ChaosFleet(
        kafka_bootstrap,
        env,
        tmp_path / "logs",
        shards,
        replicas={"process": 1, "dedup": 1, "shards": 1, "ledger": 1},
        arm_faults=False,
        ledger_dir=ledger,
    )
    probe = PipelineProbe(kafka_bootstrap, env)
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap))
    urls = write_batch(tmp_path / "a.warc.gz", 0, 60, seed=1) + write_batch(tmp_path / "b.warc.gz", 60, 60, seed=1)
    topics = probe.topics
    targets = [topics.pages_raw, topics.docs_clean, topics.docs_unique, topics.docs_rejected]
    poison = poison_messages()
    # Every topic dead-letters every poison message, docs.rejected included (the ledger reads it as
    # Rejection records only: a Page published there is a dead letter, not a ledger line).
    want = {t: len(poison) for t in targets}
    try:
        fleet.start()
        assert run_replay(kafka_bootstrap, env, [tmp_path / "a.warc.gz"], tmp_path / "replay.log") == 0
        pub = bus.publisher()
        for topic in targets:
            for name, value in poison.items():
                if name == "wrong-kind" and topic != topics.pages_raw:  # a Page where a Document belongs
                    value = encode(Page(page_id="p", url="http://poison.example/w", fetched_at="t"))
                pub.publish(topic, value, f"{name}".encode())
        pub.flush()
        pub.close()
        assert run_replay(kafka_bootstrap, env, [tmp_path / "b.warc.gz"], tmp_path / "replay.log") == 0
        deadline = time.monotonic() + 240
        while True:
            fleet.reap()
            letters = read_jsonl(ledger / "dlq.jsonl")
            if probe.idle(shards) and len(letters) >= sum(want.values()):
                break
            assert time.monotonic() < deadline, f"not settled: {len(letters)} dead letters; logs in {fleet.workdir}"
            time.sleep(1)
        time.sleep(2)
        fleet.stop()
        assert not fleet.crashes, f"a consumer died on poison: {dict(fleet.crashes)}; logs in {fleet.workdir}"
        assert all(s.launches == 1 for s in fleet.slots), "a consumer was restarted"
        by_topic: dict[str, int] = {}
        for dl in read_jsonl(ledger / "dlq.jsonl"):
            assert dl["reason"], dl
            by_topic[dl["topic"]] = by_topic.get(dl["topic"], 0) + 1
        for topic in targets:
            assert by_topic.get(topic, 0) == want[topic], (topic, by_topic)
        verdict = check_urls(urls, shards, ledger)
        assert verdict.ok and verdict.sealed == len(urls), verdict.summary()
    finally:
        fleet.kill_all()
        probe.close()
        bus.close()
