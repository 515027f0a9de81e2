"""Seed URLs for a crawl: a file (one URL per line) or any iterator of batches (e.g. a Kafka topic).

A seed source is an iterator of URL batches; the spider pulls the next batch off the reactor thread, so
a source may block (a Kafka poll). Bad lines are logged and skipped, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SeedBatches = Iterator[list[str]]


class SeedError(ValueError):
    """The seed file cannot be read."""


def valid_seed(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def clean_seeds(urls: Iterable[str]) -> Iterator[str]:
    for raw in urls:
        url = raw.strip()
        if not url or url.startswith("#"):
            continue
        if not valid_seed(url):
            log.warning("skipping seed %r: not an http(s) URL", url[:200])
            continue
        yield url


def batched(urls: Iterable[str], size: int = 500) -> SeedBatches:
    batch: list[str] = []
    for url in urls:
        batch.append(url)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def file_seeds(path: Path, batch: int = 500) -> SeedBatches:
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SeedError(f"cannot read seed file {path}: {exc}") from exc

    def lines() -> Iterator[str]:
        with fh:
            yield from fh

    return batched(clean_seeds(lines()), batch)


def list_seeds(urls: Iterable[str], batch: int = 500) -> SeedBatches:
    return batched(clean_seeds(urls), batch)
