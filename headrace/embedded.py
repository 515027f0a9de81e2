"""``headrace run``: the whole pipeline in one process on the in-memory bus.

The embedded run uses the very same stage groups as a Kafka deployment (process -> dedup -> shards,
plus the ledger), wired to :class:`streams.memory.InMemoryBus`. Replay publishes a batch of pages,
then every group is drained before the next batch, which bounds memory (consumed messages are trimmed)
and keeps the run single-threaded and deterministic.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from compliance.blocklist import Blocklist
from compliance.blocklist_store import local_blocklist
from consumers.ledger import LedgerSink
from consumers.runner import ChannelRunner
from consumers.shards.sink import ShardSink
from crawler.replay import InputReport, Replayer
from headrace.config import PipelineConfig
from headrace.pipeline import build_dedup_handler, build_process_handler, pipeline_id, topics_for
from streams.memory import InMemoryBus
from streams.stats import Stats

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    out_dir: str
    elapsed_s: float = 0.0
    inputs: list[InputReport] = field(default_factory=list)
    pages_read: int = 0
    records_read: int = 0
    docs_written: int = 0
    tokens: int = 0
    shards_sealed: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    damaged_records: int = 0
    pipeline: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_inputs(self) -> list[InputReport]:
        return [i for i in self.inputs if i.errors]

    @property
    def docs_per_s(self) -> float:
        return self.docs_written / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def pages_per_s(self) -> float:
        return self.pages_read / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "pipeline": self.pipeline,
            "elapsed_s": round(self.elapsed_s, 3),
            "records_read": self.records_read,
            "pages_read": self.pages_read,
            "docs_written": self.docs_written,
            "tokens": self.tokens,
            "shards_sealed": self.shards_sealed,
            "docs_per_s": round(self.docs_per_s, 2),
            "pages_per_s": round(self.pages_per_s, 2),
            "drops": dict(sorted(self.drops.items())),
            "skipped_records": dict(sorted(self.skipped.items())),
            "dead_letters": self.dead_letters,
            "damaged_records": self.damaged_records,
            "inputs": [i.to_dict() for i in self.inputs],
            "failed_inputs": [i.path for i in self.failed_inputs],
            "stats": self.stats,
        }


class EmbeddedPipeline:
    def __init__(
        self,
        config: PipelineConfig,
        out_dir: Path,
        stats: Stats | None = None,
        blocklist: Blocklist | None = None,
    ) -> None:
        self.config = config
        self.out_dir = out_dir
        self.stats = stats or Stats()
        # A corpus's own takedowns stay in force when more input is added to it later.
        self.blocklist = blocklist if blocklist is not None else local_blocklist(out_dir)
        self.bus = InMemoryBus(default_partitions=config.bus.partitions)
        self.topics = topics_for(config)
        self.bus.ensure_topics(self.topics.specs(config.bus.partitions))
        batch = config.bus.batch_size
        self.process = ChannelRunner(
            self.bus.channel("headrace-process", [self.topics.pages_raw], transactional_id="process-0"),
            build_process_handler(config, self.stats, self.blocklist),
            self.stats,
            max_records=batch,
        )
        self.dedup = ChannelRunner(
            self.bus.channel("headrace-dedup", [self.topics.docs_clean], transactional_id="dedup-0"),
            build_dedup_handler(config, self.stats, config.dedup.directory or out_dir / "dedup", self.blocklist),
            self.stats,
            max_records=batch,
        )
        shard_cfg = replace(config.shards, directory=str(out_dir / "shards"), orphan_grace_s=0.0)
        self.sink = ShardSink(
            shard_cfg,
            self.topics,
            self.bus.bus_id,
            self.stats,
            side_publisher=self.bus.publisher(),
            blocklist=self.blocklist,
            pipeline=pipeline_id(config),
        )
        self.sink.attach(
            self.bus.subscriber("headrace-shards", [self.topics.docs_unique], listener=self.sink.listener())
        )
        self.ledger = LedgerSink(out_dir / "ledger", self.topics.docs_rejected, self.topics.dlq)
        self.ledger.attach(self.bus.subscriber("headrace-ledger", [self.topics.docs_rejected, self.topics.dlq]))
        self.on_progress: Callable[[], None] | None = None

    def drain(self) -> None:
        """Run every group until no group makes progress, then trim consumed messages."""
        while True:
            moved = 0
            while (n := self.process.step(timeout=0)) > 0:
                moved += n
            while (n := self.dedup.step(timeout=0)) > 0:
                moved += n
            while (n := self.sink.step(timeout=0)) > 0:
                moved += n
            while (n := self.ledger.step(timeout=0)) > 0:
                moved += n
            if not moved:
                break
        for topic in (
            self.topics.pages_raw,
            self.topics.docs_clean,
            self.topics.docs_unique,
            self.topics.docs_rejected,
            self.topics.dlq,
        ):
            self.bus.trim(topic)
        if self.on_progress is not None:
            self.on_progress()

    def run(self, inputs: Sequence[str]) -> RunSummary:
        t0 = time.perf_counter()
        summary = RunSummary(out_dir=str(self.out_dir), pipeline=pipeline_id(self.config))
        # Drain the stage groups after every bus batch of pages: bounded memory, steady progress.
        replay_cfg = replace(self.config.replay, checkpoint_pages=self.config.bus.batch_size)
        replayer = Replayer(
            self.bus.publisher(),
            self.topics,
            replay_cfg,
            self.blocklist,
            stats=self.stats,
            write_checkpoints=False,  # nothing to resume: the in-memory bus dies with the process
            on_batch=self.drain,
        )
        try:
            report = replayer.replay(inputs)
            self.drain()
            self.sink.flush_all()
            self.drain()
        finally:
            self.close()
        summary.elapsed_s = time.perf_counter() - t0
        summary.inputs = report.inputs
        summary.pages_read = report.pages
        summary.records_read = report.records
        summary.skipped = report.skipped()
        summary.damaged_records = report.damaged
        summary.docs_written = self.stats.get("shards/docs")
        summary.tokens = self.stats.get("shards/tokens")
        summary.shards_sealed = self.stats.get("shards/sealed")
        summary.dead_letters = self.ledger.dlq.count
        for key, n in self.stats.counts.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[1] == "drop":
                summary.drops[f"{parts[0]}/{parts[2]}"] += n
        summary.stats = self.stats.snapshot()
        return summary

    def close(self) -> None:
        self.process.close()
        self.dedup.close()
        self.sink.close()
        self.ledger.close()
