"""Block rules: URL, prefix, domain, content hash, doc id and near-duplicate (MinHash) matching."""

from __future__ import annotations

import numpy as np
import pytest

from compliance.blocklist import EmptyBlocklist, RuleSet, parse_near_value
from streams.records import BlockRule, Document


def rule(kind: str, value: str, rid: str | None = None, active: bool = True) -> BlockRule:
    return BlockRule(rule_id=rid or f"blk-{kind}-{value[:10]}", kind=kind, value=value, request_id="r", active=active)


def doc(url: str, doc_id: str = "d1", content_hash: str = "ab" * 32) -> Document:
    return Document(doc_id=doc_id, page_id="p", url=url, text="t", content_hash=content_hash)


def test_url_prefix_and_registered_domain_rules() -> None:
    rules = RuleSet(
        [
            rule("url", "https://a.example:443/x#section"),
            rule("url_prefix", "https://b.example/private/"),
            rule("domain", "c.example"),
        ]
    )
    assert rules.match_url("HTTPS://A.EXAMPLE/x") is not None  # canonical form: case, default port, fragment
    assert rules.match_url("https://a.example/y") is None
    assert rules.match_url("https://b.example/private/1") is not None
    assert rules.match_url("https://b.example/public/1") is None
    assert rules.match_url("https://deep.sub.c.example/") is not None  # subdomains of the domain
    assert rules.match_url("https://notc.example/") is None


def test_content_hash_and_doc_id_rules_and_withdrawal() -> None:
    rules = RuleSet([rule("content_hash", "CD" * 32, rid="h"), rule("doc_id", "d9", rid="i")])
    assert rules.match_document(doc("https://x.example/", content_hash="cd" * 32)) is not None
    assert rules.match_document(doc("https://x.example/", doc_id="d9")) is not None
    assert rules.match_document(doc("https://x.example/")) is None
    version, ids = rules.blocked_doc_ids()
    assert ids == ["d9"]
    rules.apply(rule("doc_id", "d9", rid="i", active=False))  # last write per rule id wins
    assert rules.match_document(doc("https://x.example/", doc_id="d9")) is None
    assert rules.blocked_doc_ids() == (version + 1, [])


def test_near_rules_match_on_the_share_of_equal_minhash_values() -> None:
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**63, size=112, dtype=np.uint64)
    value = "0.8:" + ",".join(f"{int(x):x}" for x in sig)
    rules = RuleSet([rule("near", value, rid="n")])
    close = sig.copy()
    close[:20] += np.uint64(1)  # 92/112 = 0.82 equal
    far = sig.copy()
    far[:30] += np.uint64(1)  # 82/112 = 0.73 equal
    assert rules.match_signature(sig) is not None
    m = rules.match_signature(close)
    assert m is not None and (m.kind, m.rule_id) == ("near", "n")
    assert rules.match_signature(far) is None
    assert rules.match_signature(sig[:100]) is None  # other MinHash settings: not comparable
    assert EmptyBlocklist().match_signature(sig) is None


def test_malformed_near_rules_are_ignored_not_fatal() -> None:
    for bad in ("no-colon", "1.5:ff", "0.8:", "0.8:zz"):
        with pytest.raises(ValueError):
            parse_near_value(bad)
    rules = RuleSet([rule("near", "0.8:", rid="bad"), rule("url", "https://a.example/", rid="ok")])
    assert len(rules) == 2 and rules.match_url("https://a.example/") is not None
