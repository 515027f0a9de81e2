"""Block rules that every stage consults: crawler (before fetch), replay (before publish),
processing, and the shard writer (last gate).

Rules come from takedowns (``compliance.takedown``) through the compacted ``compliance.blocklist``
topic, or from a local JSONL store in embedded mode. Matching is by canonical URL, URL prefix,
registered domain (and its subdomains), content hash, doc id, and near-duplicates of removed
documents (``near`` rules carry a MinHash signature; the dedup stage, which computes each document's
signature anyway, checks them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from streams.ids import canonical_url, url_host
from streams.records import BlockRule, Document

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BlockMatch:
    rule_id: str
    kind: str
    value: str
    request_id: str = ""


@runtime_checkable
class Blocklist(Protocol):
    def match_url(self, url: str) -> BlockMatch | None: ...

    def match_document(self, doc: Document) -> BlockMatch | None: ...

    def match_signature(self, signature: Sequence[int] | np.ndarray) -> BlockMatch | None: ...

    def blocked_doc_ids(self) -> tuple[int, list[str]]:
        """``(version, doc ids)``: the version changes whenever the rules do, so a caller can act
        on new doc-id rules once (the dedup stage forgets those documents)."""
        ...


class EmptyBlocklist:
    """Blocks nothing (the default until a takedown publishes rules)."""

    def match_url(self, url: str) -> BlockMatch | None:
        return None

    def match_document(self, doc: Document) -> BlockMatch | None:
        return None

    def match_signature(self, signature: Sequence[int] | np.ndarray) -> BlockMatch | None:
        return None

    def blocked_doc_ids(self) -> tuple[int, list[str]]:
        return 0, []


def parse_near_value(value: str) -> tuple[float, np.ndarray]:
    """``"<threshold>:<hex>,<hex>,..."`` -> (threshold, uint64 MinHash signature)."""
    head, sep, tail = value.partition(":")
    if not sep:
        raise ValueError("near rule value must be '<threshold>:<hex signature>'")
    threshold = float(head)
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near rule threshold {threshold} is outside (0, 1]")
    sig = np.array([int(x, 16) for x in tail.split(",") if x], dtype=np.uint64)
    if sig.size == 0:
        raise ValueError("near rule has an empty signature")
    return threshold, sig


class RuleSet:
    """An in-memory index of active rules; thread-safe, updated as rules arrive."""

    def __init__(self, rules: Iterable[BlockRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, BlockRule] = {}
        self._urls: dict[str, BlockRule] = {}
        self._prefixes: list[tuple[str, BlockRule]] = []
        self._domains: dict[str, BlockRule] = {}
        self._hashes: dict[str, BlockRule] = {}
        self._doc_ids: dict[str, BlockRule] = {}
        self._near: list[tuple[float, np.ndarray, BlockRule]] = []
        self._version = 0
        for r in rules:
            self.apply(r)

    def __len__(self) -> int:
        return len(self._rules)

    def rules(self) -> list[BlockRule]:
        with self._lock:
            return list(self._rules.values())

    def apply(self, rule: BlockRule) -> None:
        """Add, replace or (``active=False``) withdraw a rule; the last write for a rule id wins."""
        with self._lock:
            if rule.active:
                self._rules[rule.rule_id] = rule
            else:
                self._rules.pop(rule.rule_id, None)
            self._version += 1
            self._rebuild()

    def _rebuild(self) -> None:
        self._urls.clear()
        self._prefixes.clear()
        self._domains.clear()
        self._hashes.clear()
        self._doc_ids.clear()
        self._near.clear()
        for r in self._rules.values():
            if r.kind == "url":
                self._urls[canonical_url(r.value)] = r
            elif r.kind == "url_prefix":
                self._prefixes.append((canonical_url(r.value), r))
            elif r.kind == "domain":
                self._domains[r.value.lower().strip(".")] = r
            elif r.kind == "content_hash":
                self._hashes[r.value.lower()] = r
            elif r.kind == "doc_id":
                self._doc_ids[r.value] = r
            elif r.kind == "near":
                try:
                    threshold, sig = parse_near_value(r.value)
                except ValueError as exc:
                    log.error("block rule %s ignored: %s", r.rule_id, exc)
                    continue
                self._near.append((threshold, sig, r))
        self._prefixes.sort(key=lambda x: -len(x[0]))

    @staticmethod
    def _match(rule: BlockRule) -> BlockMatch:
        return BlockMatch(rule.rule_id, rule.kind, rule.value, rule.request_id)

    def match_url(self, url: str) -> BlockMatch | None:
        with self._lock:
            if not self._rules:
                return None
            canon = canonical_url(url)
            r = self._urls.get(canon)
            if r is not None:
                return self._match(r)
            for prefix, rule in self._prefixes:
                if canon.startswith(prefix):
                    return self._match(rule)
            host = url_host(url)
            while host:
                rule_d = self._domains.get(host)
                if rule_d is not None:
                    return self._match(rule_d)
                _, _, host = host.partition(".")
            return None

    def match_document(self, doc: Document) -> BlockMatch | None:
        m = self.match_url(doc.url)
        if m is not None:
            return m
        with self._lock:
            r = self._doc_ids.get(doc.doc_id) or self._hashes.get(doc.content_hash.lower())
            return self._match(r) if r is not None else None

    def match_signature(self, signature: Sequence[int] | np.ndarray) -> BlockMatch | None:
        """A ``near`` rule whose signature agrees with ``signature`` on at least its threshold's
        share of positions (the MinHash estimate of Jaccard similarity)."""
        with self._lock:
            if not self._near:
                return None
            sig = np.asarray(signature, dtype=np.uint64)
            for threshold, rule_sig, rule in self._near:
                if rule_sig.shape != sig.shape:
                    continue  # signed with other MinHash settings: cannot be compared
                if float(np.mean(rule_sig == sig)) >= threshold:
                    return self._match(rule)
            return None

    def blocked_doc_ids(self) -> tuple[int, list[str]]:
        with self._lock:
            return self._version, list(self._doc_ids)
