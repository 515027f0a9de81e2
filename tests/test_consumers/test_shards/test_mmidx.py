"""Our .bin/.idx against an independent reader written from Megatron's ``_IndexReader`` layout."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest

from consumers.shards.mmidx import IndexFormatError, read_index, token_dtype_for, write_index


def megatron_style_read(idx_path: Path, bin_path: Path) -> list[list[int]]:
    """Parse with struct only, exactly as megatron.core's _IndexReader and _MMapBinReader do."""
    raw = idx_path.read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack("<Q", raw[9:17])
    (code,) = struct.unpack("<B", raw[17:18])
    (seq_count,) = struct.unpack("<Q", raw[18:26])
    (doc_count,) = struct.unpack("<Q", raw[26:34])
    assert version == 1
    itemsize = {8: 2, 4: 4}[code]
    fmt = {8: "H", 4: "i"}[code]
    off = 34
    lengths = struct.unpack(f"<{seq_count}i", raw[off : off + 4 * seq_count])
    off += 4 * seq_count
    pointers = struct.unpack(f"<{seq_count}q", raw[off : off + 8 * seq_count])
    off += 8 * seq_count
    doc_idx = struct.unpack(f"<{doc_count}q", raw[off : off + 8 * doc_count])
    assert off + 8 * doc_count == len(raw)
    assert doc_idx[0] == 0 and doc_idx[-1] == seq_count  # one sequence per document
    data = bin_path.read_bytes()
    return [
        list(struct.unpack(f"<{n}{fmt}", data[p : p + n * itemsize])) for n, p in zip(lengths, pointers, strict=True)
    ]


@pytest.mark.parametrize("vocab", [50257, 100277])
def test_write_then_independent_read(tmp_path: Path, vocab: int) -> None:
    rng = np.random.default_rng(3)
    dtype = token_dtype_for(vocab)
    docs = [rng.integers(0, vocab, size=int(n)).tolist() for n in rng.integers(1, 500, size=50)]
    (tmp_path / "s.bin").write_bytes(b"".join(np.asarray(d, dtype=dtype).tobytes() for d in docs))
    with (tmp_path / "s.idx").open("wb") as fh:
        write_index(fh, [len(d) for d in docs], dtype)
    assert megatron_style_read(tmp_path / "s.idx", tmp_path / "s.bin") == docs
    idx = read_index(tmp_path / "s.idx")
    assert idx.dtype is dtype and list(idx.sizes) == [len(d) for d in docs]


def test_dtype_choice() -> None:
    assert token_dtype_for(50257) is np.uint16
    assert token_dtype_for(65536) is np.uint16
    assert token_dtype_for(65537) is np.int32


def test_bad_index_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "bad.idx"
    p.write_bytes(b"NOTANIDX" + b"\x00" * 40)
    with pytest.raises(IndexFormatError):
        read_index(p)
    buf = io.BytesIO()
    write_index(buf, [3, 4], np.uint16)
    p.write_bytes(buf.getvalue()[:-8])  # truncated
    with pytest.raises(IndexFormatError):
        read_index(p)


@pytest.fixture(scope="module")
def pipeline_shards(tmp_path_factory: pytest.TempPathFactory, sample_warc: Path) -> Path:
    """Real sealed shards: the sample WARC through the embedded pipeline (several shards, EOS, gpt2).
    The quality filters are off: the code-heavy sample would leave too few documents for several shards."""
    from dataclasses import replace

    from headrace.config import load_config
    from headrace.embedded import EmbeddedPipeline

    out = tmp_path_factory.mktemp("pipeline")
    overrides = {"extract": {"extractor": "resiliparse"}, "quality": {"enabled": False}, "shards": {"max_documents": 7}}
    cfg = load_config(None, overrides, environ={})
    cfg = replace(cfg, bus=replace(cfg.bus, partitions=2))
    summary = EmbeddedPipeline(cfg, out).run([str(sample_warc)])
    assert summary.shards_sealed >= 3 and summary.docs_written > 20
    return out / "shards"


def test_real_shards_read_identically_by_an_independent_megatron_reader(pipeline_shards: Path) -> None:
    from consumers.shards.reader import list_shards

    shards = list_shards(pipeline_shards)
    assert len(shards) >= 3
    for shard in shards:
        m = shard.manifest
        assert m.dtype == "uint16" and m.tokenizer.name == "gpt2"
        ours = [shard.doc_tokens(d).tolist() for d in m.docs]
        theirs = megatron_style_read(shard.idx_path, shard.bin_path)
        assert theirs == ours
        assert all(seq[-1] == m.tokenizer.eos_id for seq in theirs)
        assert [len(s) for s in theirs] == [d.length for d in m.docs]


def test_real_shards_read_by_megatron_core_indexed_dataset(pipeline_shards: Path) -> None:
    """Runs only where megatron-core (which needs torch) is installed."""
    indexed = pytest.importorskip(
        "megatron.core.datasets.indexed_dataset", reason="megatron-core needs torch; not installed here"
    )
    from consumers.shards.reader import list_shards

    for shard in list_shards(pipeline_shards):
        prefix = str(shard.bin_path)[: -len(".bin")]
        ds = indexed.IndexedDataset(prefix, multimodal=False, mmap=True)
        assert len(ds) == shard.manifest.documents
        for i, d in enumerate(shard.manifest.docs):
            assert ds[i].tolist() == shard.doc_tokens(d).tolist()
