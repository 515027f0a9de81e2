"""Shared pieces of the reliability runs (chaos, soak): input batches, RSS sampling, the URL checker.

Every input page has a unique URL, so the checker works on URLs: a page must end up in exactly one
place, either once in the sealed shards (as the training loader reads them), or in the decision
ledger (``rejected.jsonl``) or the dead-letter file (``dlq.jsonl``) with a reason. Anything else is
lost; a URL sealed twice is a duplicate.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from integration.crash_harness import page_html, page_text
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from consumers.shards.reader import list_shards


def page_url(n: int) -> str:
    return f"https://history-{n % 97}.example.org/notes/{n:07d}.html"


def write_batch(path: Path, start: int, n: int, seed: int, dup_every: int = 0) -> list[str]:
    """``n`` pages with unique URLs numbered from ``start`` into one gzipped WARC; returns their URLs.
    With ``dup_every``, every such page repeats the text of the page before it (an exact duplicate
    under another URL, which dedup must reject with a reason)."""
    rng = random.Random(seed * 1_000_003 + start)
    urls = []
    text = ""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i in range(start, start + n):
            url = page_url(i)
            if not (dup_every and i % dup_every == 0 and text):
                text = page_text(rng)
            body = page_html("Notes", text) if dup_every else page_html(f"Notes on place {i}", text)
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
            urls.append(url)
    return urls


# ---------------------------------------------------------------------------------------------- RSS


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except OSError:
        pass
    return out


def rss_kib(pid: int) -> int:
    """Resident set size of one process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants (the broker runs its JVM under a launcher)."""
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += rss_kib(p)
        stack.extend(_children(p))
    return total


def hwm_kib(pid: int) -> int:
    """Peak RSS (VmHWM) of a live process in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


# ------------------------------------------------------------------------------------------ checker


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


@dataclass
class Verdict:
    """Where every input URL ended up."""

    documents_in: int
    sealed: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    quarantined: Counter[str] = field(default_factory=Counter)  # reason -> count
    unexpected: int = 0  # sealed URLs that were never input

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated and not self.unexpected

    def summary(self) -> dict[str, Any]:
        return {
            "documents_in": self.documents_in,
            "sealed": self.sealed,
            "lost": len(self.lost),
            "lost_examples": self.lost[:5],
            "duplicated": len(self.duplicated),
            "duplicated_examples": dict(list(self.duplicated.items())[:5]),
            "quarantined": sum(self.quarantined.values()),
            "quarantine_reasons": dict(self.quarantined),
            "unexpected": self.unexpected,
        }


def sealed_urls(shards_dir: Path) -> Counter[str]:
    out: Counter[str] = Counter()
    for shard in list_shards(shards_dir):
        out.update(d.url for d in shard.manifest.docs)
    return out


def check_urls(inputs: list[str], shards_dir: Path, ledger_dir: Path | None) -> Verdict:
    """Every input URL sealed exactly once, or rejected / dead-lettered with a reason."""
    sealed = sealed_urls(shards_dir)
    v = Verdict(documents_in=len(inputs), sealed=sum(sealed.values()))
    v.duplicated = {u: n for u, n in sealed.items() if n > 1}
    wanted = set(inputs)
    v.unexpected = len(set(sealed) - wanted)
    reasons: dict[str, str] = {}
    if ledger_dir is not None:
        for rec in read_jsonl(ledger_dir / "rejected.jsonl"):
            if rec.get("url") and rec.get("reason"):
                reasons.setdefault(rec["url"], f"{rec.get('stage', '?')}:{rec['reason']}")
        for rec in read_jsonl(ledger_dir / "dlq.jsonl"):
            if rec.get("reason"):
                reasons.setdefault(f"dlq:{rec.get('topic')}:{rec.get('offset')}", "dlq:" + rec["reason"][:60])
    for url in inputs:
        if url in sealed:
            continue
        if url in reasons:
            v.quarantined[reasons[url]] += 1
        else:
            v.lost.append(url)
    return v
