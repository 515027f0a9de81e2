"""``headrace consume process`` as a real process against the real broker: metrics, probes, SIGTERM.

S-3 (reliability-cases.md): SIGTERM mid-batch finishes the batch, commits, leaves the group and exits
well inside the grace period; committed offsets == what the process says it consumed == what
read_committed readers see downstream, and a restart completes the input with 0 duplicates.
S-5: a hung extraction turns /healthz into 503 after ``stall_after_s`` (the kubelet then restarts the
container) while /metrics keeps answering; SIGTERM then ends the process at the shutdown deadline, and
the uncommitted batch is read again by the next process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from headrace.ops.shutdown import EXIT_SHUTDOWN_DEADLINE
from streams.codec import decode

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

FAULTY = Path(__file__).with_name("faulty_headrace.py")
PAGES = 33  # HTML pages in samples/python-docs.warc.gz


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name:
            got = ",".join(sorted(m.group(2).split(","))) if m.group(2) else ""
            if got == want or (not want and not got):
                return float(m.group(3))
    return None


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Pipeline:
    """One isolated pipeline (topic prefix) on the session's broker."""

    def __init__(self, bootstrap: str, tmp: Path) -> None:
        self.bootstrap = bootstrap
        self.tmp = tmp
        self.prefix = f"ops-{uuid.uuid4().hex[:8]}."
        self.env = dict(os.environ)
        self.env.update(
            HEADRACE_BUS__TOPIC_PREFIX=self.prefix,
            HEADRACE_BUS__PARTITIONS="2",
            HEADRACE_BUS__BATCH_SIZE="4",
            HEADRACE_EXTRACT__WORKERS="0",
            HEADRACE_OPS__HOST="127.0.0.1",
            HEADRACE_OPS__LAG_INTERVAL_S="1",
            HEADRACE_KAFKA__SESSION_TIMEOUT_MS="6000",
            # The embedded dedup index defaults to ./dedup-index: one per test, not one for the checkout.
            HEADRACE_DEDUP__DIRECTORY=str(tmp / "dedup-index"),
            # The sample is code-heavy: with the FineWeb filters only a few pages would survive, and
            # these tests need a stream of documents, not a verdict on their quality.
            HEADRACE_QUALITY__ENABLED="false",
        )
        self.env.pop("HEADRACE_OPS__METRICS_PORT", None)
        self.group = f"{self.prefix}headrace-process"

    def replay(self, warc: Path) -> None:
        res = subprocess.run(
            [sys.executable, "-m", "headrace", "replay", str(warc), "--bootstrap", self.bootstrap],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["pages_published"] == PAGES

    def start(self, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                str(FAULTY),
                "consume",
                "process",
                "--bootstrap",
                self.bootstrap,
                "--metrics-port",
                str(port),
                "--json-logs",
                "-v",
                *extra,
            ],
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return proc, port

    def committed(self, group: str | None = None) -> dict[int, int]:
        group = group or self.group
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
            return {tp.partition: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}
        finally:
            admin.close()

    def members(self) -> int:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            return len(admin.describe_groups([self.group])[self.group]["members"])
        finally:
            admin.close()

    def outputs(self) -> Counter[str]:
        """URL of every output the process group committed (documents, rejections, dead letters)."""
        topics = [f"{self.prefix}{t}" for t in ("docs.clean", "docs.rejected", "dlq")]
        consumer = KafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=4000,
        )
        urls: Counter[str] = Counter()
        try:
            for rec in consumer:
                item = decode(rec.value)
                urls[getattr(item, "url", "") or f"dlq:{rec.offset}"] += 1
        finally:
            consumer.close()
        return urls

    def outputs_of(self, topic: str) -> int:
        consumer = KafkaConsumer(
            f"{self.prefix}{topic}",
            bootstrap_servers=self.bootstrap,
            group_id=None,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=4000,
        )
        try:
            return sum(1 for _ in consumer)
        finally:
            consumer.close()

    def marks(self, path: Path) -> list[tuple[str, float]]:
        if not path.exists():
            return []
        return [(p[0], float(p[1])) for p in (line.split() for line in path.read_text().splitlines()) if p]


def finish_and_check_exactly_once(pipe: Pipeline) -> None:
    """A fault-free process reads the rest; every page comes out exactly once."""
    proc, _ = pipe.start("--idle-exit", "6")
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    urls = pipe.outputs()
    assert sum(urls.values()) == PAGES, urls
    assert all(n == 1 for n in urls.values()), [u for u, n in urls.items() if n > 1]
    assert sum(pipe.committed().values()) == PAGES


def test_sigterm_mid_batch_commits_what_was_consumed_and_leaves(
    kafka_bootstrap: str, sample_warc: Path, tmp_path: Path
) -> None:
    pipe = Pipeline(kafka_bootstrap, tmp_path)
    pipe.replay(sample_warc)
    marks = tmp_path / "marks"
    grace, margin = 20.0, 5.0
    proc, port = pipe.start(
        env={
            "FAULT_BATCH_DELAY_S": "1.5",
            "FAULT_MARK_FILE": str(marks),
            "HEADRACE_OPS__SHUTDOWN_GRACE_S": str(grace),
            "HEADRACE_OPS__SHUTDOWN_MARGIN_S": str(margin),
        }
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http(f"{base}/readyz")[0] == 200, 90, "readiness")
        text = http(f"{base}/metrics")[1]
        assert metric(text, "headrace_assigned_partitions") == 2.0
        # Wait for a batch to be committed and the next one to start, then signal inside that batch.
        wait_for(
            lambda: (
                (metric(http(f"{base}/metrics")[1], "headrace_committed_messages_total", stage="process") or 0) >= 4
            ),
            90,
            "a committed batch",
        )
        wait_for(lambda: pipe.marks(marks) and pipe.marks(marks)[-1][0] == "start", 30, "a batch in flight", 0.02)
        # The lag gauge is measured off the loop; by now it has been published for both partitions.
        lag = wait_for(lambda: "headrace_consumer_lag{" in http(f"{base}/metrics")[1], 15, "lag gauge")
        assert lag
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: http(f"{base}/readyz")[0] in (503, 0), 5, "not ready while draining", 0.05)
        out, err = proc.communicate(timeout=grace + 10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert elapsed <= grace - margin, f"drain took {elapsed:.2f}s"
    events = [e for e, _ in pipe.marks(marks)]
    assert events[-1] == "end", "the batch in flight at SIGTERM was finished, not cut"
    report = json.loads(out)
    consumed = report["counts"]["process/committed"]
    committed = pipe.committed()
    urls = pipe.outputs()
    # Kafka's clean-bounce assertion: committed position == consumed count, and downstream read_committed
    # readers see exactly one output per consumed page.
    assert sum(committed.values()) == consumed
    assert sum(urls.values()) == consumed and all(n == 1 for n in urls.values())
    assert 0 < consumed < PAGES
    assert pipe.members() == 0, "the member left the group on close"
    seconds = report["seconds"]
    print(
        f"\nSIGTERM drain: {elapsed:.2f}s wall; finish-batch {seconds['ops/shutdown/finish-batch']:.2f}s "
        f"(includes the injected 1.5s delay), commit+close+leave {seconds['ops/shutdown/commit-close']:.3f}s"
    )
    finish_and_check_exactly_once(pipe)


def test_hung_extraction_fails_liveness_and_is_aborted_at_the_deadline(
    kafka_bootstrap: str, sample_warc: Path, tmp_path: Path
) -> None:
    pipe = Pipeline(kafka_bootstrap, tmp_path)
    pipe.replay(sample_warc)
    hang, marks = tmp_path / "hang", tmp_path / "marks"
    stall, grace, margin = 3.0, 10.0, 2.0
    proc, port = pipe.start(
        env={
            "FAULT_HANG_FILE": str(hang),
            "FAULT_MARK_FILE": str(marks),
            "HEADRACE_OPS__STALL_AFTER_S": str(stall),
            "HEADRACE_OPS__SHUTDOWN_GRACE_S": str(grace),
            "HEADRACE_OPS__SHUTDOWN_MARGIN_S": str(margin),
        }
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http(f"{base}/readyz")[0] == 200, 90, "readiness")
        wait_for(
            lambda: (
                (metric(http(f"{base}/metrics")[1], "headrace_committed_messages_total", stage="process") or 0) >= 4
            ),
            90,
            "a committed batch",
        )
        assert http(f"{base}/healthz")[0] == 200
        hang.touch()  # the next extraction call hangs
        hung_at = wait_for(lambda: next((t for e, t in pipe.marks(marks) if e == "hang"), None), 60, "the hang")
        wait_for(lambda: http(f"{base}/healthz")[0] == 503, stall + 10, "liveness to fail")
        detected = time.monotonic() - hung_at
        status, body = http(f"{base}/healthz")
        verdict = json.loads(body)
        assert status == 503 and verdict["phase"] == "work" and "stalled" in verdict["reason"]
        assert stall <= detected <= stall + 3.0, f"liveness failed {detected:.1f}s after the hang"
        assert http(f"{base}/readyz")[0] == 503
        text = http(f"{base}/metrics")[1]  # still served while the loop is stuck
        assert metric(text, "headrace_live") == 0.0
        assert metric(text, "headrace_loop_phase", phase="work") == 1.0
        assert (metric(text, "headrace_loop_phase_age_seconds") or 0) > stall
        committed_before = sum(pipe.committed().values())
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=grace + 10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        hang.unlink(missing_ok=True)
    assert proc.returncode == EXIT_SHUTDOWN_DEADLINE, err[-3000:]
    assert grace - margin - 0.5 <= elapsed < grace, f"exit after {elapsed:.2f}s"
    assert "shutdown deadline" in err and "extract_batch" in err  # the stack shows where it hung
    print(f"\nliveness failed {detected:.2f}s after the hang (stall_after_s={stall}); exit after {elapsed:.2f}s")
    # The hung batch was never committed: nothing downstream, and the next process reads it again.
    assert sum(pipe.committed().values()) == committed_before
    assert sum(pipe.outputs().values()) == committed_before < PAGES
    finish_and_check_exactly_once(pipe)


def test_sigterm_seals_open_shards_and_commits_them(kafka_bootstrap: str, sample_warc: Path, tmp_path: Path) -> None:
    """The shard writer's drain: everything it holds in open shards is sealed and committed on SIGTERM,
    so committed offsets == the sealed manifests' ends == what it consumed, and a restart re-reads nothing."""
    from consumers.shards.reader import list_shards

    pipe = Pipeline(kafka_bootstrap, tmp_path)
    pipe.replay(sample_warc)
    for group in ("process", "dedup"):
        res = subprocess.run(
            [sys.executable, "-m", "headrace", "consume", group, "--bootstrap", kafka_bootstrap, "--idle-exit", "6"],
            env=pipe.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert res.returncode == 0, res.stderr[-3000:]
    shards = tmp_path / "shards"
    port = free_port()
    grace, margin = 30.0, 5.0
    env = {
        **pipe.env,
        "HEADRACE_SHARDS__MAX_AGE_S": "3600",  # nothing seals on its own: SIGTERM must do it
        "HEADRACE_OPS__SHUTDOWN_GRACE_S": str(grace),
        "HEADRACE_OPS__SHUTDOWN_MARGIN_S": str(margin),
    }
    cmd = [sys.executable, "-m", "headrace", "consume", "shards", "--bootstrap", kafka_bootstrap, "--out", str(shards)]
    proc = subprocess.Popen(
        [*cmd, "--metrics-port", str(port), "--instance-id", "shards-0", "--static-member", "--json-logs"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        unique = pipe.outputs_of("docs.unique")
        assert unique > 20
        wait_for(lambda: metric(http(f"{base}/metrics")[1], "headrace_shard_documents_total") == unique, 120, "docs")
        assert metric(http(f"{base}/metrics")[1], "headrace_shards_sealed_total") in (None, 0.0)
        assert list_shards(shards) == []
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=grace + 10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert elapsed <= grace - margin
    sealed = list_shards(shards)
    assert sum(s.manifest.documents for s in sealed) == unique
    ends = {r.partition: r.end for s in sealed for r in s.manifest.sources}
    group = f"{pipe.prefix}headrace-shards"
    committed = pipe.committed(group)
    assert committed == ends  # sealed, then committed: the same cut
    seal_commit = json.loads(out)["seconds"]["ops/shutdown/commit-close"]
    print(f"\nshards SIGTERM: {elapsed:.2f}s to exit; seal {len(sealed)} shards + commit + close {seal_commit:.3f}s")
    # A restart under the same static identity rejoins at once and finds nothing to do: no re-read, no new shard.
    again = subprocess.run(
        [*cmd, "--instance-id", "shards-0", "--static-member", "--idle-exit", "8"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["counts"].get("shards/docs", 0) == 0
    assert len(list_shards(shards)) == len(sealed)
