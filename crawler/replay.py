"""WARC replay: read archives and publish their HTML pages to ``pages.raw``.

Pages are keyed by URL hash so the same URL always lands in the same partition. With a transactional
publisher every commit carries the pages read since the last one *and* the input's checkpoint
(``replay.progress``, key = input name), so an interrupted replay resumes where its last commit ended
and publishes each page exactly once (docs/replay.md). Damaged records go to ``dlq`` as
:class:`streams.records.DeadLetter` (topic ``warc:<input>``, offset = byte offset, reason); damage in
one input never stops the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from compliance.blocklist import Blocklist, EmptyBlocklist
from crawler.checkpoint import Checkpoint, checkpoint_key, encode_checkpoint
from crawler.rawio import SourceError
from crawler.reader import Position
from crawler.replay_config import ReplayConfig
from crawler.sources import InputRef, expand_inputs, open_source
from crawler.warc import Damaged, Skipped, WarcReader
from streams.bus import MessageTooLargeError, Publisher
from streams.codec import encode
from streams.ids import url_key
from streams.records import DeadLetter, Page, Rejection
from streams.stats import Stats
from streams.topics import Topics

log = logging.getLogger(__name__)

#: Damage descriptions kept per input in the report (all of them are counted and dead-lettered).
MAX_ERRORS_KEPT = 20


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class InputReport:
    path: str
    records: int = 0
    pages: int = 0
    bytes: int = 0  # raw bytes read in this run
    damaged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    resumed_from: int | None = None  # offset a checkpoint sent us to
    already_done: bool = False  # a checkpoint said the input was finished: nothing read
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "records": self.records,
            "pages": self.pages,
            "bytes": self.bytes,
            "damaged": self.damaged,
            "skipped": dict(self.skipped),
            "errors": self.errors,
            "resumed_from": self.resumed_from,
            "already_done": self.already_done,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ReplayReport:
    inputs: list[InputReport] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped: bool = False  # a stop was requested; the rest resumes next time

    @property
    def pages(self) -> int:
        return sum(i.pages for i in self.inputs)

    @property
    def records(self) -> int:
        return sum(i.records for i in self.inputs)

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.inputs)

    @property
    def damaged(self) -> int:
        return sum(i.damaged for i in self.inputs)

    @property
    def failed_inputs(self) -> list[InputReport]:
        return [i for i in self.inputs if i.errors]

    def skipped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for i in self.inputs:
            total.update(i.skipped)
        return total


@dataclass
class FileProgress:
    """The input being read, for progress displays."""

    name: str = ""
    index: int = 0
    total: int = 0
    offset: int = 0
    size: int | None = None


class Replayer:
    def __init__(
        self,
        publisher: Publisher,
        topics: Topics,
        config: ReplayConfig | None = None,
        blocklist: Blocklist | None = None,
        stats: Stats | None = None,
        checkpoints: Mapping[str, Checkpoint] | None = None,
        write_checkpoints: bool = True,
        worker: str = "",
        on_batch: Callable[[], None] | None = None,
        on_tick: Callable[[Replayer], None] | None = None,
        stop: threading.Event | None = None,
        s3_client: Any = None,
    ) -> None:
        self.publisher = publisher
        self.topics = topics
        self.config = config or ReplayConfig()
        self.blocklist = blocklist if blocklist is not None else EmptyBlocklist()
        self.stats = stats or Stats()
        self.checkpoints = dict(checkpoints or {})
        self.write_checkpoints = write_checkpoints
        self.worker = worker
        self.on_batch = on_batch
        self.on_tick = on_tick
        self.stop = stop or threading.Event()
        self.s3_client = s3_client
        self.current = FileProgress()
        self.report = ReplayReport()
        self._pending_pages = 0
        self._pending_records = 0
        self._last_commit = time.monotonic()

    # ---------------------------------------------------------------------------------------------
    def replay(self, inputs: Sequence[InputRef | str]) -> ReplayReport:
        names = [i for i in inputs if isinstance(i, str)]
        refs = [i for i in inputs if isinstance(i, InputRef)]
        if names:
            refs = expand_inputs(names, self.config) + refs
        t0 = time.perf_counter()
        for n, ref in enumerate(refs):
            if self.stop.is_set():
                self.report.stopped = True
                break
            rep = InputReport(ref.name)
            self.report.inputs.append(rep)
            self.current = FileProgress(ref.name, n + 1, len(refs))
            t1 = time.perf_counter()
            self._replay_input(ref, rep)
            rep.seconds = time.perf_counter() - t1
            self.stats.inc("replay/files")
        self._flush()
        self.report.elapsed_s = time.perf_counter() - t0
        return self.report

    def _replay_input(self, ref: InputRef, rep: InputReport) -> None:
        if ref.error is not None:
            rep.errors.append(ref.error)
            log.error("input %s: %s", ref.name, ref.error)
            return
        cp = self.checkpoints.get(ref.name)
        start = Position(0)
        crawl = None
        if cp is not None:
            if cp.done:
                rep.already_done = True
                self.stats.inc("replay/files_already_done")
                log.info("input %s: finished in an earlier run (checkpoint), skipped", ref.name)
                return
            start = Position(cp.offset, cp.skip)
            crawl = cp.crawl
            rep.resumed_from = cp.offset
            log.info("input %s: resuming at offset %d (+%d records)", ref.name, cp.offset, cp.skip)
        # Cumulative counts across runs go into the checkpoint; the report shows this run's work.
        base = cp or Checkpoint(input=ref.name)
        source = open_source(ref, self.config, self.s3_client)
        pos: Position | None = start
        crawl_now = crawl
        try:
            if start.offset == 0 and source.size() == 0:
                rep.errors.append("empty file")
                log.error("input %s: empty file", ref.name)
                return
            reader = WarcReader(source, self.config, start, crawl=crawl)
            self.current.size = source.size()
            for item, nxt in reader:
                crawl_now = reader.crawl
                rep.records += 1
                self._pending_records += 1
                if isinstance(item, Page):
                    self._publish_page(item, rep)
                elif isinstance(item, Skipped):
                    rep.skipped[item.reason] += 1
                    self.stats.inc(f"replay/skip/{item.reason}")
                else:
                    self._quarantine(item, rep)
                pos = nxt
                if pos is not None:
                    rep.bytes = pos.offset - start.offset
                    self.current.offset = pos.offset
                self.current.size = self.current.size or source.size()
                if self._due():
                    self._checkpoint(base, rep, pos, reader.crawl, done=False)
                    self._flush()
                    if self.stop.is_set():
                        self.report.stopped = True
                        return
                if self.on_tick is not None and rep.records % 64 == 0:
                    self.on_tick(self)
            rep.bytes = max(rep.bytes, reader.bytes_read - start.offset)
            self.stats.inc("replay/bytes", rep.bytes)
            if rep.records == 0 and not rep.errors:
                rep.errors.append("no WARC records found")
                log.error("input %s: no WARC records found", ref.name)
            # The final checkpoint rides in the open transaction; small files share one commit.
            self._checkpoint(base, rep, pos, reader.crawl, done=True)
            if self._due():
                self._flush()
            self.stats.inc("replay/files_done")
        except SourceError as exc:
            # Cannot be read (any further): commit what was read with the position reached, so a later
            # run resumes there, report it and go on with the next input.
            if rep.records:
                self._checkpoint(base, rep, pos, crawl_now, done=False)
            rep.errors.append(f"cannot read: {exc}")
            log.error("input %s: %s", ref.name, exc)

    def _publish_page(self, page: Page, rep: InputReport) -> None:
        match = self.blocklist.match_url(page.url)
        if match is not None:
            rep.skipped["blocked"] += 1
            self.stats.inc("replay/skip/blocked")
            # Never published as a page, but the ledger says where it went (same transaction as the
            # pages around it, so a replay after a crash records it once).
            rej = Rejection(
                id=page.page_id,
                url=page.url,
                stage="blocklist",
                reason="blocked",
                detail=f"{match.kind}:{match.rule_id}",
                lineage=page.lineage,
                signals=page.signals,
                at=utcnow(),
            )
            self.publisher.publish(self.topics.docs_rejected, encode(rej), rej.id.encode())
            return
        try:
            self.publisher.publish(self.topics.pages_raw, encode(page), url_key(page.url))
        except MessageTooLargeError as exc:
            rep.skipped["too-large"] += 1
            self.stats.inc("replay/skip/too-large")
            log.warning("page %s too large to publish: %s", page.url, exc)
            # Quarantined, not only counted: the ledger shows the page and why it never reached the bus.
            dl = DeadLetter(
                topic=f"warc:{page.lineage.warc_path or rep.path}",
                partition=0,
                offset=page.lineage.offset or 0,
                reason=f"too-large: {exc}"[:500],
                key=page.url.encode(),
                at=utcnow(),
            )
            self.publisher.publish(self.topics.dlq, encode(dl), url_key(page.url))
            return
        rep.pages += 1
        self.stats.inc("replay/pages")
        self._pending_pages += 1

    def _quarantine(self, item: Damaged, rep: InputReport) -> None:
        rep.damaged += 1
        self.stats.inc("replay/damaged")
        msg = f"damaged record at offset {item.offset}: {item.reason}"
        if len(rep.errors) < MAX_ERRORS_KEPT:
            rep.errors.append(msg)
        log.warning("input %s: %s", item.path, msg)
        dl = DeadLetter(
            topic=f"warc:{item.path}",
            partition=0,
            offset=item.offset,
            reason=item.reason,
            key=checkpoint_key(item.path),
            at=utcnow(),
        )
        self.publisher.publish(self.topics.dlq, encode(dl), checkpoint_key(item.path))

    def _due(self) -> bool:
        cfg = self.config
        return (
            self._pending_pages >= cfg.checkpoint_pages
            or self._pending_records >= cfg.checkpoint_records
            or time.monotonic() - self._last_commit >= cfg.checkpoint_seconds
            or self.stop.is_set()
        )

    def _checkpoint(
        self, base: Checkpoint, rep: InputReport, pos: Position | None, crawl: str | None, done: bool
    ) -> None:
        """Publish the input's checkpoint into the open transaction (it commits with the pages)."""
        if not self.write_checkpoints:
            return
        skipped = Counter(base.skipped)
        skipped.update(rep.skipped)
        cp = Checkpoint(
            input=rep.path,
            offset=pos.offset if pos is not None else 0,
            skip=pos.skip if pos is not None else 0,
            done=done or pos is None,
            records=base.records + rep.records,
            pages=base.pages + rep.pages,
            damaged=base.damaged + rep.damaged,
            skipped=dict(skipped),
            crawl=crawl,
            worker=self.worker,
            at=utcnow(),
        )
        self.publisher.publish(self.topics.replay_progress, encode_checkpoint(cp), checkpoint_key(rep.path))
        self._pending_records += 1

    def _flush(self) -> None:
        """Commit: the pages, dead letters and checkpoints since the last commit become visible at once."""
        if self._pending_records or self._pending_pages:
            self.publisher.flush()
            self.stats.inc("replay/commits")
        self._pending_pages = 0
        self._pending_records = 0
        self._last_commit = time.monotonic()
        if self.on_batch is not None:
            self.on_batch()
        if self.on_tick is not None:
            self.on_tick(self)
