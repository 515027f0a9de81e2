"""Megatron-LM ``MMIDIDX`` index files (``.idx``) next to flat token files (``.bin``).

Layout (little endian), as ``megatron.core.datasets.indexed_dataset._IndexWriter`` writes it:
9-byte magic ``MMIDIDX\\x00\\x00``, u64 version (1), u8 dtype code, u64 sequence count, u64 document
count (= number of documents + 1, the document index starts with 0), then int32 sequence lengths,
int64 byte pointers into ``.bin``, and int64 document indices. We write one sequence per document,
so Megatron-LM and NeMo read our shards as they are.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
DTYPE_CODES: dict[int, type[np.generic]] = {
    1: np.uint8,
    2: np.int8,
    3: np.int16,
    4: np.int32,
    5: np.int64,
    6: np.float64,
    7: np.float32,
    8: np.uint16,
}
CODE_FOR: dict[type[np.generic], int] = {v: k for k, v in DTYPE_CODES.items()}
# Megatron has no uint32 code; token ids above 65,535 are stored as int32, as Megatron does.
TOKEN_DTYPES = {"uint16": np.uint16, "int32": np.int32}


class IndexFormatError(ValueError):
    """An ``.idx`` file that is not a valid MMIDIDX index."""


def token_dtype_for(vocab_size: int) -> type[np.generic]:
    return np.uint16 if vocab_size <= 65536 else np.int32


@dataclass(frozen=True)
class Index:
    dtype: type[np.generic]
    sizes: npt.NDArray[np.int32]
    pointers: npt.NDArray[np.int64]
    doc_idx: npt.NDArray[np.int64]

    @property
    def num_sequences(self) -> int:
        return len(self.sizes)


def write_index(fh: BinaryIO, sizes: npt.ArrayLike, dtype: type[np.generic]) -> None:
    sizes_arr = np.asarray(sizes, dtype=np.int32)
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(len(sizes_arr), dtype=np.int64)
    if len(sizes_arr) > 1:
        np.cumsum(sizes_arr[:-1].astype(np.int64) * itemsize, out=pointers[1:])
    doc_idx = np.arange(len(sizes_arr) + 1, dtype=np.int64)
    fh.write(MAGIC)
    fh.write(struct.pack("<Q", VERSION))
    fh.write(struct.pack("<B", CODE_FOR[dtype]))
    fh.write(struct.pack("<Q", len(sizes_arr)))
    fh.write(struct.pack("<Q", len(doc_idx)))
    fh.write(sizes_arr.tobytes(order="C"))
    fh.write(pointers.tobytes(order="C"))
    fh.write(doc_idx.tobytes(order="C"))


def read_index(path: Path) -> Index:
    data = np.memmap(path, dtype=np.uint8, mode="r")
    header = 9 + 8 + 1 + 8 + 8
    if len(data) < header or bytes(data[:9]) != MAGIC:
        raise IndexFormatError(f"{path}: not an MMIDIDX index (bad magic)")
    (version,) = struct.unpack("<Q", bytes(data[9:17]))
    if version != VERSION:
        raise IndexFormatError(f"{path}: index version {version} is not {VERSION}")
    code = int(data[17])
    if code not in DTYPE_CODES:
        raise IndexFormatError(f"{path}: unknown dtype code {code}")
    n_seq, n_doc = struct.unpack("<QQ", bytes(data[18:34]))
    expected = header + n_seq * 4 + n_seq * 8 + n_doc * 8
    if len(data) != expected:
        raise IndexFormatError(f"{path}: {len(data)} bytes, header says {expected}")
    off = header
    sizes = np.frombuffer(data, dtype=np.int32, count=n_seq, offset=off)
    off += n_seq * 4
    pointers = np.frombuffer(data, dtype=np.int64, count=n_seq, offset=off)
    off += n_seq * 8
    doc_idx = np.frombuffer(data, dtype=np.int64, count=n_doc, offset=off)
    return Index(DTYPE_CODES[code], sizes, pointers, doc_idx)
