"""Finding what a takedown request selects in a sealed corpus.

Manifest selectors (url, url_prefix, domain, doc_id, content_hash) are answered from the shard
manifests alone. ``near_text``/``near_doc`` compare MinHash signatures of the documents' text, and
``pii`` looks for the string in the decoded text and in the redaction log (hashes of redacted values),
so those decode the shards they need: the bytes are the truth, not an index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tldextract

from compliance.takedown.request import Selector, TakedownRequest
from consumers.shards.manifest import DocEntry
from consumers.shards.reader import Shard
from streams.ids import canonical_url, sha256_hex, url_host

log = logging.getLogger(__name__)

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # bundled list: never downloads


def registered_domain(host: str) -> str:
    ext = _EXTRACT(host)
    top = getattr(ext, "top_domain_under_public_suffix", None) or ext.registered_domain
    return str(top or host).lower()


def pii_value_hash(value: str) -> str:
    """How the PII stage records a redacted value: enough to find it again, not enough to read it."""
    return sha256_hex(value.strip().lower())[:16]


@dataclass(frozen=True)
class Match:
    shard_id: str
    doc_index: int  # position in the manifest's docs
    doc_id: str
    url: str
    content_hash: str
    tokens: int
    selectors: tuple[str, ...]


@dataclass
class MatchSet:
    matches: list[Match] = field(default_factory=list)

    def by_shard(self) -> dict[str, list[Match]]:
        out: dict[str, list[Match]] = {}
        for m in self.matches:
            out.setdefault(m.shard_id, []).append(m)
        return out

    @property
    def doc_ids(self) -> list[str]:
        return sorted({m.doc_id for m in self.matches})

    @property
    def tokens(self) -> int:
        return sum(m.tokens for m in self.matches)


Decoder = Callable[[Shard, DocEntry], str]
SignatureFn = Callable[[str], np.ndarray | None]


class RequestMatcher:
    """Evaluates one request's selectors against every document of a corpus."""

    def __init__(
        self,
        request: TakedownRequest,
        decode: Decoder,
        signature: SignatureFn | None = None,
        near_signatures: Sequence[np.ndarray] = (),
    ) -> None:
        self.request = request
        self.decode = decode
        self.signature = signature
        self.urls = {s.value for s in request.selectors if s.kind == "url"}
        self.prefixes = [s.value for s in request.selectors if s.kind == "url_prefix"]
        self.domains = {s.value for s in request.selectors if s.kind == "domain"}
        self.doc_ids = {s.value for s in request.selectors if s.kind == "doc_id"}
        self.hashes = {s.value for s in request.selectors if s.kind == "content_hash"}
        self.pii = [s.value for s in request.selectors if s.kind == "pii"]
        self.pii_hashes = {pii_value_hash(v) for v in self.pii}
        self.near = list(near_signatures)

    @property
    def needs_text(self) -> bool:
        return bool(self.pii or self.near)

    def _manifest_hits(self, entry: DocEntry) -> list[str]:
        hits: list[str] = []
        url = canonical_url(entry.url)
        if url in self.urls:
            hits.append(f"url={url}")
        for p in self.prefixes:
            if url.startswith(p):
                hits.append(f"url_prefix={p}")
        if self.domains:
            host = url_host(entry.url)
            reg = registered_domain(host) if host else ""
            for d in self.domains:
                if host == d or host.endswith("." + d) or reg == d:
                    hits.append(f"domain={d}")
        if entry.doc_id in self.doc_ids:
            hits.append(f"doc_id={entry.doc_id}")
        if entry.content_hash.lower() in self.hashes:
            hits.append(f"content_hash={entry.content_hash}")
        for h in getattr(entry, "pii_hashes", ()):
            if h in self.pii_hashes:
                hits.append("pii=redaction-log")
                break
        return hits

    def _text_hits(self, shard: Shard, entry: DocEntry) -> list[str]:
        hits: list[str] = []
        text = self.decode(shard, entry)
        low = text.lower()
        for v in self.pii:
            if v.lower() in low:
                hits.append("pii=text")
                break
        if self.near and self.signature is not None:
            sig = self.signature(text)
            if sig is not None:
                for ref in self.near:
                    sim = float(np.mean(sig == ref))
                    if sim >= self.request.near_threshold:
                        hits.append(f"near={sim:.2f}")
                        break
        return hits

    def match_shards(self, shards: Iterable[Shard]) -> MatchSet:
        result = MatchSet()
        for shard in shards:
            m = shard.manifest
            for i, entry in enumerate(m.docs):
                hits = self._manifest_hits(entry)
                if self.needs_text:
                    hits += self._text_hits(shard, entry)
                if hits:
                    result.matches.append(
                        Match(m.shard_id, i, entry.doc_id, entry.url, entry.content_hash, entry.length, tuple(hits))
                    )
        return result


def selectors_summary(selectors: Iterable[Selector]) -> list[str]:
    return [s.describe() for s in selectors]
