"""A takedown on a corpus of >= 100 shards rewrites only the shards that hold matches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from compliance.takedown.engine import Takedown
from compliance.takedown.request import make_request
from compliance.takedown.verify import verify_corpus
from consumers.shards.reader import iter_documents, list_shards, verify_shards
from consumers.shards.tokenizer import TokenizerInfo
from consumers.shards.writer import OpenShard
from streams.records import Document

INFO = TokenizerInfo(name="test-vocab", sha256="cd" * 32, vocab_size=1000, eos_id=999)


def build(directory: Path, n_shards: int, docs_per_shard: int, rng: np.random.Generator) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(n_shards):
        shard = OpenShard(directory, "docs.unique@scale", 0, k * docs_per_shard, INFO)
        for i in range(docs_per_shard):
            n = k * docs_per_shard + i
            # 1 in 97 documents comes from the domain the request names, so it is spread over shards.
            host = "victim.example.com" if n % 97 == 13 else f"site{n % 31}.example.org"
            ids = [*rng.integers(0, INFO.eos_id, size=int(rng.integers(20, 200))).tolist(), INFO.eos_id]
            shard.add(Document(doc_id=f"d{n:06d}", page_id=f"p{n}", url=f"https://{host}/{n}", text="x"), ids, n)
        shard.seal()


def file_ids(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in directory.iterdir()}


def test_only_affected_shards_are_rewritten_in_a_120_shard_corpus(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    build(shards, n_shards=120, docs_per_shard=20, rng=np.random.default_rng(0))
    before_files = file_ids(shards)
    before = {s.manifest.shard_id: s.manifest.data_prefix for s in list_shards(shards)}
    holding = {s.manifest.shard_id for s in list_shards(shards) if any("victim" in d.url for d in s.manifest.docs)}
    assert len(before) == 120 and 10 < len(holding) < 40

    eng = Takedown(shards, tmp_path / "compliance")
    req = make_request([("domain", "example.com")], reason="scale", requester="tests")
    _, outcome = eng.run(req)
    assert outcome.status == "completed"

    after = {s.manifest.shard_id: s.manifest.data_prefix for s in list_shards(shards)}
    rewritten = {sid for sid in after if after[sid] != before[sid]}
    assert rewritten == holding == {r["shard"] for r in outcome.shards_rewritten}
    # Untouched shards: the very same files (same inode, never rewritten).
    untouched = [p for sid, p in before.items() if sid not in holding]
    now_files = file_ids(shards)
    for prefix in untouched:
        for suffix in (".bin", ".idx"):
            assert now_files[prefix + suffix] == before_files[prefix + suffix]
    assert not any("victim" in e.url for _, e, _ in iter_documents(shards))
    assert verify_shards(shards).ok and verify_corpus(shards, tmp_path / "compliance" / "takedowns").ok


def test_host_precheck_never_misses_a_url_the_parser_would_match() -> None:
    from compliance.takedown.verify import _may_be_host
    from streams.ids import url_host

    hosts = {"victim.example.com"}
    for url in (
        "https://victim.example.com/a",
        "HTTPS://VICTIM.EXAMPLE.COM:443/a",
        "https://victim.example.com./a",
        "https://user@victim.example.com/a",
        "https://vic\ttim.example.com/a",
        " https://victim.example.com/a",
        "https://victim.example.com?q=1",
        "https://victim.example.com#x",
        "https:\\\\victim.example.com/a",
    ):
        if url_host(url) in hosts:
            assert _may_be_host(url, hosts), url
    assert not _may_be_host("https://other.example.org/victim.example.com", hosts)
