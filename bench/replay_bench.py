#!/usr/bin/env python3
"""WARC replay throughput: pages/s on one core, headrace replay vs warcio iteration alone.

    .venv/bin/python bench/replay_bench.py                   # starts a Kafka broker, 3 runs, prints a table
    .venv/bin/python bench/replay_bench.py --append BENCHMARKS.md

Every run reads the real archives of the shared corpus (``$HEADRACE_TEST_DATA`` or ../shared/data,
the 18 files of SOURCES.md's table; the quirk files are left out because warcio cannot read them)
``--repeat`` times (the corpus is small: 8 MB, 385 HTML pages). The process is pinned to one CPU; the
broker runs unpinned on the others. Measured, in the same run, side by side:

* ``warcio``: warcio's ArchiveIterator over every record, reading the content of response records
  labelled HTML (what datatrove's WarcReader does before its libmagic and decode steps): the limit.
* ``fastwarc``: the same with FastWARC, when installed (reference only; not used by replay).
* ``reader``: headrace's reader (crawler.warc.WarcReader), pages built, nothing published.
* ``embedded``: crawler.replay.Replayer into the in-memory bus with a transactional publisher
  (encode, publish, checkpoint commits): what ``headrace run`` pays for input.
* ``kafka``: the same into a real Kafka broker, transactions with checkpoints: ``headrace replay``.

pages/s = HTML pages / wall seconds with the process on one core; medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crawler.replay import Replayer  # noqa: E402
from crawler.replay_config import ReplayConfig  # noqa: E402
from crawler.sources import InputRef, LocalSource  # noqa: E402
from crawler.warc import WarcReader  # noqa: E402
from streams.memory import InMemoryBus  # noqa: E402
from streams.records import Page  # noqa: E402
from streams.topics import Topics  # noqa: E402

HTML = ("text/html", "application/xhtml+xml")


def corpus(data_dir: Path) -> list[Path]:
    files = sorted(p for p in data_dir.glob("*.warc*") if p.is_file())
    if not files:
        sys.exit(f"no archives in {data_dir} (set HEADRACE_TEST_DATA)")
    return files


Result = tuple[float, float, int]  # wall seconds, CPU seconds (all threads), HTML pages


def clock(fn: Callable[[], int]) -> Result:
    t0, c0 = time.perf_counter(), time.process_time()
    pages = fn()
    return time.perf_counter() - t0, time.process_time() - c0, pages


def run_warcio(files: list[Path], repeat: int) -> Result:
    from warcio.archiveiterator import ArchiveIterator

    def go() -> int:
        pages = 0
        for _ in range(repeat):
            for f in files:
                with f.open("rb") as fh:
                    for rec in ArchiveIterator(fh, arc2warc=True):
                        if rec.rec_type not in ("response", "conversion"):
                            continue
                        ct = (rec.http_headers.get_header("Content-Type") if rec.http_headers else "") or ""
                        pt = rec.rec_headers.get_header("WARC-Identified-Payload-Type") or ""
                        if any(h in (pt or ct).lower() for h in HTML):
                            pages += bool(rec.content_stream().read())
        return pages

    return clock(go)


FASTWARC_FAILURES: set[str] = set()


def run_fastwarc(files: list[Path], repeat: int) -> Result:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    def go() -> int:
        pages = 0
        for _ in range(repeat):
            for f in files:
                with f.open("rb") as fh:
                    try:
                        for rec in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
                            ct = (rec.http_headers.get("Content-Type") if rec.http_headers else "") or ""
                            pt = rec.headers.get("WARC-Identified-Payload-Type") or ""
                            if any(h in (pt or ct).lower() for h in HTML):
                                pages += bool(rec.reader.read())
                    except OSError as exc:  # FastWARC gives up on some real files (e.g. long headers)
                        FASTWARC_FAILURES.add(f"{f.name}: {exc}")
        return pages

    return clock(go)


def run_reader(files: list[Path], repeat: int) -> Result:
    def go() -> int:
        pages = 0
        for _ in range(repeat):
            for f in files:
                for item, _ in WarcReader(LocalSource(str(f))):
                    pages += isinstance(item, Page)
        return pages

    return clock(go)


def run_replay(bus_factory: Callable[[], tuple[object, Callable[[], None]]], files: list[Path], repeat: int) -> Result:
    """Replay the corpus ``repeat`` times through one transactional publisher (fresh checkpoints each
    pass, so every pass publishes everything). Topic creation and producer start-up are not timed."""
    cfg = ReplayConfig()
    bus, close = bus_factory()
    topics = Topics(prefix=f"bench-{uuid.uuid4().hex[:8]}.")
    bus.ensure_topics(topics.specs(4))  # type: ignore[attr-defined]
    publisher = bus.publisher(transactional_id=f"bench-{uuid.uuid4().hex[:8]}")  # type: ignore[attr-defined]
    producer = getattr(publisher, "_producer", None)
    if producer is not None:  # fetch topic metadata now, not inside the timed loop
        for topic in (topics.pages_raw, topics.replay_progress, topics.dlq):
            producer.partitions_for(topic)
    refs = [InputRef(str(f)) for f in files]

    def go() -> int:
        return sum(Replayer(publisher, topics, cfg).replay(refs).pages for _ in range(repeat))

    try:
        return clock(go)
    finally:
        publisher.close()
        close()


@contextlib.contextmanager
def kafka_broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    spec = importlib.util.spec_from_file_location("hr_broker", REPO / "tools" / "kafka" / "broker.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["hr_broker"] = mod
    spec.loader.exec_module(mod)
    with tempfile.TemporaryDirectory(prefix="replay-bench-kafka-") as d:
        broker = mod.Broker(Path(d), die_with_parent=True)
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.stop()


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    return (
        f"{model or platform.processor()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} at start"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="folder of archives (default: the shared corpus)")
    ap.add_argument("--repeat", type=int, default=5, help="passes over the corpus per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin the benchmark to (-1: no pinning)")
    ap.add_argument("--only", default="", help="comma-separated subset of warcio,fastwarc,reader,embedded,kafka")
    ap.add_argument("--append", type=Path, default=None, help="append the result section to this markdown file")
    args = ap.parse_args()

    data_dir = args.data or Path(os.environ.get("HEADRACE_TEST_DATA") or REPO.parent / "shared" / "data")
    if not data_dir.is_dir():
        data_dir = Path("/work/shared/data")
    files = corpus(data_dir)
    size = sum(f.stat().st_size for f in files)
    wanted = set(filter(None, args.only.split(","))) or {"warcio", "fastwarc", "reader", "embedded", "kafka"}
    if importlib.util.find_spec("fastwarc") is None:
        wanted.discard("fastwarc")

    with kafka_broker(args.bootstrap if "kafka" in wanted else "unused") as bootstrap:
        if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {args.cpu})  # after the broker started: it keeps every CPU

        def memory_bus() -> tuple[object, Callable[[], None]]:
            bus = InMemoryBus()
            return bus, bus.close

        def kafka_bus() -> tuple[object, Callable[[], None]]:
            from streams.kafka import KafkaBus, KafkaSettings

            bus = KafkaBus(KafkaSettings(bootstrap=bootstrap))
            return bus, bus.close

        cases: dict[str, Callable[[], Result]] = {
            "warcio": lambda: run_warcio(files, args.repeat),
            "fastwarc": lambda: run_fastwarc(files, args.repeat),
            "reader": lambda: run_reader(files, args.repeat),
            "embedded": lambda: run_replay(memory_bus, files, args.repeat),
            "kafka": lambda: run_replay(kafka_bus, files, args.repeat),
        }
        results: dict[str, list[Result]] = {k: [] for k in cases if k in wanted}
        for run in range(args.runs):
            for name, runs in results.items():  # interleaved, so load drifts hit every case alike
                runs.append(cases[name]())
                wall, cpu, pages = runs[-1]
                print(
                    f"run {run + 1} {name:9s} {pages:6d} pages {wall:7.2f}s wall {cpu:7.2f}s cpu "
                    f"{pages / wall:8.0f} pages/s",
                    flush=True,
                )

    rows = []
    base = statistics.median(p / w for w, _, p in results["warcio"]) if "warcio" in results else 0.0
    base_cpu = statistics.median(p / c for _, c, p in results["warcio"]) if "warcio" in results else 0.0
    for name, runs in results.items():
        rates = [p / w for w, _, p in runs]
        cpu_rates = [p / c for _, c, p in runs if c > 0]
        med, med_cpu = statistics.median(rates), statistics.median(cpu_rates)
        ratio = f"{med / base:.2f}" if base else "–"
        ratio_cpu = f"{med_cpu / base_cpu:.2f}" if base_cpu else "–"
        rows.append(
            f"| {name} | {runs[0][2]:,} | {med:,.0f} | {min(rates):,.0f}–{max(rates):,.0f} | {ratio} "
            f"| {med_cpu:,.0f} | {ratio_cpu} |"
        )
    cmd = "python bench/replay_bench.py " + " ".join(sys.argv[1:])
    section = "\n".join(
        [
            f"### WARC replay ({time.strftime('%Y-%m-%d')})",
            "",
            f"Command: `{cmd.strip()}`. Machine: {machine()}. Process pinned to CPU {args.cpu}; "
            f"corpus: {len(files)} files, {size / 1e6:.1f} MB, read {args.repeat}× per run; "
            f"medians of {args.runs} runs.",
            "",
            "| case | HTML pages per run | pages/s, one core (wall) | min–max | ratio to warcio "
            "| pages per CPU-second | ratio to warcio (CPU) |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    if FASTWARC_FAILURES:
        section += "\nFastWARC stopped early on: " + "; ".join(sorted(FASTWARC_FAILURES)) + "\n"
    print()
    print(section)
    if args.append:
        with args.append.open("a", encoding="utf-8") as fh:
            fh.write("\n" + section)


if __name__ == "__main__":
    main()
