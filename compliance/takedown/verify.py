"""Verify removals against the bytes, not the index.

For every completed (or given) takedown, every live shard is checked two ways:

* its manifest must not name a removed ``doc_id``, URL or content hash;
* its token stream must not contain a removed document: the fingerprint windows of each removed
  document are looked up in one rolling-hash pass per shard, and a live document holding at least half
  of a removed document's windows (all of them for short ones) is a hit. Requiring half the windows
  keeps shared boilerplate (navigation, cookie banners) from counting as the document itself.

The result carries a hash of exactly what was scanned (shard ids and their ``.bin`` sha256), which the
audit record keeps, so a later reader can tell which bytes the "0 hits" was about.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compliance.takedown.fingerprint import WINDOW, scan, window_hashes
from consumers.shards.reader import list_shards
from streams.ids import canonical_url, url_host

log = logging.getLogger(__name__)
MIN_SHARE = 0.5


@dataclass
class VerifyResult:
    requests: list[str] = field(default_factory=list)
    shards_scanned: int = 0
    tokens_scanned: int = 0
    removed_documents: int = 0
    hits: list[dict[str, Any]] = field(default_factory=list)
    scan_sha256: str = ""

    @property
    def ok(self) -> bool:
        return not self.hits

    @property
    def hits_total(self) -> int:
        return len(self.hits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "requests": self.requests,
            "shards_scanned": self.shards_scanned,
            "tokens_scanned": self.tokens_scanned,
            "removed_documents": self.removed_documents,
            "hits": self.hits,
            "scan_sha256": self.scan_sha256,
        }


@dataclass
class _Removed:
    request_id: str
    doc_id: str
    url: str
    content_hash: str
    hashes: np.ndarray
    tokens: int


def _load(requests_dir: Path, only: Iterable[str] | None) -> list[_Removed]:
    wanted = set(only) if only is not None else None
    out: list[_Removed] = []
    if not requests_dir.is_dir():
        return out
    for folder in sorted(p for p in requests_dir.iterdir() if p.is_dir()):
        if wanted is not None and folder.name not in wanted:
            continue
        plan_path, fp_path = folder / "plan.json", folder / "fingerprints.npz"
        if not plan_path.exists() or not fp_path.exists():
            continue
        plan = json.loads(plan_path.read_text())
        arrays = np.load(fp_path)
        info = {m["doc_id"]: m for m in plan["plan"]["matches"]}
        for fp in plan.get("fingerprints", []):
            m = info.get(fp["doc_id"], {})
            out.append(
                _Removed(
                    folder.name,
                    fp["doc_id"],
                    m.get("url", ""),
                    m.get("content_hash", ""),
                    np.asarray(arrays[fp["key"]], dtype=np.uint64),
                    int(fp["tokens"]),
                )
            )
    return out


def _may_be_host(url: str, hosts: set[str]) -> bool:
    """Cheap pre-check before canonicalising a URL (most live documents share no host with a removed
    one): the host by string splitting, or True whenever the URL is unusual enough that splitting could
    disagree with the URL parser (user info, IPv6, backslashes, spaces or control characters, which the
    parser strips), so a match is never missed."""
    if not hosts:
        return False
    scheme_sep = url.find("://")
    if scheme_sep < 0 or any(c in url for c in "@[\\ ") or not url.isprintable():
        return True
    netloc = url[scheme_sep + 3 :].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return netloc.rsplit(":", 1)[0].lower().rstrip(".") in hosts or netloc.lower().rstrip(".") in hosts


def verify_corpus(shards_dir: Path, requests_dir: Path, only: Iterable[str] | None = None) -> VerifyResult:
    removed = _load(requests_dir, only)
    result = VerifyResult(requests=sorted({r.request_id for r in removed}), removed_documents=len(removed))
    by_id = {r.doc_id: r for r in removed}
    by_url = {canonical_url(r.url): r for r in removed if r.url}
    by_hash = {r.content_hash: r for r in removed if r.content_hash}
    hosts = {url_host(u) for u in by_url}
    # window hash -> removed documents; grouped by window length (short documents are one window)
    tables: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    needed: list[int] = []
    for i, r in enumerate(removed):
        k = WINDOW if r.tokens >= WINDOW else r.tokens
        for h in set(int(x) for x in r.hashes):
            tables[k][h].append(i)
        needed.append(max(1, math.ceil(MIN_SHARE * len(set(int(x) for x in r.hashes)))) if len(r.hashes) else 1)
    sorted_tables = {k: np.array(sorted(t), dtype=np.uint64) for k, t in tables.items() if k > 0}
    scanned = hashlib.sha256()
    for shard in list_shards(shards_dir):
        m = shard.manifest
        result.shards_scanned += 1
        result.tokens_scanned += m.tokens
        scanned.update(f"{m.shard_id}:{m.bin.sha256}\n".encode())
        for d in m.docs:
            url_hit = by_url.get(canonical_url(d.url)) if _may_be_host(d.url, hosts) else None
            for kind, hit in (
                ("doc_id", by_id.get(d.doc_id)),
                ("url", url_hit),
                ("content_hash", by_hash.get(d.content_hash)),
            ):
                if hit is not None:
                    result.hits.append(
                        {
                            "kind": f"manifest-{kind}",
                            "shard": m.shard_id,
                            "doc_id": d.doc_id,
                            "removed_doc_id": hit.doc_id,
                            "request_id": hit.request_id,
                        }
                    )
        if not sorted_tables or m.tokens == 0:
            continue
        toks = shard.tokens()
        starts = np.array([d.start for d in m.docs], dtype=np.int64)
        for k, table in sorted_tables.items():
            positions = scan(toks, table, k)
            if len(positions) == 0:
                continue
            hashes = window_hashes(toks, k)[positions]
            owners = np.searchsorted(starts, positions, side="right") - 1
            counts: Counter[tuple[int, int]] = Counter()
            for owner, h in zip(owners.tolist(), hashes.tolist(), strict=True):
                for ridx in tables[k].get(int(h), ()):
                    counts[(owner, ridx)] += 1
            seen_pairs: set[tuple[int, int]] = set()
            for (owner, ridx), n in counts.items():
                if n >= needed[ridx] and (owner, ridx) not in seen_pairs:
                    seen_pairs.add((owner, ridx))
                    r = removed[ridx]
                    live = m.docs[owner] if 0 <= owner < len(m.docs) else None
                    result.hits.append(
                        {
                            "kind": "bytes",
                            "shard": m.shard_id,
                            "doc_id": live.doc_id if live else "",
                            "url": live.url if live else "",
                            "removed_doc_id": r.doc_id,
                            "request_id": r.request_id,
                            "windows_matched": n,
                            "windows": len(set(int(x) for x in r.hashes)),
                        }
                    )
    result.scan_sha256 = scanned.hexdigest()
    return result
