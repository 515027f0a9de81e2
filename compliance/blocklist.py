"""Block rules that every stage consults: crawler (before fetch), replay (before publish),
processing, and the shard writer (last gate).

Rules come from takedowns (``compliance.takedown``) through the compacted ``compliance.blocklist``
topic, or from a local JSONL store in embedded mode. Matching is by canonical URL, URL prefix,
registered domain (and its subdomains), content hash and doc id.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from streams.ids import canonical_url, url_host
from streams.records import BlockRule, Document


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


class EmptyBlocklist:
    """Blocks nothing (the default until a takedown publishes rules)."""

    def match_url(self, url: str) -> BlockMatch | None:
        return None

    def match_document(self, doc: Document) -> BlockMatch | None:
        return None


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
            self._rebuild()

    def _rebuild(self) -> None:
        self._urls.clear()
        self._prefixes.clear()
        self._domains.clear()
        self._hashes.clear()
        self._doc_ids.clear()
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
