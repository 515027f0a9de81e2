"""Live progress of ``headrace replay``: the file being read (bar) plus totals and rates."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.text import Text

from crawler.replay import Replayer
from streams.stats import Stats


class ReplayProgress:
    def __init__(self, stats: Stats, enabled: bool = True, console: Console | None = None) -> None:
        self.stats = stats
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.fields[label]}", style="bold"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.console,
        )
        self._task = self._bar.add_task("", total=None, label="")
        self._file = ""
        self._live: Live | None = None
        self._replayer: Replayer | None = None
        self._t0 = time.perf_counter()
        self._last = 0.0

    def __enter__(self) -> ReplayProgress:
        self._t0 = time.perf_counter()
        if self.enabled:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def _render(self) -> Group:
        s = self.stats
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        pages = s.get("replay/pages")
        report = self._replayer.report if self._replayer is not None else None
        records = report.records if report is not None else 0
        mb = (report.bytes if report is not None else 0) / 1e6
        skipped = sum(v for k, v in s.counts.items() if k.startswith("replay/skip/"))
        line = Text(
            f"files done {s.get('replay/files'):,}  records {records:,}  pages {pages:,} ({pages / elapsed:,.0f}/s)  "
            f"{mb:,.1f} MB ({mb / elapsed:,.1f} MB/s)  skipped {skipped:,}  damaged {s.get('replay/damaged'):,}  "
            f"{elapsed:,.0f}s"
        )
        return Group(self._bar, line)

    def tick(self, replayer: Replayer) -> None:
        cur = replayer.current
        if cur.name != self._file:
            self._file = cur.name
            label = cur.name if len(cur.name) <= 48 else "…" + cur.name[-47:]
            self._bar.reset(self._task, total=cur.size, label=f"[{cur.index}/{cur.total}] {label}")
        self._bar.update(self._task, completed=cur.offset, total=cur.size)
        self._replayer = replayer
        now = time.perf_counter()
        if self._live is not None and now - self._last > 0.2:
            self._last = now
            self._live.update(self._render())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
