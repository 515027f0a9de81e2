"""Crash harness: run the stage groups as real ``headrace consume`` processes and kill them.

Used by ``test_crash_exactly_once.py`` and by ``make crash-test-big``. Pieces:

* :func:`write_corpus` writes synthetic WARC files of HTML pages with unique URLs and unique,
  English-looking text (distinct enough that no dedup or quality stage has a reason to drop them).
* :class:`Fleet` runs ``process``, ``dedup`` and ``shards`` consumer processes (stable instance ids,
  so a restarted member reuses its transactional id and fences its dead predecessor), SIGKILLs a
  random one on request, restarts dead ones, and arms the test-only fault points of
  ``streams/faults.py`` on some launches (kill right after a manifest is published and before the
  group commit, before a manifest is published, or before a stage's transaction commits).
* :func:`sealed_doc_ids` reads what the shards hold, as a loader would (manifests only).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from consumers.shards.reader import list_shards
from headrace.config import PipelineConfig, load_config
from headrace.consume import group_id
from headrace.pipeline import topics_for
from streams.bus import TopicPartition
from streams.kafka import KafkaBus, KafkaSettings, consumer_config

WORDS = (  # noqa: SIM905 - a word list reads better as text
    "the of and to in is was for that with as on by at from it this which are be or an were has had not "
    "but have its they their one also been all after new first two more other when who into time only "
    "over some most many made during years between would may these can such such about through while "
    "river valley village town city county school church family house garden market bridge road station "
    "water stone forest field hill lake island coast harbour mill farm castle tower library museum summer "
    "winter spring autumn morning evening night season weather rain snow wind storm light shadow people "
    "children farmers workers students teachers writers painters builders travellers neighbours built "
    "opened closed moved grew changed started finished visited described recorded remembered small large "
    "old early late long short quiet busy local northern southern eastern western famous history story "
    "record letter report journal map picture song book paper note list account survey railway canal "
    "trade wool grain timber iron coal salt cloth bread cheese apples fish cattle horses council mayor "
    "bishop merchant captain doctor engineer teacher baker miller carpenter blacksmith"
).split()


def page_text(rng: random.Random, n_paragraphs: int = 4) -> str:
    paras = []
    for _ in range(n_paragraphs):
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
            # Every sentence has stop words (lower case, after the first word), so Gopher's
            # stop-word rule has no reason to drop a page, whatever the draw.
            words[1:1] = ["and", "the"]
            sentences.append(" ".join(words).capitalize() + ".")
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)


def page_html(title: str, text: str) -> bytes:
    body = "".join(f"<p>{p}</p>\n" for p in text.split("\n\n"))
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title></head>"
        f"<body><nav><a href=/>Home</a></nav><main><article><h1>{title}</h1>\n{body}</article></main>"
        f"<footer>Local history notes</footer></body></html>"
    ).encode()


def write_corpus(directory: Path, n_pages: int, n_files: int, seed: int = 7) -> list[Path]:
    """``n_pages`` unique HTML pages spread over ``n_files`` gzipped WARC files."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files: list[Path] = []
    per_file = -(-n_pages // n_files)
    made = 0
    for f in range(n_files):
        path = directory / f"crash-{f:03d}.warc.gz"
        with path.open("wb") as fh:
            writer = WARCWriter(fh, gzip=True)
            for _ in range(min(per_file, n_pages - made)):
                url = f"https://history-{made % 97}.example.org/notes/{made:06d}.html"
                body = page_html(f"Notes on place {made}", page_text(rng))
                headers = StatusAndHeaders(
                    "200 OK",
                    [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
                    protocol="HTTP/1.1",
                )
                rec = writer.create_warc_record(
                    url,
                    "response",
                    payload=BytesIO(body),
                    http_headers=headers,
                    warc_headers_dict={"WARC-Date": "2024-05-01T12:00:00Z"},
                )
                writer.write_record(rec)
                made += 1
        files.append(path)
    return files


def sealed_doc_ids(shards_dir: Path) -> Counter[str]:
    """Every doc_id in every live sealed shard (a multiset: a duplicate shows as a count of 2)."""
    out: Counter[str] = Counter()
    for shard in list_shards(shards_dir):
        out.update(d.doc_id for d in shard.manifest.docs)
    return out


def headrace_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "headrace", *args]


#: Which fault points a launch of each group may arm, with weights (None = no fault point).
FAULTS: dict[str, list[tuple[str | None, float, tuple[int, int]]]] = {
    "shards": [("shards.after-seal", 0.45, (1, 2)), ("shards.before-manifest", 0.2, (1, 2)), (None, 0.35, (0, 0))],
    "process": [("channel.before-commit", 0.25, (1, 6)), (None, 0.75, (0, 0))],
    "dedup": [("channel.before-commit", 0.25, (1, 6)), (None, 0.75, (0, 0))],
}


@dataclass
class Slot:
    group: str
    index: int
    proc: subprocess.Popen[bytes] | None = None
    launches: int = 0
    log: Path | None = None
    fault: str | None = None

    @property
    def instance_id(self) -> str:
        return f"{self.group}-{self.index}"


@dataclass
class Fleet:
    bootstrap: str
    env: dict[str, str]
    workdir: Path
    shards_dir: Path
    # One dedup replica: the default (embedded) dedup index is single-process; several replicas need
    # the Redis backend (tests/reliability/chaos.py runs two on Redis).
    replicas: dict[str, int] = field(default_factory=lambda: {"process": 2, "dedup": 1, "shards": 2})
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    arm_faults: bool = True
    #: Fault points for the first launch of a slot (instance id -> "point:count"), e.g. to make sure a
    #: shard writer dies between a seal and its commit at least once.
    first_faults: dict[str, str] = field(default_factory=dict)
    slots: list[Slot] = field(default_factory=list)
    harness_kills: int = 0
    fault_hits: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)  # non-zero exits that were not our kills

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for group, n in self.replicas.items():
            self.slots.extend(Slot(group, i) for i in range(n))

    def _choose_fault(self, group: str) -> tuple[str | None, int]:
        if not self.arm_faults:
            return None, 0
        options = FAULTS[group]
        name, _, (lo, hi) = self.rng.choices(options, weights=[w for _, w, _ in options])[0]
        return name, (self.rng.randint(lo, hi) if name else 0)

    def launch(self, slot: Slot) -> None:
        slot.launches += 1
        env = dict(self.env)
        env.pop("HEADRACE_FAULT_POINT", None)
        slot.fault, count = self._choose_fault(slot.group)
        if slot.fault:
            env["HEADRACE_FAULT_POINT"] = f"{slot.fault}:{count}"
        if slot.launches == 1 and self.arm_faults and slot.instance_id in self.first_faults:
            env["HEADRACE_FAULT_POINT"] = self.first_faults[slot.instance_id]
            slot.fault = self.first_faults[slot.instance_id].split(":")[0]
        args = ["consume", slot.group, "--bootstrap", self.bootstrap, "--instance-id", slot.instance_id,
                "--static-member", "-v"]
        if slot.group == "shards":
            args += ["--out", str(self.shards_dir)]
        slot.log = self.workdir / f"{slot.instance_id}.{slot.launches:03d}.log"
        with slot.log.open("wb") as fh:
            slot.proc = subprocess.Popen(headrace_cmd(*args), env=env, stdout=fh, stderr=subprocess.STDOUT)

    def start(self) -> None:
        for slot in self.slots:
            self.launch(slot)

    def _note_exit(self, slot: Slot, rc: int, killed_by_us: bool) -> None:
        text = slot.log.read_text(errors="replace") if slot.log else ""
        for line in text.splitlines():
            if line.startswith("FAULT-POINT "):
                self.fault_hits[line.split()[1]] += 1
                return
        if not killed_by_us and rc != 0:
            self.crashes[slot.group] += 1

    def ready(self, slot: Slot) -> bool:
        """The process has started its group loop (it logged so): a kill now hits real work."""
        if slot.proc is None or slot.proc.poll() is not None or slot.log is None:
            return False
        try:
            return b"starting group" in slot.log.read_bytes()
        except OSError:
            return False

    def kill_random(self, wait_ready: float = 30.0) -> Slot:
        """SIGKILL a random member that is up and working (waiting for one if all are starting)."""
        deadline = time.monotonic() + wait_ready
        while True:
            self.reap()
            up = [s for s in self.slots if self.ready(s)]
            if up or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        slot = self.rng.choice(up or self.slots)
        if slot.proc is not None and slot.proc.poll() is None:
            slot.proc.send_signal(signal.SIGKILL)
            rc = slot.proc.wait()
            self.harness_kills += 1
            self._note_exit(slot, rc, killed_by_us=True)
        self.launch(slot)
        return slot

    def reap(self) -> int:
        """Restart every slot whose process died on its own (fault point, crash); returns how many."""
        n = 0
        for slot in self.slots:
            if slot.proc is not None and (rc := slot.proc.poll()) is not None:
                self._note_exit(slot, rc, killed_by_us=False)
                self.launch(slot)
                n += 1
        return n

    def stop(self, timeout: float = 60.0) -> dict[str, int]:
        """SIGTERM everyone (shards seal what they hold and commit); returns exit codes."""
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.send_signal(signal.SIGTERM)
        codes = {}
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                codes[slot.instance_id] = slot.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                codes[slot.instance_id] = slot.proc.wait()
            slot.proc = None
        return codes

    def kill_all(self) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.kill()
                slot.proc.wait()


class PipelineProbe:
    """Reads group lag and the shards' manifest ends from the test process."""

    def __init__(self, bootstrap: str, env: dict[str, str]) -> None:
        overrides = {"kafka": {"bootstrap": bootstrap}}
        self.config: PipelineConfig = load_config(None, overrides, environ=env)
        self.topics = topics_for(self.config)
        settings = KafkaSettings(bootstrap=bootstrap)
        self.bus = KafkaBus(settings)
        self.reader = KafkaConsumer(**consumer_config(settings, None))

    def _unread(self, topic: str, starts: dict[int, int], timeout: float = 10.0) -> int:
        """Records a read_committed reader finds after ``starts`` (-1: could not reach the end, e.g.
        an open transaction). Committed offsets stop short of the end by the transaction markers,
        so comparing them with end offsets would report a lag of 1 forever; reading tells the truth."""
        tps = [KTopicPartition(topic, p) for p in sorted(starts)]
        self.reader.assign(tps)
        for tp in tps:
            self.reader.seek(tp, starts[tp.partition])
        ends = self.reader.end_offsets(tps)
        n = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n += sum(len(v) for v in self.reader.poll(timeout_ms=200).values())
            if all(self.reader.position(tp) >= ends[tp] for tp in tps):
                return n
        return -1

    def _committed(self, group: str, topic: str) -> dict[int, int]:
        n = self.bus.partitions_for(topic)
        got = self.bus.committed_offsets(group_id(self.config, group), topic)
        return {p: got.get(TopicPartition(topic, p), 0) for p in range(n)}

    def lag(self, group: str) -> int:
        topic = {"process": self.topics.pages_raw, "dedup": self.topics.docs_clean}[group]
        return self._unread(topic, self._committed(group, topic))

    def shards_behind(self, shards_dir: Path) -> int:
        """Records of docs.unique neither committed by the shards group nor covered by a manifest."""
        topic = self.topics.docs_unique
        starts = self._committed("shards", topic)
        for shard in list_shards(shards_dir):
            for src in shard.manifest.sources:
                if src.source.startswith(f"{topic}@"):
                    starts[src.partition] = max(starts[src.partition], src.end)
        return self._unread(topic, starts)

    def idle(self, shards_dir: Path) -> bool:
        return self.lag("process") == 0 and self.lag("dedup") == 0 and self.shards_behind(shards_dir) == 0

    def close(self) -> None:
        self.reader.close()
        self.bus.close()


def run_replay(bootstrap: str, env: dict[str, str], files: list[Path], log: Path) -> int:
    with log.open("ab") as fh:
        res = subprocess.run(
            headrace_cmd("replay", *map(str, files), "--bootstrap", bootstrap),
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    return res.returncode


def base_env(prefix: str, **extra: str) -> dict[str, str]:
    """Environment of every process of one crash run (config by HEADRACE_SECTION__KEY variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    for k in ("HEADRACE_KAFKA_CACHE", "HEADRACE_KAFKA_HEAP"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(
        {
            "HEADRACE_BUS__TOPIC_PREFIX": prefix,
            "HEADRACE_BUS__PARTITIONS": "4",
            "HEADRACE_BUS__BATCH_SIZE": "64",
            # A dead member leaves the group after 3 s instead of 45 s.
            "HEADRACE_KAFKA__SESSION_TIMEOUT_MS": "3000",
            "HEADRACE_KAFKA__TRANSACTION_TIMEOUT_MS": "15000",
            "HEADRACE_EXTRACT__EXTRACTOR": "resiliparse",
            "HEADRACE_SHARDS__MAX_DOCUMENTS": "120",
            "HEADRACE_SHARDS__MAX_AGE_S": "2.0",
            "HEADRACE_SHARDS__ORPHAN_GRACE_S": "30.0",
            "PYTHONUNBUFFERED": "1",
            # Each run its own embedded dedup index (the default, ./dedup-index, is shared by every
            # run in the checkout and outlives it: a second run would find all its pages already seen).
            "HEADRACE_DEDUP__DIRECTORY": tempfile.mkdtemp(prefix="headrace-dedup-"),
        }
    )
    env.update(extra)
    return env
