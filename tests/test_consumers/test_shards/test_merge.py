"""``headrace shards merge``: atomic switch, idempotence, crash resumption, loader resume across it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_consumers.test_shards.shard_factory import make_corpus, make_shard

from consumers.shards import merge as merge_mod
from consumers.shards.loader import LoaderConfig, ShardLoader
from consumers.shards.manifest import manifest_path, read_manifest
from consumers.shards.merge import MergeError, merge_shards, plan_merge, write_merged
from consumers.shards.reader import iter_documents, list_shards, read_manifests, verify_shards


def doc_tokens(directory: Path) -> dict[str, list[int]]:
    return {e.doc_id: toks.tolist() for _, e, toks in iter_documents(directory)}


def test_merge_keeps_every_document_and_token(tmp_path: Path) -> None:
    make_corpus(tmp_path, 8, docs_per_shard=20)
    before = doc_tokens(tmp_path)
    total = sum(s.manifest.tokens for s in list_shards(tmp_path))
    target = total // 2 + 1
    report = merge_shards(tmp_path, target_tokens=target)
    after = list_shards(tmp_path)
    assert 2 <= len(after) <= 3 and all(s.manifest.tokens <= target for s in after)
    assert report.retired == report.sources >= 7
    assert doc_tokens(tmp_path) == before
    v = verify_shards(tmp_path)
    assert v.ok, v.problems
    assert v.retired == report.sources and not v.pending_retirements and v.unsealed_files == 0
    merged = after[0].manifest
    assert merged.merged_from and merged.sources  # union of the source ranges
    assert {r.partition for r in merged.sources} <= {0, 1}
    # Source data files are gone; their manifests are tombstones that keep the names taken.
    assert len(list(tmp_path.glob("*.bin"))) == len(after)
    tombstones = [m for m in read_manifests(tmp_path) if m.retired_by]
    assert len(tombstones) == report.sources and all(not t.docs for t in tombstones)


def test_merge_is_idempotent(tmp_path: Path) -> None:
    make_corpus(tmp_path, 6, docs_per_shard=10)
    merge_shards(tmp_path, target_tokens=10**9)
    state = sorted(p.name for p in tmp_path.iterdir())
    again = merge_shards(tmp_path, target_tokens=10**9)
    assert again.merged == [] and again.retired == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == state


def test_crash_after_publish_before_retire_is_finished_by_rerun(tmp_path: Path) -> None:
    make_corpus(tmp_path, 4, docs_per_shard=10)
    before = doc_tokens(tmp_path)
    group = plan_merge([s.manifest for s in list_shards(tmp_path)], 10**9)[0]
    merged = write_merged(tmp_path, group)  # the process dies here, before retiring anything
    # Readers already see exactly one copy of every document.
    assert [s.manifest.shard_id for s in list_shards(tmp_path)] == [merged.shard_id]
    assert doc_tokens(tmp_path) == before
    v = verify_shards(tmp_path)
    assert v.ok and len(v.pending_retirements) == 4
    report = merge_shards(tmp_path, target_tokens=10**9)
    assert report.retired == 4 and report.merged == []
    assert verify_shards(tmp_path).pending_retirements == []


def test_crash_while_writing_leaves_only_invisible_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_corpus(tmp_path, 3, docs_per_shard=10)
    before = doc_tokens(tmp_path)

    def boom(*_a: object, **_k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(merge_mod, "publish_manifest", boom)
    with pytest.raises(OSError):
        merge_shards(tmp_path, target_tokens=10**9)
    monkeypatch.undo()
    assert doc_tokens(tmp_path) == before and len(list_shards(tmp_path)) == 3
    assert verify_shards(tmp_path).unsealed_files == 2  # the renamed merged .bin/.idx, no manifest
    merge_shards(tmp_path, target_tokens=10**9)
    assert doc_tokens(tmp_path) == before and len(list_shards(tmp_path)) == 1


def test_corrupt_source_stops_the_merge(tmp_path: Path) -> None:
    make_corpus(tmp_path, 2, docs_per_shard=5)
    victim = list_shards(tmp_path)[0]
    data = bytearray(victim.bin_path.read_bytes())
    data[0] ^= 0xFF
    victim.bin_path.write_bytes(bytes(data))
    with pytest.raises(MergeError, match="sha256"):
        merge_shards(tmp_path, target_tokens=10**9)
    assert len(list_shards(tmp_path)) == 2 and not list(tmp_path.glob(".*.tmp"))


def test_merge_of_merged_shards_and_loader_resume_across_merges(tmp_path: Path) -> None:
    make_corpus(tmp_path, 6, docs_per_shard=15)
    cfg = LoaderConfig(seq_len=64, batch_size=2, seed=3)
    reference = [b.tokens.copy() for b in ShardLoader(tmp_path, cfg)]
    loader = ShardLoader(tmp_path, cfg)
    it = iter(loader)
    head = [next(it).tokens.copy() for _ in range(3)]
    state = loader.state_dict()
    total = sum(s.manifest.tokens for s in list_shards(tmp_path))
    merge_shards(tmp_path, target_tokens=total // 3 + 1)
    merge_shards(tmp_path, target_tokens=10**9)  # merges the merged shards again
    final = list_shards(tmp_path)
    assert len(final) == 1 and len(final[0].manifest.merged_from) > 6
    assert verify_shards(tmp_path).ok
    resumed = ShardLoader(tmp_path, cfg)
    resumed.load_state_dict(state)  # names the original shards: resolved through merged_from
    rest = [b.tokens for b in resumed]
    assert len(head) + len(rest) == len(reference)
    for a, b in zip(reference, head + rest, strict=True):
        np.testing.assert_array_equal(a, b)
    # A new epoch on the merged corpus sees the same tokens (one shard now, same stream order).
    assert resumed.plan.total_tokens == total


def test_sink_still_fences_a_range_after_its_shard_was_merged(tmp_path: Path) -> None:
    from test_consumers.test_shards.shard_factory import INFO

    from consumers.shards.manifest import ShardExistsError
    from consumers.shards.writer import OpenShard
    from streams.records import Document

    m, _ = make_shard(tmp_path, 0, 0, 5, np.random.default_rng(1))
    make_shard(tmp_path, 0, 5, 5, np.random.default_rng(2))
    merge_shards(tmp_path, target_tokens=10**9)
    assert read_manifest(manifest_path(tmp_path, m.shard_id)).retired_by
    zombie = OpenShard(tmp_path, "docs.unique@testbus0", 0, 0, INFO)
    zombie.add(Document(doc_id="z", page_id="z", url="https://z", text="z"), [1, INFO.eos_id], 0)
    with pytest.raises(ShardExistsError):
        zombie.seal()
