"""Decontamination: drop (or flag) documents that share word n-grams with benchmark data.

The index is built once from user-supplied files (JSONL with text fields, or plain text with one
example per line; ``.gz`` works for both): every n-gram (default 13, as GPT-3 and most decontamination
since) of normalised words is hashed to 64 bits and kept in a sorted numpy array with the source of
each. A document is checked in time linear in its length: its n-gram hashes are computed with numpy
and looked up with one ``searchsorted``. Normalisation: NFKC, lower case, punctuation and whitespace
folded (``consumers.textnorm.normalise``).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import IO

import numpy as np
import xxhash

from consumers.docops import annotate
from consumers.stage import DocumentStage, Drop, StageResult
from consumers.textnorm import normalise
from streams.records import Document

log = logging.getLogger(__name__)

STAGE = "decontam"
_MULTIPLIERS = np.array([xxhash.xxh3_64_intdigest(f"decontam-{k}".encode()) | 1 for k in range(256)], dtype=np.uint64)


class DecontamError(ValueError):
    """A benchmark file cannot be read or the configuration is inconsistent."""


@dataclass(frozen=True)
class DecontamConfig:
    enabled: bool = True  # active only when ``paths`` names benchmark files
    paths: tuple[str, ...] = ()  # files, folders or globs: *.jsonl[.gz], *.json[.gz], anything else is text
    text_fields: tuple[str, ...] = ("text",)  # JSONL fields holding benchmark text
    ngram: int = 13
    action: str = "drop"  # "drop" | "flag" (annotate ``decontam.ngram_hits`` and keep)
    min_hits: int = 1  # matching n-grams needed to count as contaminated


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def expand(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(sorted(q for q in path.rglob("*") if q.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            matches = sorted(Path(m) for m in glob(p, recursive=True) if Path(m).is_file())
            if not matches:
                raise DecontamError(f"benchmark path {p!r} matches no file")
            out.extend(matches)
    return out


def benchmark_texts(path: Path, fields: Sequence[str]) -> Iterator[tuple[str, str]]:
    """``(source, text)`` for every example of a benchmark file."""
    name = path.name.removesuffix(".gz")
    with _open(path) as fh:
        if name.endswith((".jsonl", ".json")):
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DecontamError(f"{path}:{lineno}: not JSON: {exc}") from exc
                for f in fields:
                    value = record.get(f) if isinstance(record, dict) else None
                    if isinstance(value, str) and value:
                        yield f"{path.name}:{lineno}", value
                    elif isinstance(value, list):
                        yield f"{path.name}:{lineno}", " ".join(str(v) for v in value)
        else:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    yield f"{path.name}:{lineno}", line


def ngram_hashes(words: Sequence[str], n: int) -> np.ndarray:
    """64-bit hashes of every n-gram of ``words`` (empty when there are fewer than n)."""
    m = len(words) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    cache: dict[str, int] = {}
    wh = np.fromiter(
        (
            cache.get(w) or cache.setdefault(w, xxhash.xxh3_64_intdigest(w.encode("utf-8", "surrogatepass")))
            for w in words
        ),
        dtype=np.uint64,
        count=len(words),
    )
    h = np.zeros(m, dtype=np.uint64)
    for k in range(n):
        h += wh[k : k + m] * _MULTIPLIERS[k % len(_MULTIPLIERS)]
    return h


class NgramIndex:
    """Sorted n-gram hashes of the benchmark data, with the source of each."""

    def __init__(self, ngram: int = 13) -> None:
        if not 1 <= ngram <= len(_MULTIPLIERS):
            raise DecontamError(f"decontam.ngram must be between 1 and {len(_MULTIPLIERS)}")
        self.ngram = ngram
        self.hashes = np.empty(0, dtype=np.uint64)
        self.sources: list[str] = []
        self._source_ids = np.empty(0, dtype=np.uint32)
        self.examples = 0

    @classmethod
    def build(cls, paths: Sequence[str], fields: Sequence[str] = ("text",), ngram: int = 13) -> NgramIndex:
        index = cls(ngram)
        chunks: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        for path in expand(paths):
            for source, text in benchmark_texts(path, fields):
                h = ngram_hashes(normalise(text).split(), ngram)
                index.examples += 1
                if len(h):
                    chunks.append(h)
                    ids.append(np.full(len(h), len(index.sources), dtype=np.uint32))
                    index.sources.append(source)
        if chunks:
            hashes = np.concatenate(chunks)
            order = np.argsort(hashes, kind="stable")
            index.hashes = hashes[order]
            index._source_ids = np.concatenate(ids)[order]
        log.info("decontamination index: %d examples, %d %d-grams", index.examples, len(index.hashes), ngram)
        return index

    def __len__(self) -> int:
        return len(self.hashes)

    def matches(self, text: str) -> tuple[int, str]:
        """Number of the text's n-grams found in the index, and the source of the first one."""
        if not len(self.hashes):
            return 0, ""
        h = ngram_hashes(normalise(text).split(), self.ngram)
        if not len(h):
            return 0, ""
        pos = np.searchsorted(self.hashes, h)
        pos[pos >= len(self.hashes)] = 0
        hit = self.hashes[pos] == h
        n = int(hit.sum())
        if not n:
            return 0, ""
        first = int(pos[np.flatnonzero(hit)[0]])
        return n, self.sources[int(self._source_ids[first])]


class Decontaminator(DocumentStage):
    name = STAGE

    def __init__(self, config: DecontamConfig, index: NgramIndex | None = None) -> None:
        if config.action not in ("drop", "flag"):
            raise DecontamError(f"decontam.action must be 'drop' or 'flag', not {config.action!r}")
        self.config = config
        self.index = index or NgramIndex.build(config.paths, config.text_fields, config.ngram)

    def process(self, doc: Document) -> StageResult:
        hits, source = self.index.matches(doc.text)
        if hits < max(1, self.config.min_hits):
            return doc
        if self.config.action == "drop":
            values = {"ngram_hits": float(hits), "ngram": float(self.config.ngram)}
            return Drop("benchmark-overlap", values, detail=source, stage=STAGE)
        return annotate(doc, {"ngram_hits": float(hits)}, STAGE)
