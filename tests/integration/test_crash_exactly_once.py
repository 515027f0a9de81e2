"""Exactly-once under SIGKILL, broker restart and replay, over the real broker (K-3, K-4, K-5, K-8, K-9).

A producer (``headrace replay``) publishes N unique pages; ``process``, ``dedup`` and ``shards`` run as
separate ``headrace consume`` processes, two replicas each. The harness SIGKILLs a random one at
random moments and restarts it, while some launches arm a test-only fault point that kills the
process right after a shard manifest is published and before the group commit (or before the
manifest, or before a stage's transaction commits). After recovery the shards must hold exactly the
doc_ids that the embedded run (``headrace run``) produces from the same input: 0 lost, 0 duplicated.

Sizes: ``HEADRACE_CRASH_PAGES`` (default 5000) and ``HEADRACE_CRASH_KILLS`` (default 50);
``make crash-test-big`` runs a larger variant.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from integration.crash_harness import (
    Fleet,
    PipelineProbe,
    base_env,
    headrace_cmd,
    run_replay,
    sealed_doc_ids,
    write_corpus,
)

from consumers.shards.reader import corpus_fingerprint, list_shards, verify_shards

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PAGES = int(os.environ.get("HEADRACE_CRASH_PAGES", "5000"))
KILLS = int(os.environ.get("HEADRACE_CRASH_KILLS", "50"))
SEED = int(os.environ.get("HEADRACE_CRASH_SEED", "7"))


def embedded_doc_ids(files: list[Path], env: dict[str, str], out: Path) -> dict[str, int]:
    """The oracle: what the single-process pipeline keeps from the same input (doc_id -> page no.)."""
    res = subprocess.run(
        headrace_cmd("run", *map(str, files), "--out", str(out), "--no-progress"),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    ids = sealed_doc_ids(out / "shards")
    assert max(ids.values(), default=1) == 1
    return {d.doc_id: page_number(d.url) for s in list_shards(out / "shards") for d in s.manifest.docs}


def page_number(url: str) -> int:
    return int(url.rsplit("/", 1)[1].split(".", maxsplit=1)[0])


def wait_until_settled(
    probe: PipelineProbe, fleet: Fleet, shards_dir: Path, expected: set[str], timeout: float
) -> Counter[str]:
    """Restart dead members until every expected document is sealed and no group has lag."""
    deadline = time.monotonic() + timeout
    while True:
        fleet.reap()
        got = sealed_doc_ids(shards_dir)
        if set(got) >= expected and probe.idle(shards_dir):
            return got
        if time.monotonic() > deadline:
            missing = len(expected - set(got))
            pytest.fail(
                f"pipeline did not settle in {timeout:.0f}s: {missing} documents missing, logs in {fleet.workdir}"
            )
        time.sleep(1.0)


def check_exactly_once(got: Counter[str], expected: set[str], shards_dir: Path) -> None:
    dups = {d: n for d, n in got.items() if n > 1}
    lost = expected - set(got)
    extra = set(got) - expected
    assert not dups, f"{len(dups)} duplicated documents, e.g. {list(dups.items())[:3]}"
    assert not lost, f"{len(lost)} lost documents"
    assert not extra, f"{len(extra)} unexpected documents"
    report = verify_shards(shards_dir)
    assert report.ok, report.problems[:5]
    assert report.documents == len(expected)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], dict[str, int]]:
    root = tmp_path_factory.mktemp("crash-corpus")
    files = write_corpus(root / "warc", PAGES, n_files=10, seed=SEED)
    expected = embedded_doc_ids(files, base_env("oracle."), root / "embedded")
    # Every page is unique and readable: the oracle must keep (nearly) all of them.
    assert len(expected) >= 0.95 * PAGES, f"embedded run kept only {len(expected)} of {PAGES} pages"
    return files, expected


def shared_dedup(redis_url: str, prefix: str) -> dict[str, str]:
    """Two dedup replicas share one index, as in a deployment: the Redis backend (an embedded index
    belongs to one process; a second replica on the same folder could never start)."""
    return {
        "HEADRACE_DEDUP__BACKEND": "redis",
        "HEADRACE_DEDUP__REDIS_URL": redis_url,
        "HEADRACE_DEDUP__REDIS_NAMESPACE": prefix.rstrip("."),
    }


def test_sigkill_storm_then_replay_is_exactly_once(
    kafka_bootstrap: str, redis_url: str, corpus: tuple[list[Path], dict[str, int]], tmp_path: Path
) -> None:
    files, oracle = corpus
    expected = set(oracle)
    rng = random.Random(SEED)
    prefix = f"crash-{uuid.uuid4().hex[:8]}."
    env = base_env(prefix, **shared_dedup(redis_url, prefix))
    shards_dir = tmp_path / "shards"
    fleet = Fleet(
        kafka_bootstrap,
        env,
        tmp_path / "logs",
        shards_dir,
        rng=random.Random(SEED + 1),
        # Both shard writers die right after their first seal, before committing: the warm-up below
        # cannot finish without at least one kill between seal and commit.
        first_faults={"shards-0": "shards.after-seal:1", "shards-1": "shards.after-seal:1"},
        replicas={"process": 2, "dedup": 2, "shards": 2},  # two dedup replicas on the shared Redis index
    )
    probe = PipelineProbe(kafka_bootstrap, env)
    kills: list[dict[str, Any]] = []
    published = 0
    producer: threading.Thread | None = None
    replay_rc: list[int] = []
    try:
        fleet.start()
        # Warm-up: the first file flows through until a shard is sealed, so that the kills below hit a
        # pipeline that is sealing and committing, not one still starting up.
        replay_rc.append(run_replay(kafka_bootstrap, env, files[:1], tmp_path / "replay.log"))
        published = 1
        deadline = time.monotonic() + 300
        while not sealed_doc_ids(shards_dir):
            assert time.monotonic() < deadline, f"nothing sealed in 300 s; logs in {fleet.workdir}"
            fleet.reap()
            time.sleep(0.5)
        # The producer publishes the other files over the kill phase so the kills land mid-stream.
        while fleet.harness_kills < KILLS or published < len(files):
            due = min(len(files), 2 + fleet.harness_kills * len(files) // max(1, KILLS - 5))
            if published < due and (producer is None or not producer.is_alive()):
                batch = files[published:due]
                producer = threading.Thread(
                    target=lambda b=batch: replay_rc.append(
                        run_replay(kafka_bootstrap, env, b, tmp_path / "replay.log")
                    )
                )
                producer.start()
                published = due
            time.sleep(rng.uniform(1.5, 5.0))  # slower than recovery, so work goes on
            fleet.reap()
            victim = fleet.kill_random()
            sealed = sum(sealed_doc_ids(shards_dir).values())
            kills.append({"victim": victim.instance_id, "sealed": sealed, "published": len(replay_rc) > 0})
        if producer is not None:
            producer.join()
        assert replay_rc and all(rc == 0 for rc in replay_rc), f"replay failed: {replay_rc}"

        got = wait_until_settled(probe, fleet, shards_dir, expected, timeout=300)
        time.sleep(3)  # a late duplicate would arrive now
        fleet.reap()
        codes = fleet.stop()
        got = sealed_doc_ids(shards_dir)
        check_exactly_once(got, expected, shards_dir)

        # Mid-stream: input was already published and not everything was sealed yet.
        mid_stream = sum(1 for k in kills if 0 < k["sealed"] < len(expected))
        summary = {
            "pages": PAGES,
            "expected_docs": len(expected),
            "harness_sigkills": fleet.harness_kills,
            "kills_mid_stream": mid_stream,
            "sealed_docs_at_first_and_last_kill": [kills[0]["sealed"], kills[-1]["sealed"]],
            "fault_point_kills": dict(fleet.fault_hits),
            "unexpected_crashes": dict(fleet.crashes),
            "shards": len(list_shards(shards_dir)),
            "exit_codes_at_stop": codes,
        }
        print(json.dumps(summary, indent=1))
        assert fleet.harness_kills >= KILLS
        assert mid_stream >= KILLS // 2, summary  # the kills really hit a pipeline at work
        assert kills[-1]["sealed"] > kills[0]["sealed"], summary  # and it kept sealing during the storm
        assert fleet.fault_hits["shards.after-seal"] >= 1, summary  # killed between seal and commit

        # K-9: the same input again adds nothing and changes no shard.
        before = corpus_fingerprint(shards_dir)
        manifests = sorted(p.name for p in shards_dir.glob("*.manifest.json"))
        fleet.arm_faults = False
        fleet.start()
        assert run_replay(kafka_bootstrap, env, files, tmp_path / "replay2.log") == 0
        wait_until_settled(probe, fleet, shards_dir, expected, timeout=300)
        time.sleep(3)
        fleet.stop()
        assert sorted(p.name for p in shards_dir.glob("*.manifest.json")) == manifests
        assert corpus_fingerprint(shards_dir) == before
        check_exactly_once(sealed_doc_ids(shards_dir), expected, shards_dir)
    finally:
        fleet.kill_all()
        probe.close()


def test_broker_restart_mid_stream_is_exactly_once(
    kafka_local_broker: Any, redis_url: str, corpus: tuple[list[Path], dict[str, int]], tmp_path: Path
) -> None:
    files, oracle = corpus
    files = files[:3]  # a smaller run: what matters is the restart in the middle
    per_file = -(-PAGES // 10)
    expected = {d for d, page in oracle.items() if page < 3 * per_file}
    bootstrap = kafka_local_broker.bootstrap
    prefix = f"bounce-{uuid.uuid4().hex[:8]}."
    env = base_env(prefix, **shared_dedup(redis_url, prefix))
    shards_dir = tmp_path / "shards"
    fleet = Fleet(bootstrap, env, tmp_path / "logs", shards_dir, arm_faults=False)
    probe: PipelineProbe | None = None
    try:
        fleet.start()
        rcs: list[int] = []
        producer = threading.Thread(target=lambda: rcs.append(run_replay(bootstrap, env, files, tmp_path / "r.log")))
        producer.start()
        deadline = time.monotonic() + 300
        while not sealed_doc_ids(shards_dir):  # restart as soon as the first shard is sealed
            assert time.monotonic() < deadline, f"no shard sealed; logs in {fleet.workdir}"
            fleet.reap()
            time.sleep(0.2)
        sealed_at_restart = sum(sealed_doc_ids(shards_dir).values())
        kafka_local_broker.restart()
        producer.join()
        assert rcs == [0], "replay failed across the broker restart"
        probe = PipelineProbe(bootstrap, env)
        wait_until_settled(probe, fleet, shards_dir, expected, timeout=300)
        time.sleep(3)
        fleet.stop()
        print(
            json.dumps(
                {"sealed_at_restart": sealed_at_restart, "expected": len(expected), "crashes": dict(fleet.crashes)}
            )
        )
        assert sealed_at_restart < len(expected)  # the restart really happened mid-stream
        check_exactly_once(sealed_doc_ids(shards_dir), expected, shards_dir)
    finally:
        fleet.kill_all()
        if probe is not None:
            probe.close()
