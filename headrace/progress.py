"""A live progress line for batch commands."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from streams.stats import Stats


class PipelineProgress:
    def __init__(self, stats: Stats, enabled: bool = True, console: Console | None = None) -> None:
        self.stats = stats
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> PipelineProgress:
        self._t0 = time.perf_counter()
        if self.enabled:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def _render(self) -> Text:
        s = self.stats
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        pages = s.get("process/in")
        docs = s.get("shards/docs")
        drops = sum(v for k, v in s.counts.items() if "/drop/" in k)
        return Text(
            f"pages {pages:,} ({pages / elapsed:,.1f}/s)  docs {docs:,} ({docs / elapsed:,.1f}/s)  "
            f"dropped {drops:,}  tokens {s.get('shards/tokens'):,}  {elapsed:,.0f}s"
        )

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
