"""Incremental = batch: streaming a corpus in 10 chunks with 3 crash-restarts keeps the same set of
documents as one batch run over the same sequence, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_consumers.test_dedup.streaming import stream, synthetic_corpus

from consumers.dedup.embedded import EmbeddedIndex
from consumers.dedup.index import DedupIndex

pytestmark = pytest.mark.redis


@pytest.fixture
def factory(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], Callable[[], DedupIndex]]:
    def make(name: str) -> Callable[[], DedupIndex]:
        if backend == "embedded":
            return lambda: EmbeddedIndex(tmp_path / name, snapshot_min_docs=300)
        from consumers.dedup.redis_backend import RedisIndex

        url = request.getfixturevalue("redis_url")
        ns = f"{request.getfixturevalue('redis_namespace')}-{name}"
        return lambda: RedisIndex(url, namespace=ns, buckets=64)

    return make


def test_incremental_with_crashes_keeps_the_same_set_as_one_batch(
    factory: Callable[[str], Callable[[], DedupIndex]],
) -> None:
    docs = synthetic_corpus()
    batch = stream(factory("batch"), [docs])
    size = -(-len(docs) // 10)
    chunks = [docs[i : i + size] for i in range(0, len(docs), size)]
    assert len(chunks) == 10
    inc = stream(factory("inc"), chunks, crashes={2: "mid-batch", 5: "before-commit", 8: "torn-write"})
    assert inc.crashes == 3

    kept_batch, kept_inc = set(batch.kept), set(inc.kept)
    agreement = len(kept_batch & kept_inc) / len(kept_batch | kept_inc)
    assert agreement >= 0.999, f"set agreement {agreement:.5f}"
    assert kept_inc == kept_batch  # first-writer-wins over the same sequence: in fact identical
    assert len(inc.kept) == len(kept_inc)  # and nothing was published twice
    # every input is accounted for exactly once: kept or dropped with the kept doc it duplicates
    dropped = {r.id for r in inc.rejected}
    assert len(dropped) == len(inc.rejected)
    assert dropped | kept_inc == {d.doc_id for d in docs} and not dropped & kept_inc
    assert all(r.duplicate_of in kept_inc for r in inc.rejected)
    assert {r.reason for r in inc.rejected} == {"exact-duplicate", "near-duplicate"}
    assert 0.2 < len(dropped) / len(docs) < 0.5
