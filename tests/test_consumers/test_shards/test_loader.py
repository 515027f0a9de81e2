"""The numpy loader: packing, exact resume, rank/worker partitions, shard pick-up, provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_consumers.test_shards.shard_factory import INFO, make_corpus, make_shard

from consumers.shards.loader import (
    LoaderConfig,
    LoaderError,
    ShardLoader,
    ShardSetChangedError,
)
from consumers.shards.tokenizer import TokenizerInfo


def stream_of(docs: list[list[int]]) -> np.ndarray:
    return np.array([t for d in docs for t in d], dtype=np.int64)


def collect(loader: ShardLoader) -> list[tuple[int, np.ndarray, np.ndarray]]:
    return [(b.step, b.tokens.copy(), b.sample_ids.copy()) for b in loader]


def test_samples_are_windows_of_the_concatenated_stream(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path, 5)
    stream = stream_of(docs)
    cfg = LoaderConfig(seq_len=64, batch_size=4, seed=1)
    loader = ShardLoader(tmp_path, cfg)
    plan = loader.plan
    assert plan.total_tokens == len(stream)
    assert plan.num_samples == (len(stream) - 1) // 64
    seen = 0
    for batch in loader:
        assert batch.tokens.shape == (4, 65) and batch.tokens.dtype == np.int64
        for row, sid in zip(batch.tokens, batch.sample_ids, strict=True):
            np.testing.assert_array_equal(row, stream[sid * 64 : sid * 64 + 65])
        np.testing.assert_array_equal(batch.input_ids[:, 1:], batch.labels[:, :-1])
        seen += 1
    assert seen == plan.num_samples // 4
    assert loader.epoch == 1 and loader.step == 0


def test_shuffle_is_seeded_and_differs_per_epoch(tmp_path: Path) -> None:
    make_corpus(tmp_path, 3)
    cfg = LoaderConfig(seq_len=32, batch_size=2, seed=5)
    a, b = ShardLoader(tmp_path, cfg), ShardLoader(tmp_path, cfg)
    order_a0, order_b0 = a.plan.order.copy(), b.plan.order.copy()
    np.testing.assert_array_equal(order_a0, order_b0)
    assert not np.array_equal(order_a0, np.sort(order_a0))
    list(a)
    assert not np.array_equal(a.plan.order, order_a0)  # epoch 1 has its own permutation
    c = ShardLoader(tmp_path, LoaderConfig(seq_len=32, batch_size=2, seed=6))
    assert not np.array_equal(c.plan.order, order_a0)
    unshuffled = ShardLoader(tmp_path, LoaderConfig(seq_len=32, batch_size=2, shuffle=False))
    np.testing.assert_array_equal(unshuffled.plan.order, np.arange(unshuffled.plan.num_samples))


@pytest.mark.parametrize("k", [0, 1, 7, 19])
def test_resume_at_step_k_gives_the_uninterrupted_batches(tmp_path: Path, k: int) -> None:
    make_corpus(tmp_path, 4)
    cfg = LoaderConfig(seq_len=48, batch_size=3, seed=2)
    reference = ShardLoader(tmp_path, cfg)
    full = collect(reference) + collect(reference)  # two epochs
    first = ShardLoader(tmp_path, cfg)
    it = iter(first)
    for _ in range(k):
        next(it)
    state = first.state_dict()
    resumed = ShardLoader(tmp_path, cfg)
    resumed.load_state_dict(state)
    rest = collect(resumed) + collect(resumed)
    assert len(rest) == len(full) - k
    for (s1, t1, i1), (s2, t2, i2) in zip(full[k:], rest, strict=True):
        assert s1 == s2
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(t1, t2)


def test_state_is_plain_data_and_checks_the_config(tmp_path: Path) -> None:
    import json

    make_corpus(tmp_path, 2)
    loader = ShardLoader(tmp_path, LoaderConfig(seq_len=16, batch_size=2, seed=3))
    next(iter(loader))
    state = json.loads(json.dumps(loader.state_dict()))
    assert state["step"] == 1 and len(state["segments"]) == 1
    other = ShardLoader(tmp_path, LoaderConfig(seq_len=32, batch_size=2, seed=3))
    with pytest.raises(LoaderError, match="seq_len"):
        other.load_state_dict(state)


@pytest.mark.parametrize(("world", "workers"), [(1, 1), (2, 1), (3, 2), (4, 3)])
def test_rank_and_worker_partitions_are_disjoint_and_cover_the_epoch(tmp_path: Path, world: int, workers: int) -> None:
    make_corpus(tmp_path, 5)
    seen: list[int] = []
    steps_by_rank: dict[int, list[int]] = {}
    plan = None
    for rank in range(world):
        cfg = LoaderConfig(seq_len=40, batch_size=2, seed=9, rank=rank, world_size=world)
        loader = ShardLoader(tmp_path, cfg)
        plan = loader.plan
        steps: list[int] = []
        for w in range(workers):
            for batch in loader.iter_steps(0, w, workers):
                seen.extend(batch.sample_ids.tolist())
                steps.append(batch.step)
        steps_by_rank[rank] = sorted(steps)
    assert plan is not None
    assert len(seen) == len(set(seen)), "a sample was served twice"
    served = plan.num_steps * plan.global_batch
    assert sorted(seen) == sorted(plan.order[:served].tolist())
    assert plan.num_samples - served < plan.global_batch  # only a partial global batch is left out
    for steps in steps_by_rank.values():
        assert steps == list(range(plan.num_steps))  # workers together serve every step once


def test_workers_interleaved_round_robin_equal_the_single_process_order(tmp_path: Path) -> None:
    make_corpus(tmp_path, 3)
    cfg = LoaderConfig(seq_len=32, batch_size=2, seed=4)
    single = [b.step for b in ShardLoader(tmp_path, cfg)]
    loader = ShardLoader(tmp_path, cfg)
    start = 5
    per_worker = [list(loader.iter_steps(start, w, 3)) for w in range(3)]
    merged = [b.step for group in zip(*per_worker, strict=False) for b in group]
    assert merged == single[start : start + len(merged)]


def test_new_shards_appear_only_at_epoch_boundaries(tmp_path: Path) -> None:
    make_corpus(tmp_path, 3)
    cfg = LoaderConfig(seq_len=32, batch_size=2, seed=1)
    loader = ShardLoader(tmp_path, cfg)
    n_old = loader.plan.num_samples
    it = iter(loader)
    for _ in range(3):
        next(it)
    make_shard(tmp_path, 5, 0, 30, np.random.default_rng(42))  # sealed mid-epoch
    rest = list(it)
    assert all(int(s) < n_old for b in rest for s in b.sample_ids)
    assert loader.epoch == 1
    assert loader.plan.num_samples > n_old  # the next epoch picks it up
    assert len(loader.state_dict()["segments"][0]["shards"]) == 4


def test_refresh_adds_new_shards_at_a_checkpoint_and_resumes_exactly(tmp_path: Path) -> None:
    make_corpus(tmp_path, 3)
    cfg = LoaderConfig(seq_len=32, batch_size=2, seed=1)
    loader = ShardLoader(tmp_path, cfg)
    n_old = loader.plan.num_samples
    it = iter(loader)
    consumed = [next(it).sample_ids.copy() for _ in range(4)]
    make_shard(tmp_path, 5, 0, 30, np.random.default_rng(42))
    assert loader.refresh() == 1
    assert loader.refresh() == 0  # idempotent
    state = loader.state_dict()
    assert [s["at_step"] for s in state["segments"]] == [0, 4]
    # The consumed prefix keeps its place; the new samples are mixed into the rest.
    np.testing.assert_array_equal(np.concatenate(consumed), loader.plan.order[:8])
    rest = [b.sample_ids.copy() for b in it]
    assert any(int(s) >= n_old for r in rest for s in r)
    served = np.concatenate(consumed + rest)
    assert len(set(served.tolist())) == len(served)
    # A loader restored from the checkpoint state serves the same rest.
    again = ShardLoader(tmp_path, cfg)
    again.load_state_dict(state)
    for a, b in zip(rest, (b.sample_ids for b in again), strict=True):
        np.testing.assert_array_equal(a, b)


def test_sample_docs_maps_samples_back_to_documents(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path, 4)
    tokens_by_id: dict[str, list[int]] = {}
    from consumers.shards.reader import list_shards

    for shard in list_shards(tmp_path):
        for d in shard.manifest.docs:
            tokens_by_id[d.doc_id] = shard.doc_tokens(d).tolist()
    assert len(tokens_by_id) == len(docs)
    loader = ShardLoader(tmp_path, LoaderConfig(seq_len=100, batch_size=2, seed=0))
    batch = next(iter(loader))
    for row, sid in zip(batch.tokens, batch.sample_ids, strict=True):
        spans = loader.sample_docs(int(sid))
        assert spans[0].sample_start == 0 and sum(s.length for s in spans) == 101
        rebuilt = [t for s in spans for t in tokens_by_id[s.doc_id][s.doc_start : s.doc_start + s.length]]
        assert rebuilt == row.tolist()
    with pytest.raises(IndexError):
        loader.sample_docs(loader.plan.num_samples)


def test_a_changed_shard_refuses_to_resume(tmp_path: Path) -> None:
    make_corpus(tmp_path, 2)
    cfg = LoaderConfig(seq_len=16, batch_size=1)
    loader = ShardLoader(tmp_path, cfg)
    state = loader.state_dict()
    state["segments"][0]["shards"][0]["data_prefix"] = "rewritten"
    fresh = ShardLoader(tmp_path, cfg)
    with pytest.raises(ShardSetChangedError):
        fresh.load_state_dict(state)


def test_mixed_tokenizers_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    make_shard(tmp_path, 0, 0, 5, rng)
    other = TokenizerInfo(name="other", sha256="cd" * 32, vocab_size=INFO.vocab_size, eos_id=INFO.eos_id)
    make_shard(tmp_path, 1, 0, 5, rng, info=other)
    with pytest.raises(LoaderError, match="tokenizer"):
        _ = ShardLoader(tmp_path, LoaderConfig(seq_len=8, batch_size=1)).plan


def test_bad_config_is_refused() -> None:
    with pytest.raises(LoaderError):
        LoaderConfig(rank=2, world_size=2).check()
    with pytest.raises(LoaderError):
        LoaderConfig(seq_len=0).check()
