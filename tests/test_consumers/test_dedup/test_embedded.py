"""Embedded backend: durability at the checkpoint cut, refusal of damaged state, locking, size."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_consumers.test_dedup.conftest import doc_id, random_text

from consumers.dedup.embedded import CHECKPOINT, RECORDS, REMOVED, SNAPSHOT, EmbeddedIndex
from consumers.dedup.index import (
    CorruptIndexError,
    DuplicateOf,
    Entry,
    IndexLockedError,
    IndexMismatchError,
    Unique,
)
from consumers.dedup.minhash import MinHashParams
from streams.bus import TopicPartition

Make = Callable[[str, str], Entry]


def fill(index: EmbeddedIndex, entry_for: Make, n: int, start: int = 0, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = [random_text(rng, 60) for _ in range(n)]
    assert index.check_and_add_many([entry_for(doc_id(start + i), t) for i, t in enumerate(texts)]) == [Unique()] * n
    return texts


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_checkpoint_records_the_offsets_it_reflects(tmp_path: Path, entry_for: Make) -> None:
    idx = EmbeddedIndex(tmp_path)
    fill(idx, entry_for, 5)
    idx.checkpoint({TopicPartition("docs.clean", 0): 17, TopicPartition("docs.clean", 3): 4})
    idx.checkpoint({TopicPartition("docs.clean", 0): 21})
    idx.close()
    ck = json.loads((tmp_path / CHECKPOINT).read_text())
    assert ck["offsets"] == {"docs.clean[0]": 21, "docs.clean[3]": 4}
    assert ck["records"] == 5
    again = EmbeddedIndex(tmp_path)
    assert again.offsets() == {"docs.clean[0]": 21, "docs.clean[3]": 4}
    assert again.stats().documents == 5
    again.close()


def test_a_crash_before_the_checkpoint_rolls_back_to_it(tmp_path: Path, entry_for: Make) -> None:
    idx = EmbeddedIndex(tmp_path)
    texts = fill(idx, entry_for, 10)
    idx.checkpoint({TopicPartition("t", 0): 10})
    fill(idx, entry_for, 10, start=10, seed=1)  # written to records.bin, never checkpointed
    idx.abandon()  # what kill -9 leaves
    assert (tmp_path / RECORDS).stat().st_size == 20 * idx.rsize
    idx = EmbeddedIndex(tmp_path)
    assert idx.stats().documents == 10
    assert (tmp_path / RECORDS).stat().st_size == 10 * idx.rsize
    assert idx.offsets() == {"t[0]": 10}
    # the lost batch is re-delivered from offset 10 and admitted again; the first 10 are replays
    fill(idx, entry_for, 10, start=10, seed=1)
    assert idx.check_and_add_many([entry_for(doc_id(0), texts[0])]) == [Unique(replayed=True)]
    idx.close()


def test_snapshot_plus_tail_equals_a_rebuild(tmp_path: Path, entry_for: Make) -> None:
    idx = EmbeddedIndex(tmp_path, snapshot_min_docs=50)
    texts = fill(idx, entry_for, 60)
    idx.checkpoint()  # 60 >= 50: snapshot
    more = fill(idx, entry_for, 30, start=60, seed=2)
    idx.remove(doc_id(3))
    idx.checkpoint()  # no new snapshot (30 < 60), the tail is rebuilt from records.bin on open
    ck = json.loads((tmp_path / CHECKPOINT).read_text())
    assert ck["snapshot"]["records"] == 60 and ck["records"] == 90
    idx.abandon()
    for _ in range(2):  # with the snapshot, then rebuilt from records.bin after deleting it
        idx = EmbeddedIndex(tmp_path)
        out = idx.check_and_add_many([entry_for(doc_id(500 + i), t) for i, t in enumerate(texts + more)])
        assert out[3] == Unique()  # removed before the crash
        assert all(v == DuplicateOf(doc_id(i), "exact", 14) for i, v in enumerate(out) if i != 3)
        idx.abandon()
        (tmp_path / SNAPSHOT).unlink(missing_ok=True)


def test_damaged_checkpoint_is_refused(tmp_path: Path, entry_for: Make) -> None:
    idx = EmbeddedIndex(tmp_path)
    fill(idx, entry_for, 3)
    idx.close()
    ck = tmp_path / CHECKPOINT
    data = json.loads(ck.read_text())
    data["records"] = 2  # an edit without a matching checksum
    ck.write_text(json.dumps(data))
    with pytest.raises(CorruptIndexError, match="checksum mismatch"):
        EmbeddedIndex(tmp_path)
    ck.write_text("{not json")
    with pytest.raises(CorruptIndexError, match="not JSON"):
        EmbeddedIndex(tmp_path)
    ck.unlink()
    with pytest.raises(CorruptIndexError, match=r"checkpoint\.json is missing"):
        EmbeddedIndex(tmp_path)


def test_damaged_record_is_refused_with_its_number(tmp_path: Path, entry_for: Make) -> None:
    idx = EmbeddedIndex(tmp_path)
    fill(idx, entry_for, 8)
    size = idx.rsize
    idx.close()
    (tmp_path / SNAPSHOT).unlink()  # force the records to be read
    data = json.loads((tmp_path / CHECKPOINT).read_text())
    assert data["snapshot"]
    flip_byte(tmp_path / RECORDS, 5 * size + 20)
    with pytest.raises(CorruptIndexError):
        EmbeddedIndex(tmp_path)


def test_damaged_record_under_a_snapshot_is_refused(tmp_path: Path, entry_for: Make) -> None:
    idx = EmbeddedIndex(tmp_path)
    fill(idx, entry_for, 8)
    size = idx.rsize
    idx.close()
    flip_byte(tmp_path / RECORDS, 6 * size + 3)
    with pytest.raises(CorruptIndexError, match="record 6 fails its checksum"):
        EmbeddedIndex(tmp_path)


def test_damaged_snapshot_and_removals_are_refused(tmp_path: Path, entry_for: Make) -> None:
    idx = EmbeddedIndex(tmp_path)
    fill(idx, entry_for, 8)
    idx.remove(doc_id(2))
    idx.close()
    flip_byte(tmp_path / SNAPSHOT, (tmp_path / SNAPSHOT).stat().st_size - 5)
    with pytest.raises(CorruptIndexError, match=r"tables\.snap: checksum mismatch"):
        EmbeddedIndex(tmp_path)
    (tmp_path / SNAPSHOT).unlink()
    flip_byte(tmp_path / REMOVED, 1)
    with pytest.raises(CorruptIndexError, match=r"removed.bin: entry 0"):
        EmbeddedIndex(tmp_path)


def test_truncated_records_are_refused(tmp_path: Path, entry_for: Make) -> None:
    idx = EmbeddedIndex(tmp_path)
    fill(idx, entry_for, 4)
    idx.close()
    with (tmp_path / RECORDS).open("r+b") as fh:
        fh.truncate(3 * idx.rsize + 7)
    with pytest.raises(CorruptIndexError, match="truncated"):
        EmbeddedIndex(tmp_path)


def test_second_process_is_locked_out_and_params_must_match(tmp_path: Path) -> None:
    idx = EmbeddedIndex(tmp_path)
    with pytest.raises(IndexLockedError, match="single-process"):
        EmbeddedIndex(tmp_path)
    idx.close()
    with pytest.raises(IndexMismatchError, match="bands"):
        EmbeddedIndex(tmp_path, MinHashParams(bands=20, rows=13))
    EmbeddedIndex(tmp_path).close()  # the failed opens released the lock


def test_memory_is_128_bytes_per_document(tmp_path: Path) -> None:
    idx = EmbeddedIndex(tmp_path)
    rng = np.random.default_rng(0)
    n = 20_000
    keys = rng.integers(0, 2**63, size=(n, 15), dtype=np.uint64).tolist()
    for s in range(0, n, 1000):
        idx.check_and_add_many([Entry(doc_id(s + i), k[0], k[1:]) for i, k in enumerate(keys[s : s + 1000])])
    st = idx.stats()
    idx.close()
    assert st.documents == n
    assert st.bytes_memory / n == pytest.approx(16 * 8, abs=1)  # doc id + exact + 14 bands, 8 bytes each
    disk = sum(p.stat().st_size for p in tmp_path.iterdir()) / n
    assert disk < 144 + 128 + 1  # records + snapshot
