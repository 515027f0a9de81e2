"""kill -9 ``headrace replay`` in the middle of a file, restart it: pages.raw holds every page exactly once.

The archive is served over http from 127.0.0.1 with a throttle, so the replay is still inside the file
when the test kills it; the restart resumes with a Range request from the last committed checkpoint.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.checkpoint import decode_checkpoint
from crawler.sources import LocalSource
from crawler.warc import WarcReader
from streams.bus import TopicPartition
from streams.codec import decode_as
from streams.kafka import KafkaBus, KafkaSettings
from streams.records import Page
from streams.topics import Topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ARCHIVE = "aut_example.warc.gz"  # 2.5 MB, 135 HTML pages among 822 records


class ThrottledRangeHandler(http.server.BaseHTTPRequestHandler):
    path_on_disk: Path

    def do_GET(self) -> None:
        data = self.path_on_disk.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        try:
            for i in range(start, len(data), 16384):
                self.wfile.write(data[i : i + 16384])
                time.sleep(0.02)  # ~0.8 MB/s: the file takes ~3 s
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served_archive(shared_data: Path) -> Iterator[str]:
    handler = type("H", (ThrottledRangeHandler,), {"path_on_disk": shared_data / ARCHIVE})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{ARCHIVE}"
    finally:
        server.shutdown()
        server.server_close()


def read_topic(bus: KafkaBus, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every committed message of ``topic`` (read_committed, from the start)."""
    n = bus.partitions_for(topic)
    tps = [TopicPartition(topic, p) for p in range(n)]
    ends = bus.end_offsets(tps)
    sub = bus.subscriber(f"reader-{uuid.uuid4().hex[:8]}", [topic])
    out: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            out.extend((m.key, m.value) for m in sub.poll(1000, 0.5))
            assigned = sub.assignment()
            if len(assigned) == n and all(sub.position(tp) >= ends[tp] for tp in tps):
                return out
    finally:
        sub.close()
    raise AssertionError(f"could not read {topic} to its end")


def test_kill_9_mid_file_then_restart_publishes_each_page_once(
    kafka_bootstrap: str, served_archive: str, shared_data: Path, tmp_path: Path
) -> None:
    expected = {i.page_id for i, _ in WarcReader(LocalSource(str(shared_data / ARCHIVE))) if isinstance(i, Page)}
    assert len(expected) == 135
    prefix = f"kill-{uuid.uuid4().hex[:8]}."
    env = dict(os.environ)
    env.update(HEADRACE_BUS__TOPIC_PREFIX=prefix, HEADRACE_REPLAY__CHECKPOINT_PAGES="10")
    cmd = [sys.executable, "-m", "headrace", "replay", served_archive, "--bootstrap", kafka_bootstrap, "--no-progress"]
    topics = Topics(prefix=prefix)
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap))
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        killed_at: int | None = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            try:
                msgs = read_topic(bus, topics.replay_progress)
            except Exception:  # topics not created yet
                continue
            cps = [decode_checkpoint(v) for _, v in msgs]
            mine = [c for c in cps if c is not None and c.input == served_archive]
            if mine and not mine[-1].done and mine[-1].pages >= 20:
                os.kill(proc.pid, signal.SIGKILL)  # mid-file, possibly mid-transaction
                killed_at = mine[-1].pages
                break
        proc.wait(30)
        assert killed_at is not None, f"replay finished or never checkpointed: {proc.stderr.read()[-2000:]!r}"
        assert proc.returncode == -signal.SIGKILL

        pages_after_kill = [decode_as(v, Page).page_id for _, v in read_topic(bus, topics.pages_raw)]
        assert len(pages_after_kill) == len(set(pages_after_kill)) < 135

        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert second.returncode == 0, second.stderr[-3000:]
        summary = json.loads(second.stdout)
        assert summary["resumed_inputs"] == 1
        assert summary["per_input"][0]["resumed_from"] > 0

        ids = [decode_as(v, Page).page_id for _, v in read_topic(bus, topics.pages_raw)]
        assert len(ids) == len(set(ids)), "a page was published twice"
        assert set(ids) == expected, "a page is missing"
        assert summary["pages_published"] == 135 - len(pages_after_kill)

        third = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert third.returncode == 0 and json.loads(third.stdout)["already_done_inputs"] == 1
        assert len(read_topic(bus, topics.pages_raw)) == 135
    finally:
        bus.close()
