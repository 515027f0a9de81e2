"""Kafka overhead: the pipeline as separate processes over a real broker vs ``headrace run`` embedded.

One command (``make bench-kafka``):

    python bench/kafka_overhead.py [--pages 5000] [--runs 3] [--inputs WARC ...] [--append BENCHMARKS.md]

Same input, same config for both (``--extractor``, default resiliparse; ``--batch-size`` messages per
transaction; shards rolled by time every second):

* embedded: ``headrace run INPUTS`` (one process, in-memory bus); docs/s = documents sealed / wall time
  of the command.
* kafka: one ``headrace consume`` process each for process, dedup and shards, already running and
  joined to their groups (as in a deployment), then ``headrace replay``; docs/s = the same number of
  documents / wall time from the replay's launch until the shards hold all of them. The broker is
  started once, outside the timing, and both modes get one unmeasured warm-up run on the first file.

The default input is synthetic (N unique English-like HTML pages, the crash test's generator), which
keeps per-document work small so that bus overhead is as visible as it gets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools" / "kafka"))

from broker import Broker  # noqa: E402
from integration.crash_harness import sealed_doc_ids, write_corpus  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402
from kafka.errors import KafkaError  # noqa: E402

EXTRACTOR = "resiliparse"
BATCH = 256


def env_for(prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_") or k.startswith("HEADRACE_KAFKA_")}
    env.update(
        {
            "HEADRACE_BUS__TOPIC_PREFIX": prefix,
            "HEADRACE_BUS__PARTITIONS": "4",
            "HEADRACE_EXTRACT__EXTRACTOR": EXTRACTOR,
            "HEADRACE_BUS__BATCH_SIZE": str(BATCH),
            "HEADRACE_SHARDS__MAX_AGE_S": "1.0",
        }
    )
    return env


class SealedCounter:
    """Documents in sealed shards, reading each new manifest once (polling must not steal the CPU)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen: dict[str, int] = {}

    def count(self) -> int:
        from consumers.shards.manifest import read_manifest

        if self.directory.is_dir():
            for p in self.directory.glob("*.manifest.json"):
                if p.name not in self.seen:
                    self.seen[p.name] = read_manifest(p).documents
        return sum(self.seen.values())


def hr(*args: str) -> list[str]:
    return [sys.executable, "-m", "headrace", *args]


def run_embedded(inputs: list[str], work: Path) -> tuple[int, float]:
    out = work / f"embedded-{uuid.uuid4().hex[:6]}"
    t0 = time.perf_counter()
    res = subprocess.run(
        hr("run", *inputs, "--out", str(out), "--no-progress"),
        env=env_for("emb."),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if res.returncode not in (0, 3):
        raise SystemExit(f"headrace run failed: {res.stderr[-2000:]}")
    docs = sum(sealed_doc_ids(out / "shards").values())
    shutil.rmtree(out, ignore_errors=True)
    return docs, elapsed


def run_kafka(inputs: list[str], work: Path, bootstrap: str, expected: int, timeout: float = 900) -> tuple[int, float]:
    """Consumers are long-running in a deployment: start them, wait until they have joined their
    groups, then time from the replay's launch until the shards hold every document."""
    prefix = f"ko-{uuid.uuid4().hex[:8]}."
    env = env_for(prefix)
    shards = work / f"kafka-{uuid.uuid4().hex[:6]}"
    logs = work / f"logs-{uuid.uuid4().hex[:6]}"
    logs.mkdir()
    subprocess.run(hr("topics", "create", "--bootstrap", bootstrap), env=env, capture_output=True, check=True)
    procs = []
    for g in ("process", "dedup", "shards"):
        with (logs / f"{g}.log").open("wb") as fh:
            procs.append(
                subprocess.Popen(
                    hr("consume", g, "--bootstrap", bootstrap, "--out", str(shards)),
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )
            )
    counter = SealedCounter(shards)
    try:
        deadline = time.monotonic() + 300
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        groups = [f"{prefix}headrace-{g}" for g in ("process", "dedup", "shards")]

        def stable() -> bool:
            try:
                info = admin.describe_groups(groups)
            except KafkaError:  # coordinator not there yet
                return False
            return all(str(info.get(g, {}).get("group_state", "")) == "Stable" for g in groups)

        while not stable():
            if time.monotonic() > deadline:
                raise SystemExit(f"consumers did not join in 300 s; logs in {logs}")
            time.sleep(0.5)
        admin.close()
        t0 = time.perf_counter()
        procs.append(
            subprocess.Popen(
                hr("replay", *inputs, "--bootstrap", bootstrap),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        while True:
            docs = counter.count()
            if docs >= expected:
                break
            if time.perf_counter() - t0 > timeout:
                raise SystemExit(f"kafka pipeline stalled at {docs}/{expected} documents")
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    shutil.rmtree(shards, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    return docs, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--inputs", nargs="*", help="WARC files to use instead of the synthetic corpus")
    ap.add_argument("--extractor", default="resiliparse", choices=["resiliparse", "trafilatura"])
    ap.add_argument("--batch-size", type=int, default=256, help="bus.batch_size (messages per transaction)")
    ap.add_argument("--append", type=Path)
    args = ap.parse_args()
    global EXTRACTOR, BATCH
    EXTRACTOR, BATCH = args.extractor, args.batch_size
    work = Path(tempfile.mkdtemp(prefix="headrace-kafka-bench-"))
    inputs = args.inputs or [str(p) for p in write_corpus(work / "warc", args.pages, n_files=5)]
    broker = Broker(work / "broker", die_with_parent=True)
    broker.start()
    emb_rates, kafka_rates = [], []
    try:
        # Warm-up, not measured: the broker creates its internal topics and loads the group and
        # transaction coordinators on first use, which a running deployment has long done.
        warm_docs, _ = run_embedded(inputs[:1], work)
        run_kafka(inputs[:1], work, broker.bootstrap, warm_docs)
        for i in range(args.runs):
            docs, s = run_embedded(inputs, work)
            emb_rates.append(docs / s)
            kdocs, ks = run_kafka(inputs, work, broker.bootstrap, docs)
            kafka_rates.append(kdocs / ks)
            print(json.dumps({"run": i, "docs": docs, "embedded_s": round(s, 2), "kafka_s": round(ks, 2)}))
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    emb, kaf = statistics.median(emb_rates), statistics.median(kafka_rates)
    src = "synthetic pages" if not args.inputs else "WARC inputs"
    text = "\n".join(
        [
            f"input: {docs} documents ({src}), {args.extractor} extractor, 4 partitions, "
            f"bus.batch_size {args.batch_size}, medians of {args.runs} runs",
            "",
            "| mode | docs/s |",
            "| --- | ---: |",
            f"| `headrace run` (embedded, in-memory bus) | {emb:.0f} |",
            f"| replay + consume process/dedup/shards over Kafka (4 processes) | {kaf:.0f} |",
            "",
            f"kafka / embedded = {kaf / emb:.2f} (goal >= 0.85)",
        ]
    )
    print(text)
    if args.append:
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        cmd = "python bench/kafka_overhead.py " + " ".join(sys.argv[1:])
        with args.append.open("a") as fh:
            fh.write(f"\n## Kafka overhead ({time.strftime('%Y-%m-%d')})\n\n`{cmd}` on {machine}\n\n{text}\n")


if __name__ == "__main__":
    main()
