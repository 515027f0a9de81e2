"""Shard sink exactly-once rules on the in-memory bus (the Kafka crash suite lives in integration/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.shards.reader import iter_documents, list_shards, verify_shards
from consumers.shards.sink import DocIdIndex, ShardConfig, ShardSink
from consumers.shards.writer import OpenShard, clean_orphans
from streams.bus import FencedError, TopicPartition
from streams.codec import encode
from streams.memory import InMemoryBus
from streams.records import Document
from streams.stats import Stats
from streams.topics import Topics

TOPICS = Topics()


def doc(i: int) -> Document:
    return Document(doc_id=f"doc-{i:05d}", page_id=f"p{i}", url=f"https://e.org/{i}", text=f"text number {i} " * 5)


def publish(bus: InMemoryBus, docs: list[Document]) -> None:
    pub = bus.publisher()
    for d in docs:
        pub.publish(TOPICS.docs_unique, encode(d), d.doc_id.encode())


def make_sink(bus: InMemoryBus, directory: Path, **cfg: object) -> ShardSink:
    config = ShardConfig(directory=str(directory), orphan_grace_s=0, **cfg)  # type: ignore[arg-type]
    sink = ShardSink(config, TOPICS, bus.bus_id, Stats(), side_publisher=bus.publisher())
    sink.attach(bus.subscriber("shards", [TOPICS.docs_unique], listener=sink.listener()))
    return sink


def drain(sink: ShardSink) -> None:
    while sink.step(timeout=0):
        pass


def sealed_ids(directory: Path) -> list[str]:
    return [entry.doc_id for _, entry, _ in iter_documents(directory)]


def test_every_document_lands_once(tmp_path: Path) -> None:
    bus = InMemoryBus(default_partitions=3)
    publish(bus, [doc(i) for i in range(300)])
    sink = make_sink(bus, tmp_path, max_documents=40)
    drain(sink)
    sink.flush_all()
    ids = sealed_ids(tmp_path)
    assert sorted(ids) == sorted(f"doc-{i:05d}" for i in range(300))
    report = verify_shards(tmp_path)
    assert report.ok, report.problems
    assert report.shards > 3  # rolled by size
    committed = bus.committed_offsets("shards", TOPICS.docs_unique)
    assert sum(committed.values()) == 300


def test_crash_between_seal_and_commit_resumes_from_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bus = InMemoryBus(default_partitions=2)
    publish(bus, [doc(i) for i in range(100)])
    sink = make_sink(bus, tmp_path, max_documents=10)

    def crash(_offsets: object) -> None:
        raise FencedError("simulated crash after seal, before commit")

    assert sink.sub is not None
    monkeypatch.setattr(sink.sub, "commit", crash)
    drain(sink)  # seals shards, commits nothing
    assert bus.committed_offsets("shards", TOPICS.docs_unique) == {}
    sealed_before = len(sealed_ids(tmp_path))
    assert sealed_before > 0
    sink.abort_all()
    sink.sub.close()
    # A new writer starts from the newest manifests, not from the (absent) group commit.
    sink2 = make_sink(bus, tmp_path, max_documents=10)
    drain(sink2)
    sink2.flush_all()
    ids = sealed_ids(tmp_path)
    assert len(ids) == len(set(ids)) == 100
    assert sink2.stats.get("shards/resumed-from-manifest") >= 1


def test_zombie_cannot_seal_the_same_range(tmp_path: Path) -> None:
    bus = InMemoryBus(default_partitions=1)
    publish(bus, [doc(i) for i in range(20)])
    tok_sink = make_sink(bus, tmp_path)
    info = tok_sink.tokenizer.info
    a = OpenShard(tmp_path, tok_sink.source, 0, 0, info)
    b = OpenShard(tmp_path, tok_sink.source, 0, 0, info)
    for i in range(5):
        a.add(doc(i), [1, 2, info.eos_id], i)
        b.add(doc(i), [1, 2, info.eos_id], i)
    a.seal()
    from consumers.shards.manifest import ShardExistsError

    with pytest.raises(ShardExistsError):
        b.seal()
    assert len(list_shards(tmp_path)) == 1
    assert verify_shards(tmp_path).ok
    assert not list(tmp_path.glob(".*.tmp"))


def test_redelivered_documents_are_skipped(tmp_path: Path) -> None:
    bus = InMemoryBus(default_partitions=2)
    docs = [doc(i) for i in range(50)]
    publish(bus, docs)
    sink = make_sink(bus, tmp_path)
    drain(sink)
    sink.flush_all()
    publish(bus, docs[:30])  # upstream re-delivery after a crash
    drain(sink)
    sink.flush_all()
    ids = sealed_ids(tmp_path)
    assert len(ids) == 50
    assert sink.stats.get("shards/skip/already-sealed") == 30


def test_replay_on_a_new_bus_adds_nothing(tmp_path: Path) -> None:
    docs = [doc(i) for i in range(40)]
    for _ in range(2):
        bus = InMemoryBus(default_partitions=2)
        publish(bus, docs)
        sink = make_sink(bus, tmp_path)
        drain(sink)
        sink.flush_all()
        sink.close()
    assert len(sealed_ids(tmp_path)) == 40
    assert len(list_shards(tmp_path)) == 2  # the second run sealed no new shard


def test_unsealed_files_are_cleaned(tmp_path: Path) -> None:
    bus = InMemoryBus(default_partitions=1)
    sink = make_sink(bus, tmp_path)
    shard = OpenShard(tmp_path, sink.source, 0, 0, sink.tokenizer.info)
    shard.add(doc(1), [5, 6, sink.tokenizer.eos_id], 0)
    (tmp_path / "orphan.v1-deadbeef.bin").write_bytes(b"\x00\x01")
    removed = clean_orphans(tmp_path, grace_s=0)
    assert {p.name for p in removed} >= {"orphan.v1-deadbeef.bin"}
    assert not list(tmp_path.iterdir()) or all(not p.name.endswith(".bin") for p in tmp_path.iterdir())


def test_doc_id_index_membership() -> None:
    idx = DocIdIndex()
    idx.add_many([(f"id-{i}", f"page-{i}") for i in range(70000)])  # forces a compaction
    assert "id-5" in idx and "id-69999" in idx and "id-70000" not in idx
    assert len(idx) == 70000
    assert idx.page_of("id-5") == DocIdIndex.key("page-5")
    idx.add_many([("id-70001", "")])
    assert idx.page_of("id-70001") == 0 and idx.page_of("nope") is None


def test_rebalance_drops_the_open_shard_and_new_owner_rereads(tmp_path: Path) -> None:
    bus = InMemoryBus(default_partitions=2)
    publish(bus, [doc(i) for i in range(60)])
    a = make_sink(bus, tmp_path)
    a.step(timeout=0)  # reads, nothing sealed yet
    b = make_sink(bus, tmp_path)  # joins: rebalance
    for _ in range(5):
        a.step(timeout=0)
        b.step(timeout=0)
    a.flush_all()
    b.flush_all()
    ids = sealed_ids(tmp_path)
    assert sorted(ids) == sorted(f"doc-{i:05d}" for i in range(60))
    assert TopicPartition(TOPICS.docs_unique, 0) in (a.sub.assignment() | b.sub.assignment())  # type: ignore[union-attr]


def test_second_capture_of_the_same_page_goes_to_the_ledger(tmp_path: Path) -> None:
    from msgspec.structs import replace

    from streams.codec import decode_as
    from streams.records import Rejection

    bus = InMemoryBus(default_partitions=1)
    first = doc(1)
    again = replace(first, page_id="another-capture")  # same URL and text, another WARC record
    publish(bus, [first, first, again])  # the repeated `first` is a re-delivery
    sink = make_sink(bus, tmp_path)
    drain(sink)
    sink.flush_all()
    assert sealed_ids(tmp_path) == [first.doc_id]
    assert sink.stats.get("shards/skip/already-sealed") == 1
    assert sink.stats.get("shards/drop/duplicate-capture") == 1
    ledger = [decode_as(m.value, Rejection) for m in bus.read_all(TOPICS.docs_rejected)]
    assert [(r.id, r.reason, r.duplicate_of) for r in ledger] == [
        ("another-capture", "duplicate-capture", first.doc_id)
    ]


def test_a_doc_id_already_in_the_open_shard_is_not_written_again_from_a_later_batch(tmp_path: Path) -> None:
    """The same record in two archives: the second copy arrives in a later poll, before the shard
    holding the first is sealed. It must not be written twice (found on real WARCs)."""
    from msgspec.structs import replace

    bus = InMemoryBus(default_partitions=1)
    first = doc(1)
    sink = make_sink(bus, tmp_path)
    publish(bus, [first, doc(2)])
    drain(sink)  # both in the open shard, nothing sealed yet
    assert list_shards(tmp_path) == []
    publish(bus, [replace(first, page_id="copy-in-another-archive"), first])
    drain(sink)
    sink.flush_all()
    assert sorted(sealed_ids(tmp_path)) == [first.doc_id, doc(2).doc_id]
    assert sink.stats.get("shards/drop/duplicate-capture") == 1
    assert sink.stats.get("shards/skip/already-sealed") == 1
