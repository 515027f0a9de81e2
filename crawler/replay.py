"""WARC replay: read archives and publish their HTML pages to ``pages.raw``.

Pages are keyed by URL hash so the same URL always lands in the same partition. Damage in one input
never stops the others: it is reported with the file and offset, counted, and the replay goes on.
"""

from __future__ import annotations

import glob
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compliance.blocklist import Blocklist, EmptyBlocklist
from crawler.warc import InputDamaged, ReadLimits, Skipped, iter_warc
from streams.bus import MessageTooLargeError, Publisher
from streams.codec import encode
from streams.ids import url_key
from streams.records import Page

log = logging.getLogger(__name__)


@dataclass
class InputReport:
    path: str
    records: int = 0
    pages: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    inputs: list[InputReport] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return sum(i.pages for i in self.inputs)

    @property
    def records(self) -> int:
        return sum(i.records for i in self.inputs)

    @property
    def failed_inputs(self) -> list[InputReport]:
        return [i for i in self.inputs if i.errors]

    def skipped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for i in self.inputs:
            total.update(i.skipped)
        return total


def expand_inputs(inputs: Iterable[str]) -> Iterator[tuple[str, Path | None]]:
    """Yield ``(name, path)``; ``path`` is None when the name matched nothing."""
    for name in inputs:
        if any(ch in name for ch in "*?["):
            matches = sorted(glob.glob(name, recursive=True))
            if not matches:
                yield name, None
            for m in matches:
                yield m, Path(m)
            continue
        p = Path(name)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and (".warc" in f.name or ".arc" in f.name))
            if not files:
                yield name, None
            for f in files:
                yield str(f), f
        elif p.exists():
            yield name, p
        else:
            yield name, None


class Replayer:
    def __init__(
        self,
        publisher: Publisher,
        topic: str,
        limits: ReadLimits | None = None,
        blocklist: Blocklist | None = None,
        batch_size: int = 256,
        on_batch: Callable[[], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.topic = topic
        self.limits = limits or ReadLimits()
        self.blocklist = blocklist or EmptyBlocklist()
        self.batch_size = batch_size
        self.on_batch = on_batch
        self._pending = 0

    def replay(self, inputs: Iterable[str]) -> ReplayReport:
        report = ReplayReport()
        for name, path in expand_inputs(inputs):
            rep = InputReport(name)
            report.inputs.append(rep)
            if path is None:
                rep.errors.append("no such file (or the pattern matched nothing)")
                log.error("input %s: no such file", name)
                continue
            self._replay_file(path, rep)
        self._flush()
        return report

    def _replay_file(self, path: Path, rep: InputReport) -> None:
        try:
            if path.stat().st_size == 0:
                rep.errors.append("empty file")
                log.error("input %s: empty file", path)
                return
        except OSError as exc:
            rep.errors.append(f"cannot read: {exc}")
            return
        for item in iter_warc(path, self.limits):
            if isinstance(item, InputDamaged):
                msg = f"damaged at offset {item.offset}: {item.reason}"
                rep.errors.append(msg)
                log.error("input %s: %s", path, msg)
                break
            rep.records += 1
            if isinstance(item, Skipped):
                rep.skipped[item.reason] += 1
                continue
            self._publish(item, rep)
        if rep.records == 0 and not rep.errors:
            rep.errors.append("no WARC records found")
            log.error("input %s: no WARC records found", path)

    def _publish(self, page: Page, rep: InputReport) -> None:
        if self.blocklist.match_url(page.url) is not None:
            rep.skipped["blocked"] += 1
            return
        try:
            self.publisher.publish(self.topic, encode(page), url_key(page.url))
        except MessageTooLargeError as exc:
            rep.skipped["too-large"] += 1
            log.warning("page %s too large to publish: %s", page.url, exc)
            return
        rep.pages += 1
        self._pending += 1
        if self._pending >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.publisher.flush()
            self._pending = 0
        if self.on_batch is not None:
            self.on_batch()
