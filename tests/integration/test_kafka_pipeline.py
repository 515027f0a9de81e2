"""The same input through ``replay`` + ``consume`` over real Kafka gives the same documents as ``run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def headrace(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def dumped_ids(shards: Path, env: dict[str, str]) -> dict[str, str]:
    res = headrace("shards", "dump", str(shards), env=env)
    assert res.returncode == 0, res.stderr
    return {json.loads(line)["doc_id"]: json.loads(line)["text"] for line in res.stdout.splitlines()}


def test_replay_then_consume_equals_embedded_run(kafka_bootstrap: str, sample_warc: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["HEADRACE_BUS__TOPIC_PREFIX"] = f"it-{uuid.uuid4().hex[:8]}."
    env["HEADRACE_BUS__PARTITIONS"] = "2"
    # The quality filters keep only a few of the sample's code-heavy pages; this test is about the
    # two buses giving the same documents, so it keeps more of them (language ID and PII stay on).
    env["HEADRACE_QUALITY__ENABLED"] = "false"

    embedded = headrace("run", str(sample_warc), "--out", str(tmp_path / "run"), "--no-progress", env=env)
    assert embedded.returncode == 0, embedded.stderr
    expected = dumped_ids(tmp_path / "run", env)
    assert len(expected) > 20

    replay = headrace("replay", str(sample_warc), "--bootstrap", kafka_bootstrap, env=env)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["pages_published"] == 33
    for group, extra in (
        ("process", []),
        ("dedup", ["--out", str(tmp_path / "dedup-index")]),  # not ./dedup-index, shared by every test
        ("shards", ["--out", str(tmp_path / "kafka-shards")]),
        ("ledger", ["--out", str(tmp_path / "ledger")]),
    ):
        res = headrace("consume", group, "--bootstrap", kafka_bootstrap, "--idle-exit", "6", *extra, env=env)
        assert res.returncode == 0, f"{group}: {res.stderr}"
    got = dumped_ids(tmp_path / "kafka-shards", env)
    # The same documents, with the same text. One exception is legitimate: of two pages with the same
    # text (the sample has docs.python.org/3/... and /3.11/... copies), dedup keeps whichever arrives
    # first, and arrival order across partitions is the broker's. Then the ids may differ, but both
    # ledgers must name the other copy as its exact duplicate, and the texts must be the same.
    assert sorted(got.values()) == sorted(expected.values())
    swapped = set(got) ^ set(expected)
    dup_pairs = set()
    for ledger in (tmp_path / "ledger" / "rejected.jsonl", tmp_path / "run" / "ledger" / "rejected.jsonl"):
        for line in ledger.read_text().splitlines():
            r = json.loads(line)
            if r["reason"] == "exact-duplicate":
                dup_pairs |= {r["id"], r["duplicate_of"]}
    assert swapped <= dup_pairs, swapped - dup_pairs
    verify = headrace("shards", "verify", str(tmp_path / "kafka-shards"), env=env)
    assert verify.returncode == 0, verify.stdout
