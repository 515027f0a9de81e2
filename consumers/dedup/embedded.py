"""The embedded dedup index: one process, on local disk, survives restarts.

Layout of the index folder (docs/dedup.md has the full description):

``records.bin``
    Append-only, one fixed-size record per admitted document; the record number is the document's
    *ordinal*. A record holds the 16-byte doc id, the exact key, the band keys, flags and a 32-bit
    check value over all of it and the ordinal. This file is the source of truth.
``removed.bin``
    Append-only ordinals of removed documents (8 bytes each, with a check value).
``names.bin``
    doc_ids that are not 32 hex digits (pipeline ids always are), so records stay fixed-size.
``tables.snap``
    Optional snapshot of the lookup tables, derived from the records; makes a restart fast.
``checkpoint.json``
    Written last, atomically (temp file, fsync, rename, fsync of the folder): how many records,
    removals and name bytes are durable, the offsets they reflect, the snapshot's checksum, and a
    sha256 of itself.

In memory, one sorted ``uint64`` array per table (doc id, exact key, one per band) holds
``(high 32 bits of the key) << 32 | ordinal``: 8 bytes per key, 16 keys per document with the
default 14 bands, so 128 bytes per document. A lookup finds candidates by the high 32 bits and
verifies the full key against the record (a ``pread`` of one record, only when something matched).
New documents go into small sorted runs that are merged log-structured style (a run is merged with
its neighbour while that is at most twice its size), so an insert costs O(log n) amortised.

Crash safety: records are written as documents are admitted and made durable by ``checkpoint``,
which the dedup group calls before it commits the batch's offsets. On open, anything after the last
checkpoint is cut off, so the index is exactly at a checkpoint: either the one of the last committed
batch (the batch is replayed from the same state) or one batch ahead (the replayed documents are found
by doc_id and get ``Unique(replayed=True)``, the verdict they got before).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xxhash

from consumers.dedup.index import (
    CorruptIndexError,
    DedupIndexError,
    DuplicateOf,
    Entry,
    IndexLockedError,
    IndexMismatchError,
    IndexStats,
    Unique,
    Verdict,
)
from consumers.dedup.minhash import MinHashParams
from streams.bus import TopicPartition

log = logging.getLogger(__name__)

FORMAT = "headrace-dedup-embedded/1"
CHECKPOINT = "checkpoint.json"
RECORDS = "records.bin"
REMOVED = "removed.bin"
NAMES = "names.bin"
SNAPSHOT = "tables.snap"
LOCK = "LOCK"

FLAG_NAMED = 1  # the doc id is not 32 hex digits; its text is in names.bin
FLAG_NO_BANDS = 2  # the document has no words, so no band keys

HI = np.uint64(0xFFFFFFFF00000000)
LO = np.uint64(0x00000000FFFFFFFF)
_U32 = np.uint64(32)
_U33 = np.uint64(33)
_F1 = np.uint64(0xFF51AFD7ED558CCD)
_F2 = np.uint64(0xC4CEB9FE1A85EC53)
_SEED = np.uint64(0x9E3779B97F4A7C15)
MAX_ORDINAL = (1 << 32) - 1
_SNAP_MAGIC = b"HRDXSNP1"


def _fmix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> _U33)
    x = x * _F1
    x = x ^ (x >> _U33)
    x = x * _F2
    return x ^ (x >> _U33)


def record_dtype(bands: int) -> np.dtype[Any]:
    return np.dtype(
        [
            ("id0", "<u8"),
            ("id1", "<u8"),
            ("exact", "<u8"),
            ("bands", "<u8", (bands,)),
            ("flags", "<u4"),
            ("check", "<u4"),
        ]
    )


def record_checks(recs: np.ndarray, first_ordinal: int) -> np.ndarray:
    """32-bit check value of each record, bound to its ordinal (vectorised)."""
    n = len(recs)
    with np.errstate(over="ignore"):
        h = (np.arange(first_ordinal, first_ordinal + n, dtype=np.uint64) + _SEED) * _F1
        cols = [recs["id0"], recs["id1"], recs["exact"]]
        cols.extend(recs["bands"][:, j] for j in range(recs["bands"].shape[1]))
        cols.append(recs["flags"].astype(np.uint64))
        for c in cols:
            h = _fmix(h ^ c)
        return (h >> _U32).astype(np.uint32)


def _removed_check(ords: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (_fmix(ords.astype(np.uint64) ^ _SEED) >> _U32).astype(np.uint32)


def doc_bytes(doc_id: str) -> tuple[bytes, bool]:
    """16 bytes naming the document, and whether its text must be kept in names.bin."""
    if len(doc_id) == 32:
        try:
            raw = bytes.fromhex(doc_id)
        except ValueError:
            raw = b""
        if len(raw) == 16 and raw.hex() == doc_id:
            return raw, False
    return hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=16).digest(), True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def _tp_key(tp: TopicPartition) -> str:
    return f"{tp.topic}[{tp.partition}]"


def docid_keys(id0: np.ndarray, id1: np.ndarray) -> np.ndarray:
    """64-bit lookup key of a doc id (mixes all 16 bytes, so structured ids spread too)."""
    with np.errstate(over="ignore"):
        return _fmix(id0.astype(np.uint64) ^ _fmix(id1.astype(np.uint64) ^ _SEED))


class _Rec(NamedTuple):
    id0: int
    id1: int
    exact: int
    bands: tuple[int, ...]  # empty when the document has no words
    flags: int

    @classmethod
    def of(cls, v: np.void) -> _Rec:
        flags = int(v["flags"])
        bands = () if flags & FLAG_NO_BANDS else tuple(int(x) for x in v["bands"])
        return cls(int(v["id0"]), int(v["id1"]), int(v["exact"]), bands, flags)


def _full_key(rec: _Rec, table: int) -> object:
    if table == 0:
        return (rec.id0, rec.id1)
    if table == 1:
        return rec.exact
    return _band(rec, table - 2)


def _band(rec: _Rec, j: int) -> int | None:
    return rec.bands[j] if rec.bands else None


def _bands_equal(rec: _Rec, band_keys: Sequence[int]) -> int:
    if not band_keys or not rec.bands:
        return 0
    return sum(1 for x, y in zip(rec.bands, band_keys, strict=True) if x == y)


@dataclass
class _Run:
    records: int  # how many records the run covers
    tables: list[np.ndarray]  # one sorted packed array per table


class EmbeddedIndex:
    """Implements :class:`consumers.dedup.index.DedupIndex` in a local folder."""

    backend = "embedded"

    def __init__(
        self,
        directory: str | Path,
        params: MinHashParams | None = None,
        *,
        snapshot_min_docs: int = 200_000,
        verify: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.params = params or MinHashParams()
        self.bands = self.params.bands
        self.ntables = self.bands + 2  # doc id, exact key, bands
        self.dtype = record_dtype(self.bands)
        self.rsize = self.dtype.itemsize
        self.snapshot_min_docs = snapshot_min_docs
        self._closed = False
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fh = (self.directory / LOCK).open("a+")
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_fh.close()
            raise IndexLockedError(
                f"dedup index {self.directory} is open in another process (the embedded backend is "
                "single-process; stop the dedup group or use the redis backend)"
            ) from exc
        try:
            self._open(verify)
        except BaseException:
            self._release()
            raise

    # ------------------------------------------------------------------------------ open / state
    def _open(self, verify: bool) -> None:
        d = self.directory
        self._offsets: dict[str, int] = {}
        self._names: dict[bytes, str] = {}
        self._removed: set[int] = set()
        self._removed_arr = np.empty(0, dtype=np.uint64)
        self._runs: list[_Run] = []
        self._snap: dict[str, Any] = {}
        ck_path = d / CHECKPOINT
        if not ck_path.exists():
            leftovers = [p.name for p in (d / RECORDS, d / REMOVED, d / NAMES) if p.exists() and p.stat().st_size]
            if leftovers:
                raise CorruptIndexError(
                    f"{d}: {', '.join(leftovers)} exist(s) but {CHECKPOINT} is missing; refusing to guess "
                    "which records are durable (restore checkpoint.json or start a new index folder)"
                )
            self._n = self._durable_n = 0
            self._n_removed = 0
            self._names_bytes = 0
            self._fds_open()
            self._write_checkpoint()
            return
        ck = self._read_checkpoint(ck_path)
        self._check_params(ck)
        self._n = self._durable_n = int(ck["records"])
        self._n_removed = int(ck["removed"])
        self._names_bytes = int(ck["names_bytes"])
        self._offsets = {str(k): int(v) for k, v in ck.get("offsets", {}).items()}
        self._snap = dict(ck.get("snapshot") or {})
        self._cut_tail(d / RECORDS, self._n * self.rsize)
        self._cut_tail(d / REMOVED, self._n_removed * 8)
        self._cut_tail(d / NAMES, self._names_bytes)
        self._fds_open()
        self._load_names()
        self._load_removed()
        t0 = time.perf_counter()
        start = self._load_snapshot() if self._snap else 0
        self._build_from_records(start, self._n, verify)
        if verify and start:
            self._verify_records(0, start)
        log.info(
            "dedup index %s: %d documents (%d removed), loaded in %.2fs",
            d,
            self._n,
            len(self._removed),
            time.perf_counter() - t0,
        )

    def _fds_open(self) -> None:
        flags = os.O_RDWR | os.O_CREAT
        self._rec_fd = os.open(self.directory / RECORDS, flags, 0o644)
        self._rem_fd = os.open(self.directory / REMOVED, flags, 0o644)
        self._names_fd = os.open(self.directory / NAMES, flags, 0o644)
        self._dirty = False

    def _read_checkpoint(self, path: Path) -> dict[str, Any]:
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise CorruptIndexError(f"{path}: unreadable or not JSON ({exc}); refusing to open the index") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CorruptIndexError(f"{path}: not a {FORMAT} checkpoint")
        claimed = data.pop("sha256", None)
        actual = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        if claimed != actual:
            raise CorruptIndexError(
                f"{path}: checksum mismatch (recorded {claimed}, computed {actual}); the file was damaged "
                "or edited; refusing to open the index"
            )
        return data

    def _check_params(self, ck: Mapping[str, Any]) -> None:
        want = self.params.describe()
        have = ck.get("params")
        if have != want:
            raise IndexMismatchError(
                f"{self.directory} was built with MinHash parameters {have}, the configuration asks for {want}; "
                "use the same parameters or a new index folder"
            )
        if int(ck.get("record_size", -1)) != self.rsize:
            raise CorruptIndexError(f"{self.directory}: record size {ck.get('record_size')} != {self.rsize}")

    def _cut_tail(self, path: Path, durable: int) -> None:
        size = path.stat().st_size if path.exists() else 0
        if size < durable:
            raise CorruptIndexError(
                f"{path}: {size} bytes on disk but the checkpoint says {durable} are durable; the file was "
                "truncated, refusing to open the index"
            )
        if size > durable:
            log.info("%s: dropping %d bytes written after the last checkpoint", path, size - durable)
            with path.open("r+b") as fh:
                fh.truncate(durable)
                os.fsync(fh.fileno())

    def _load_names(self) -> None:
        if not self._names_bytes:
            return
        raw = os.pread(self._names_fd, self._names_bytes, 0)
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise CorruptIndexError(f"{self.directory / NAMES}: truncated entry at byte {pos}")
            size = int.from_bytes(raw[pos : pos + 4], "little")
            body = raw[pos + 4 : pos + 4 + size]
            check = raw[pos + 4 + size : pos + 8 + size]
            if len(body) != size or len(check) != 4 or xxhash.xxh32_intdigest(body) != int.from_bytes(check, "little"):
                raise CorruptIndexError(f"{self.directory / NAMES}: entry at byte {pos} fails its checksum")
            name = body.decode("utf-8", "surrogatepass")
            self._names[doc_bytes(name)[0]] = name
            pos += 8 + size

    def _load_removed(self) -> None:
        if not self._n_removed:
            return
        raw = np.frombuffer(os.pread(self._rem_fd, self._n_removed * 8, 0), dtype="<u4").reshape(-1, 2)
        bad = np.nonzero(_removed_check(raw[:, 0]) != raw[:, 1])[0]
        if len(bad):
            raise CorruptIndexError(f"{self.directory / REMOVED}: entry {int(bad[0])} fails its checksum")
        self._removed = {int(o) for o in raw[:, 0]}
        self._removed_arr = np.array(sorted(self._removed), dtype=np.uint64)

    def _read_records(self, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.empty(0, dtype=self.dtype)
        raw = os.pread(self._rec_fd, (stop - start) * self.rsize, start * self.rsize)
        if len(raw) != (stop - start) * self.rsize:
            raise CorruptIndexError(f"{self.directory / RECORDS}: short read at record {start}")
        return np.frombuffer(raw, dtype=self.dtype)

    def _verify_records(self, start: int, stop: int, chunk: int = 1 << 18) -> None:
        for lo in range(start, stop, chunk):
            recs = self._read_records(lo, min(stop, lo + chunk))
            bad = np.nonzero(record_checks(recs, lo) != recs["check"])[0]
            if len(bad):
                raise CorruptIndexError(
                    f"{self.directory / RECORDS}: record {lo + int(bad[0])} fails its checksum; the file was "
                    "damaged, refusing to open the index"
                )

    def _build_from_records(self, start: int, stop: int, verify: bool, chunk: int = 1 << 20) -> None:
        for lo in range(start, stop, chunk):
            hi = min(stop, lo + chunk)
            recs = self._read_records(lo, hi)
            if verify:
                bad = np.nonzero(record_checks(recs, lo) != recs["check"])[0]
                if len(bad):
                    raise CorruptIndexError(
                        f"{self.directory / RECORDS}: record {lo + int(bad[0])} fails its checksum; the file "
                        "was damaged, refusing to open the index"
                    )
            self._add_run(self._tables_for(recs, lo), hi - lo)

    def _tables_for(self, recs: np.ndarray, first: int) -> list[np.ndarray]:
        ords = np.arange(first, first + len(recs), dtype=np.uint64)
        has_bands = (recs["flags"] & FLAG_NO_BANDS) == 0
        ids = docid_keys(recs["id0"], recs["id1"])
        tables = [np.sort((ids & HI) | ords), np.sort((recs["exact"] & HI) | ords)]
        band_ords = ords[has_bands]
        for j in range(self.bands):
            tables.append(np.sort((recs["bands"][has_bands, j] & HI) | band_ords))
        return tables

    # ------------------------------------------------------------------------------ runs
    def _add_run(self, tables: list[np.ndarray], records: int) -> None:
        if records == 0:
            return
        self._runs.append(_Run(records, tables))
        while len(self._runs) > 1 and self._runs[-2].records <= 2 * self._runs[-1].records:
            b = self._runs.pop()
            a = self._runs.pop()
            self._runs.append(
                _Run(a.records + b.records, [self._merge(x, y) for x, y in zip(a.tables, b.tables, strict=True)])
            )

    def _merge(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        merged = np.concatenate((a, b))
        if len(self._removed_arr):
            merged = merged[~np.isin(merged & LO, self._removed_arr)]
        merged.sort()
        return merged

    def _candidates(self, table: int, keys: np.ndarray) -> dict[int, list[int]]:
        """Ordinals whose key in ``table`` has the same high 32 bits as ``keys[i]`` (unverified)."""
        found: dict[int, list[int]] = {}
        if not self._runs or not len(keys):
            return found
        fp = keys & HI
        order = np.argsort(fp, kind="stable")
        sfp = fp[order]  # sorted queries make searchsorted walk memory forwards
        for run in self._runs:
            arr = run.tables[table]
            if not len(arr):
                continue
            pos = np.searchsorted(arr, sfp)
            hit = (arr[np.minimum(pos, len(arr) - 1)] & HI) == sfp
            hit &= pos < len(arr)
            for k in np.nonzero(hit)[0].tolist():
                j = int(pos[k])
                want = sfp[k]
                bucket = found.setdefault(int(order[k]), [])
                while j < len(arr) and (arr[j] & HI) == want:
                    bucket.append(int(arr[j] & LO))
                    j += 1
        return found

    # ------------------------------------------------------------------------------ records
    def _record(self, ordinal: int, cache: dict[int, _Rec]) -> _Rec:
        rec = cache.get(ordinal)
        if rec is None:
            rec = _Rec.of(self._read_records(ordinal, ordinal + 1)[0])
            cache[ordinal] = rec
        return rec

    def _doc_id_of(self, rec: _Rec) -> str:
        raw = rec.id0.to_bytes(8, "little") + rec.id1.to_bytes(8, "little")
        if rec.flags & FLAG_NAMED:
            name = self._names.get(raw)
            if name is None:
                raise CorruptIndexError(f"{self.directory}: a record names a doc_id missing from {NAMES}")
            return name
        return raw.hex()

    def doc_id_of(self, ordinal: int) -> str:
        return self._doc_id_of(_Rec.of(self._read_records(ordinal, ordinal + 1)[0]))

    def _live(self, ordinal: int) -> bool:
        return ordinal not in self._removed

    # ------------------------------------------------------------------------------ the contract
    def check_and_add(self, doc_id: str, exact_key: int, band_keys: Sequence[int]) -> Verdict:
        return self.check_and_add_many([Entry(doc_id, exact_key, band_keys)])[0]

    def check_and_add_many(self, entries: Sequence[Entry]) -> list[Verdict]:
        self._ensure_open()
        if not entries:
            return []
        b = self.bands
        n = len(entries)
        ids = [doc_bytes(e.doc_id) for e in entries]
        id0 = [int.from_bytes(raw[:8], "little") for raw, _ in ids]
        id1 = [int.from_bytes(raw[8:], "little") for raw, _ in ids]
        q = np.zeros((self.ntables, n), dtype=np.uint64)
        q[0] = docid_keys(np.array(id0, dtype=np.uint64), np.array(id1, dtype=np.uint64))
        q[1] = np.array([e.exact_key for e in entries], dtype=np.uint64)
        has_bands = [bool(e.band_keys) for e in entries]
        for e in entries:
            if e.band_keys and len(e.band_keys) != b:
                raise ValueError(f"{e.doc_id}: {len(e.band_keys)} band keys, the index has {b} bands")
        if any(has_bands):
            rows = [i for i in range(n) if has_bands[i]]
            q[2:, rows] = np.array([entries[i].band_keys for i in rows], dtype=np.uint64).T
        qlist = q.tolist()
        band_rows = q[2:].T.tolist()
        cands = [self._candidates(t, q[t]) for t in range(self.ntables)]
        # Only entries with a candidate in the index, or with a key another entry of this batch also
        # has, need the careful path; the rest are new for sure (the common case).
        suspect = np.zeros(n, dtype=bool)
        for t in range(self.ntables):
            if cands[t]:
                suspect[list(cands[t])] = True
            row = q[t] if t < 2 else q[t, has_bands]
            uniq, counts = np.unique(row, return_counts=True)
            if (counts > 1).any():
                mask = np.isin(q[t], uniq[counts > 1])
                suspect |= mask if t < 2 else (mask & has_bands)
        suspects = suspect.tolist()
        cache: dict[int, _Rec] = {}
        pending: dict[tuple[int, int], list[int]] = {}
        verdicts: list[Verdict] = []
        new: list[tuple[int, _Rec]] = []
        first = self._n
        for i, e in enumerate(entries):
            a, c = id0[i], id1[i]
            ex = qlist[1][i]
            bands = tuple(band_rows[i]) if has_bands[i] else ()
            if suspects[i]:
                # 1. replay: the document itself is already indexed
                if self._find(0, i, qlist[0][i], (a, c), cands, pending, cache) is not None:
                    verdicts.append(Unique(replayed=True))
                    continue
                # 2. exact copy of a kept document
                owner = self._find(1, i, ex, ex, cands, pending, cache)
                if owner is not None:
                    rec = self._record(owner, cache)
                    verdicts.append(DuplicateOf(self._doc_id_of(rec), "exact", _bands_equal(rec, bands)))
                    continue
                # 3. near duplicate: shares a band key with a kept document
                votes: Counter[int] = Counter()
                for j, key in enumerate(bands):
                    o = self._find(2 + j, i, key, key, cands, pending, cache)
                    if o is not None:
                        votes[o] += 1
                if votes:
                    best = min(votes, key=lambda o: (-votes[o], o))
                    rec = self._record(best, cache)
                    verdicts.append(DuplicateOf(self._doc_id_of(rec), "near", _bands_equal(rec, bands)))
                    continue
            # 4. new: admit it
            ordinal = first + len(new)
            if ordinal > MAX_ORDINAL:
                raise DedupIndexError(f"{self.directory}: more than {MAX_ORDINAL} documents; shard the index")
            raw, named = ids[i]
            flags = (FLAG_NAMED if named else 0) | (0 if bands else FLAG_NO_BANDS)
            rec = _Rec(a, c, ex, bands, flags)
            if named and raw not in self._names:
                self._append_name(raw, e.doc_id)
            new.append((ordinal, rec))
            if suspects[i]:
                cache[ordinal] = rec
                pending.setdefault((0, qlist[0][i]), []).append(ordinal)
                pending.setdefault((1, ex), []).append(ordinal)
                for j, key in enumerate(bands):
                    pending.setdefault((2 + j, key), []).append(ordinal)
            verdicts.append(Unique())
        if new:
            recs = self._pack([r for _, r in new])
            recs["check"] = record_checks(recs, first)
            os.pwrite(self._rec_fd, recs.tobytes(), first * self.rsize)
            self._dirty = True
            self._n += len(new)
            self._add_run(self._tables_for(recs, first), len(new))
        return verdicts

    def _pack(self, recs: Sequence[_Rec]) -> np.ndarray:
        out = np.zeros(len(recs), dtype=self.dtype)
        out["id0"] = [r.id0 for r in recs]
        out["id1"] = [r.id1 for r in recs]
        out["exact"] = [r.exact for r in recs]
        out["flags"] = [r.flags for r in recs]
        with_bands = [k for k, r in enumerate(recs) if r.bands]
        if with_bands:
            out["bands"][with_bands] = np.array([recs[k].bands for k in with_bands], dtype=np.uint64)
        return out

    def _find(
        self,
        table: int,
        i: int,
        key: int,
        want: object,
        cands: list[dict[int, list[int]]],
        pending: Mapping[tuple[int, int], list[int]],
        cache: dict[int, _Rec],
    ) -> int | None:
        """The live ordinal whose full key in ``table`` equals ``key`` (oldest first), or None."""
        found = cands[table].get(i)
        p = pending.get((table, key))
        if found is None and p is None:
            return None
        options = sorted(set(found or ()))
        if p:
            options.extend(p)
        for o in options:
            if self._live(o) and _full_key(self._record(o, cache), table) == want:
                return o
        return None

    def _append_name(self, raw: bytes, name: str) -> None:
        body = name.encode("utf-8", "surrogatepass")
        entry = len(body).to_bytes(4, "little") + body + xxhash.xxh32_intdigest(body).to_bytes(4, "little")
        os.pwrite(self._names_fd, entry, self._names_bytes)
        self._names_bytes += len(entry)
        self._names[raw] = name

    def contains(self, doc_id: str) -> bool:
        return self._ordinal_of(doc_id) is not None

    def _ordinal_of(self, doc_id: str) -> int | None:
        self._ensure_open()
        raw, _ = doc_bytes(doc_id)
        id0, id1 = int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")
        key = docid_keys(np.array([id0], dtype=np.uint64), np.array([id1], dtype=np.uint64))
        cache: dict[int, _Rec] = {}
        for o in sorted(set(self._candidates(0, key).get(0, []))):
            rec = self._record(o, cache)
            if self._live(o) and rec.id0 == id0 and rec.id1 == id1:
                return o
        return None

    def remove(self, doc_id: str) -> bool:
        ordinal = self._ordinal_of(doc_id)
        if ordinal is None:
            return False
        entry = np.array([[ordinal, 0]], dtype="<u4")
        entry[0, 1] = _removed_check(np.array([ordinal], dtype=np.uint64))[0]
        os.pwrite(self._rem_fd, entry.tobytes(), self._n_removed * 8)
        self._n_removed += 1
        self._removed.add(ordinal)
        self._removed_arr = np.array(sorted(self._removed), dtype=np.uint64)
        self._dirty = True
        return True

    def near(self, band_keys: Sequence[int]) -> list[str]:
        return [self.doc_id_of(o) for o in self._near_ordinals(band_keys)]

    def _near_ordinals(self, band_keys: Sequence[int], exclude: int | None = None) -> list[int]:
        self._ensure_open()
        if not band_keys:
            return []
        keys = np.asarray(band_keys, dtype=np.uint64)
        cache: dict[int, _Rec] = {}
        votes: Counter[int] = Counter()
        for j in range(self.bands):
            for o in set(self._candidates(2 + j, keys[j : j + 1]).get(0, ())):
                if o == exclude or not self._live(o):
                    continue
                if _band(self._record(o, cache), j) == int(keys[j]):
                    votes[o] += 1
        return sorted(votes, key=lambda o: (-votes[o], o))

    def near_doc(self, doc_id: str) -> list[str]:
        ordinal = self._ordinal_of(doc_id)
        if ordinal is None:
            return []
        rec = _Rec.of(self._read_records(ordinal, ordinal + 1)[0])
        return [self.doc_id_of(o) for o in self._near_ordinals(rec.bands, exclude=ordinal)]

    # ------------------------------------------------------------------------------ durability
    def checkpoint(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        self._ensure_open()
        if offsets:
            for tp, off in offsets.items():
                self._offsets[_tp_key(tp)] = int(off)
        elif not self._dirty:
            return
        if self._dirty:
            for fd in (self._names_fd, self._rem_fd, self._rec_fd):
                os.fsync(fd)
        self._durable_n = self._n
        since = self._n - int(self._snap.get("records", 0))
        if since >= max(self.snapshot_min_docs, int(self._snap.get("records", 0))):
            self._write_snapshot()
        self._write_checkpoint()
        self._dirty = False

    def _write_checkpoint(self) -> None:
        data: dict[str, Any] = {
            "format": FORMAT,
            "params": self.params.describe(),
            "record_size": self.rsize,
            "records": self._n,
            "removed": self._n_removed,
            "names_bytes": self._names_bytes,
            "offsets": dict(sorted(self._offsets.items())),
            "snapshot": self._snap,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        data["sha256"] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        _atomic_write(self.directory / CHECKPOINT, json.dumps(data, sort_keys=True, indent=1).encode())

    def compact(self) -> None:
        """Merge every run into one (dropping removed documents) and write a snapshot."""
        self._ensure_open()
        self.checkpoint()
        self._write_snapshot()
        self._write_checkpoint()

    def _merged_tables(self) -> list[np.ndarray]:
        if len(self._runs) > 1 or (self._runs and len(self._removed_arr)):
            total = sum(r.records for r in self._runs)
            tables = []
            for t in range(self.ntables):
                merged = np.concatenate([r.tables[t] for r in self._runs])
                if len(self._removed_arr):
                    merged = merged[~np.isin(merged & LO, self._removed_arr)]
                merged.sort()
                tables.append(merged)
            self._runs = [_Run(total, tables)]
        return self._runs[0].tables if self._runs else [np.empty(0, np.uint64) for _ in range(self.ntables)]

    def _write_snapshot(self) -> None:
        tables = self._merged_tables()
        header = {
            "format": FORMAT,
            "records": self._n,
            "removed": self._n_removed,
            "lengths": [len(t) for t in tables],
        }
        head = json.dumps(header, sort_keys=True).encode()
        digest = xxhash.xxh3_128()
        digest.update(head)
        path = self.directory / SNAPSHOT
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as fh:
            fh.write(_SNAP_MAGIC + len(head).to_bytes(4, "little") + head)
            for t in tables:
                buf = t.astype("<u8", copy=False).tobytes()
                digest.update(buf)
                fh.write(buf)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        _fsync_dir(self.directory)
        self._snap = {
            "file": SNAPSHOT,
            "records": self._n,
            "removed": self._n_removed,
            "bytes": path.stat().st_size,
            "xxh3_128": digest.hexdigest(),
        }

    def _load_snapshot(self) -> int:
        path = self.directory / SNAPSHOT
        if not path.exists():
            log.warning("%s: snapshot missing, rebuilding the tables from %s", path, RECORDS)
            self._snap = {}
            return 0
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorruptIndexError(f"{path}: the checkpoint names a snapshot that cannot be read ({exc})") from exc
        if len(data) != int(self._snap.get("bytes", -1)):
            raise CorruptIndexError(
                f"{path}: {len(data)} bytes, the checkpoint says {self._snap.get('bytes')}; refusing to open "
                f"(the snapshot is derived data: delete {SNAPSHOT} and the index rebuilds it from {RECORDS})"
            )
        if data[:8] != _SNAP_MAGIC:
            raise CorruptIndexError(f"{path}: not a snapshot file")
        hlen = int.from_bytes(data[8:12], "little")
        head = data[12 : 12 + hlen]
        digest = xxhash.xxh3_128()
        digest.update(head)
        digest.update(memoryview(data)[12 + hlen :])
        if digest.hexdigest() != self._snap.get("xxh3_128"):
            raise CorruptIndexError(
                f"{path}: checksum mismatch; refusing to open (the snapshot is derived data: delete {SNAPSHOT} "
                f"and the index rebuilds it from {RECORDS})"
            )
        header = json.loads(head)
        tables = []
        pos = 12 + hlen
        for length in header["lengths"]:
            tables.append(np.frombuffer(data, dtype="<u8", count=length, offset=pos).astype(np.uint64))
            pos += 8 * length
        records = int(header["records"])
        if records > self._n:
            raise CorruptIndexError(f"{path}: covers {records} records, the checkpoint only {self._n}")
        if records:
            self._runs = [_Run(records, tables)]
        return records

    # ------------------------------------------------------------------------------ misc
    def stats(self) -> IndexStats:
        self._ensure_open()
        mem = sum(t.nbytes for r in self._runs for t in r.tables)
        disk = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
        return IndexStats(
            backend=self.backend,
            documents=self._n - len(self._removed),
            removed=len(self._removed),
            bytes_total=disk,
            bytes_memory=mem,
            offsets=dict(self._offsets),
            details={
                "directory": str(self.directory),
                "records": self._n,
                "record_bytes": self.rsize,
                "runs": len(self._runs),
                "snapshot_records": int(self._snap.get("records", 0)),
                "params": self.params.describe(),
            },
        )

    def offsets(self) -> dict[str, int]:
        return dict(self._offsets)

    def __len__(self) -> int:
        return self._n - len(self._removed)

    def _ensure_open(self) -> None:
        if self._closed:
            raise DedupIndexError(f"dedup index {self.directory} is closed")

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.checkpoint()
            if self._n != int(self._snap.get("records", 0)) or self._n_removed != int(self._snap.get("removed", 0)):
                self._write_snapshot()
                self._write_checkpoint()
        finally:
            self._release()

    def abandon(self) -> None:
        """Release the folder without writing anything (what a crash leaves; for tests and tools)."""
        self._release()

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in ("_rec_fd", "_rem_fd", "_names_fd"):
            fd = getattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
        self._lock_fh.close()

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_tables(index: EmbeddedIndex) -> Iterable[np.ndarray]:
    """Every lookup array (for memory accounting)."""
    for run in index._runs:
        yield from run.tables
