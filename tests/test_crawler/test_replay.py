"""Replay on the in-memory bus: pages, checkpoints in the same commit, resume exactly once, dead letters,
blocklist. The same flow runs against real Kafka in tests/integration/test_replay_kill.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from warcgen import gz_members, page, warcinfo

from compliance.blocklist import RuleSet
from crawler.checkpoint import decode_checkpoint, load_checkpoints
from crawler.replay import Replayer
from crawler.replay_config import ReplayConfig
from crawler.sources import InputRef
from streams.bus import Headers
from streams.codec import decode_as
from streams.memory import InMemoryBus
from streams.records import BlockRule, DeadLetter, Page
from streams.topics import Topics

TOPICS = Topics()


def fresh_bus() -> InMemoryBus:
    bus = InMemoryBus(default_partitions=2)
    bus.ensure_topics(TOPICS.specs(2))
    return bus


def page_ids(bus: InMemoryBus) -> list[str]:
    return [decode_as(m.value, Page).page_id for m in bus.read_all(TOPICS.pages_raw)]


def latest_checkpoints(bus: InMemoryBus) -> dict:
    return load_checkpoints(bus, TOPICS.replay_progress)


class Crash(Exception):
    pass


class DyingPublisher:
    """Publishes normally, then 'dies' (raises) at the n-th publish, leaving its transaction open."""

    def __init__(self, inner, die_after: int) -> None:
        self.inner, self.left = inner, die_after

    def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers = ()) -> None:
        self.left -= 1
        if self.left < 0:
            raise Crash
        self.inner.publish(topic, value, key, headers)

    def flush(self, timeout: float | None = None) -> None:
        self.inner.flush(timeout)

    def abort(self) -> None:
        self.inner.abort()

    def close(self) -> None:
        self.inner.close()


def many_pages_file(tmp_path: Path, n: int = 60) -> Path:
    path = tmp_path / "many.warc.gz"
    path.write_bytes(gz_members([warcinfo()] + [page(i) for i in range(n)]))
    return path


def test_replay_publishes_pages_and_a_final_checkpoint(sample_warc: Path) -> None:
    bus = fresh_bus()
    rep = Replayer(bus.publisher(transactional_id="r"), TOPICS).replay([str(sample_warc)])
    assert rep.pages == 33 and not rep.failed_inputs
    assert len(set(page_ids(bus))) == 33
    cps = latest_checkpoints(bus)
    cp = cps[str(sample_warc)]
    assert cp.done and cp.pages == 33 and cp.offset == sample_warc.stat().st_size
    assert cp.records == rep.records


@pytest.mark.parametrize("die_after", [1, 7, 23, 40])
def test_crash_mid_file_then_resume_publishes_every_page_once(tmp_path: Path, die_after: int) -> None:
    path = many_pages_file(tmp_path)
    cfg = ReplayConfig(checkpoint_pages=5)
    bus = fresh_bus()
    dying = DyingPublisher(bus.publisher(transactional_id="w0"), die_after)
    with pytest.raises(Crash):
        Replayer(dying, TOPICS, cfg).replay([str(path)])
    before = page_ids(bus)
    assert len(before) % 5 == 0  # only whole commits are visible
    cps = latest_checkpoints(bus)
    second = Replayer(bus.publisher(transactional_id="w0"), TOPICS, cfg, checkpoints=cps).replay([str(path)])
    ids = page_ids(bus)
    assert len(ids) == len(set(ids)) == 60
    assert second.pages == 60 - len(before)
    if before:
        assert second.inputs[0].resumed_from is not None
    final = latest_checkpoints(bus)[str(path)]
    assert final.done and final.pages == 60  # counts accumulate across runs


def test_finished_inputs_are_not_read_again(tmp_path: Path) -> None:
    path = many_pages_file(tmp_path, 10)
    bus = fresh_bus()
    Replayer(bus.publisher(transactional_id="w"), TOPICS).replay([str(path)])
    again = Replayer(bus.publisher(transactional_id="w"), TOPICS, checkpoints=latest_checkpoints(bus)).replay(
        [str(path)]
    )
    assert again.pages == 0 and again.inputs[0].already_done
    assert len(page_ids(bus)) == 10


def test_damaged_records_become_dead_letters_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "damaged.warc"
    path.write_bytes(page(1) + page(2, content_length="5") + page(3))
    bus = fresh_bus()
    rep = Replayer(bus.publisher(transactional_id="w"), TOPICS).replay([str(path)])
    assert rep.pages == 2 and rep.damaged == 1
    assert rep.failed_inputs and "offset" in rep.inputs[0].errors[0]
    letters = [decode_as(m.value, DeadLetter) for m in bus.read_all(TOPICS.dlq)]
    assert len(letters) == 1
    dl = letters[0]
    assert dl.topic == f"warc:{path}" and dl.offset == len(page(1)) and "Content-Length" in dl.reason
    cp = latest_checkpoints(bus)[str(path)]
    assert cp.done and cp.damaged == 1


def test_blocked_urls_are_not_published() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "b.warc"
        path.write_bytes(page(1) + page(2) + page(3))
        bus = fresh_bus()
        rules = RuleSet([BlockRule(rule_id="r1", kind="url", value="http://example.com/2")])
        rep = Replayer(bus.publisher(), TOPICS, blocklist=rules).replay([str(path)])
    assert rep.pages == 2 and rep.skipped()["blocked"] == 1
    assert len(page_ids(bus)) == 2


def test_stop_request_commits_the_position_and_resume_finishes(tmp_path: Path) -> None:
    path = many_pages_file(tmp_path, 40)
    cfg = ReplayConfig(checkpoint_pages=4)
    bus = fresh_bus()
    stop = threading.Event()
    ticks = []

    def on_tick(r: Replayer) -> None:
        ticks.append(r.current.offset)

    r1 = Replayer(bus.publisher(transactional_id="w"), TOPICS, cfg, stop=stop, on_batch=stop.set, on_tick=on_tick)
    rep1 = r1.replay([str(path)])
    assert rep1.stopped and 0 < rep1.pages < 40 and ticks
    cp = latest_checkpoints(bus)[str(path)]
    assert not cp.done and cp.offset > 0
    rep2 = Replayer(bus.publisher(transactional_id="w"), TOPICS, cfg, checkpoints=latest_checkpoints(bus)).replay(
        [str(path)]
    )
    assert rep1.pages + rep2.pages == 40 and len(set(page_ids(bus))) == 40


def test_missing_and_unreadable_inputs_are_reported(tmp_path: Path) -> None:
    bus = fresh_bus()
    ok = many_pages_file(tmp_path, 3)
    rep = Replayer(bus.publisher(), TOPICS).replay(
        [InputRef(str(tmp_path / "nope.warc.gz"), "no such file"), InputRef(str(ok))]
    )
    assert [i.errors for i in rep.inputs] == [["no such file"], []]
    assert rep.pages == 3


def test_checkpoint_wire_format_is_versioned_json() -> None:
    bus = fresh_bus()
    pub = bus.publisher(transactional_id="w")
    pub.publish(TOPICS.replay_progress, b"not json", b"x")
    pub.publish(TOPICS.replay_progress, b'{"v": 99, "input": "y"}', b"y")
    pub.flush()
    assert latest_checkpoints(bus) == {}  # unreadable and unknown versions are ignored, with a warning
    assert decode_checkpoint(b'{"v": 1, "input": "z", "offset": 5}').offset == 5  # type: ignore[union-attr]


def test_a_page_too_large_for_the_bus_is_dead_lettered_with_its_url(tmp_path: Path) -> None:
    path = tmp_path / "big.warc"
    big = b"<html><body><p>" + b"word " * 60_000 + b"</p></body></html>"
    path.write_bytes(page(1) + page(2, body=big) + page(3))
    bus = InMemoryBus(default_partitions=2, max_message_bytes=64 * 1024)
    bus.ensure_topics(TOPICS.specs(2))
    rep = Replayer(bus.publisher(transactional_id="w"), TOPICS).replay([str(path)])
    assert rep.pages == 2 and rep.inputs[0].skipped["too-large"] == 1
    (dl,) = [decode_as(m.value, DeadLetter) for m in bus.read_all(TOPICS.dlq)]
    assert dl.key == b"http://example.com/2" and dl.reason.startswith("too-large")
    assert dl.topic == f"warc:{path}" and dl.offset == len(page(1))
