"""The shared dedup index on Redis: several dedup replicas agree because check-and-add is one Lua script.

Layout (all keys share the hash tag ``{namespace}``, so a Redis Cluster keeps them in one slot and the
scripts stay legal there; docs/dedup-scale.md explains how to partition beyond one node):

``{ns}:t:<table>:<bucket>``  hash, field = 8-byte key (big-endian), value = 8-byte doc key of the owner.
                             ``<table>`` is ``x`` (exact key) or the band number.
``{ns}:d:<bucket>``          hash, field = doc key (xxh3-64 of the doc_id), value = the document's record:
                             bands present (1 byte), sequence (8), exact key (8), band keys (8 each), doc_id.
``{ns}:meta``                hash: MinHash parameters, counters, the insertion sequence.
``{ns}:offsets``             hash: ``topic[partition]`` -> next offset the index reflects.

Many small hashes ("buckets", the key's top 24 bits modulo ``buckets``) instead of one key per entry keep
Redis' per-key overhead away: a hash of up to ``hash-max-listpack-entries`` fields whose values are at most
``hash-max-listpack-value`` bytes is stored as one compact listpack. Records are about 160 bytes, so set
``hash-max-listpack-value 256`` (tools/redis/server.py does) and size ``buckets`` to about
expected documents / 100.

The sequence number gives both backends the same tie-break: among kept documents sharing the most bands,
the oldest wins.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import xxhash

from consumers.dedup.index import (
    DedupIndexError,
    DuplicateOf,
    Entry,
    IndexMismatchError,
    IndexStats,
    Unique,
    Verdict,
)
from consumers.dedup.minhash import MinHashParams
from streams.bus import TopicPartition

log = logging.getLogger(__name__)

_LUA_COMMON = """
local function bucket(k, nb)
  return (string.byte(k, 1) * 65536 + string.byte(k, 2) * 256 + string.byte(k, 3)) % nb
end
local function be8(n)
  local t = {}
  for i = 8, 1, -1 do t[i] = n % 256; n = math.floor(n / 256) end
  return string.char(unpack(t))
end
local function unbe8(s, pos)
  local n = 0
  for i = 0, 7 do n = n * 256 + string.byte(s, pos + i) end
  return n
end
-- record: nb(1) seq(8) exact(8) bands(8*nb) doc_id
local function rec_nb(r) return string.byte(r, 1) end
local function rec_seq(r) return unbe8(r, 2) end
local function rec_exact(r) return string.sub(r, 10, 17) end
local function rec_band(r, j) return string.sub(r, 18 + 8 * (j - 1), 17 + 8 * j) end
local function rec_doc(r) return string.sub(r, 18 + 8 * rec_nb(r)) end
"""

# KEYS: [1] my record bucket, [2] exact table bucket, [3..2+b] band table buckets, [3+b] meta
# ARGV: [1] doc key, [2] doc_id, [3] exact key, [4..3+b] band keys ("" when the document has none),
#       [4+b] buckets, [5+b] key prefix
CHECK_AND_ADD = (
    _LUA_COMMON
    + """
local b = #KEYS - 3
local dk, doc, ex = ARGV[1], ARGV[2], ARGV[3]
local nb = tonumber(ARGV[4 + b])
local prefix = ARGV[5 + b]
local has_bands = ARGV[4] ~= ''
local mine = redis.call('HGET', KEYS[1], dk)
if mine then
  if rec_doc(mine) == doc then return {'self'} end
  return redis.error_reply('doc key collision between ' .. doc .. ' and ' .. rec_doc(mine))
end
local function record_of(owner)
  return redis.call('HGET', prefix .. 'd:' .. bucket(owner, nb), owner)
end
local function matched(r)
  if not has_bands or rec_nb(r) == 0 then return 0 end
  local m = 0
  for j = 1, b do if rec_band(r, j) == ARGV[3 + j] then m = m + 1 end end
  return m
end
local owner = redis.call('HGET', KEYS[2], ex)
if owner then
  local r = record_of(owner)
  if r then return {'exact', rec_doc(r), matched(r)} end
end
if has_bands then
  local votes, recs = {}, {}
  local best, best_votes, best_seq = nil, 0, 0
  for j = 1, b do
    local o = redis.call('HGET', KEYS[2 + j], ARGV[3 + j])
    if o then
      if recs[o] == nil then recs[o] = record_of(o) or false end
      if recs[o] then votes[o] = (votes[o] or 0) + 1 end
    end
  end
  for o, v in pairs(votes) do
    local s = rec_seq(recs[o])
    if v > best_votes or (v == best_votes and s < best_seq) then best, best_votes, best_seq = o, v, s end
  end
  if best then return {'near', rec_doc(recs[best]), matched(recs[best])} end
end
local seq = redis.call('HINCRBY', KEYS[3 + b], 'seq', 1)
local bands = ''
if has_bands then bands = table.concat(ARGV, '', 4, 3 + b) end
local n = 0
if has_bands then n = b end
redis.call('HSET', KEYS[1], dk, string.char(n) .. be8(seq) .. ex .. bands .. doc)
redis.call('HSET', KEYS[2], ex, dk)
if has_bands then
  for j = 1, b do redis.call('HSET', KEYS[2 + j], ARGV[3 + j], dk) end
end
redis.call('HINCRBY', KEYS[3 + b], 'documents', 1)
return {'new'}
"""
)

# KEYS: [1] my record bucket, [2] meta.  ARGV: [1] doc key, [2] doc_id, [3] buckets, [4] prefix
REMOVE = (
    _LUA_COMMON
    + """
local dk, doc = ARGV[1], ARGV[2]
local nb = tonumber(ARGV[3])
local prefix = ARGV[4]
local r = redis.call('HGET', KEYS[1], dk)
if not r or rec_doc(r) ~= doc then return 0 end
local function drop(table_name, key)
  local k = prefix .. 't:' .. table_name .. ':' .. bucket(key, nb)
  if redis.call('HGET', k, key) == dk then redis.call('HDEL', k, key) end
end
drop('x', rec_exact(r))
for j = 1, rec_nb(r) do drop(tostring(j - 1), rec_band(r, j)) end
redis.call('HDEL', KEYS[1], dk)
redis.call('HINCRBY', KEYS[2], 'documents', -1)
redis.call('HINCRBY', KEYS[2], 'removed', 1)
return 1
"""
)


def _b8(value: int) -> bytes:
    return int(value).to_bytes(8, "big")


def _bucket(key: bytes, buckets: int) -> int:
    return (key[0] * 65536 + key[1] * 256 + key[2]) % buckets


class RedisIndex:
    """Implements :class:`consumers.dedup.index.DedupIndex` on a Redis server (7.0 or later)."""

    backend = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        params: MinHashParams | None = None,
        *,
        namespace: str = "headrace",
        buckets: int = 16384,
        client: Any = None,
    ) -> None:
        import redis

        if not 1 <= buckets <= 1 << 24:
            raise ValueError(f"redis buckets must be in 1..2^24, got {buckets}")
        self.params = params or MinHashParams()
        self.bands = self.params.bands
        self.buckets = buckets
        self.namespace = namespace
        self.prefix = f"{{{namespace}}}:"
        self.meta_key = f"{self.prefix}meta"
        self.offsets_key = f"{self.prefix}offsets"
        self.url = url
        self._redis: Any = client if client is not None else redis.Redis.from_url(url)
        self._closed = False
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise DedupIndexError(f"cannot reach redis at {url}: {exc}") from exc
        want = json.dumps(self.params.describe() | {"buckets": buckets}, sort_keys=True)
        self._redis.hsetnx(self.meta_key, "params", want)
        raw = self._redis.hget(self.meta_key, "params")
        have = raw.decode() if isinstance(raw, bytes) else raw
        if have is not None and have != want:
            raise IndexMismatchError(
                f"redis namespace {namespace!r} at {url} holds an index built with {have}, the "
                f"configuration asks for {want}; use the same parameters or another namespace"
            )
        self._check_and_add = self._redis.register_script(CHECK_AND_ADD)
        self._remove = self._redis.register_script(REMOVE)

    # -- keys ------------------------------------------------------------------------------------
    @staticmethod
    def doc_key(doc_id: str) -> bytes:
        return xxhash.xxh3_64_digest(doc_id.encode("utf-8", "surrogatepass"))

    def _doc_bucket(self, dk: bytes) -> str:
        return f"{self.prefix}d:{_bucket(dk, self.buckets)}"

    def _table_bucket(self, table: str, key: bytes) -> str:
        return f"{self.prefix}t:{table}:{_bucket(key, self.buckets)}"

    # -- the contract ------------------------------------------------------------------------------
    def check_and_add(self, doc_id: str, exact_key: int, band_keys: Sequence[int]) -> Verdict:
        return self.check_and_add_many([Entry(doc_id, exact_key, band_keys)])[0]

    def check_and_add_many(self, entries: Sequence[Entry]) -> list[Verdict]:
        """One script call per document, pipelined: each is atomic, and they run in order."""
        self._ensure_open()
        if not entries:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for e in entries:
            if e.band_keys and len(e.band_keys) != self.bands:
                raise ValueError(f"{e.doc_id}: {len(e.band_keys)} band keys, the index has {self.bands} bands")
            dk = self.doc_key(e.doc_id)
            ex = _b8(e.exact_key)
            bands = [_b8(k) for k in e.band_keys] if e.band_keys else [b""] * self.bands
            keys = [self._doc_bucket(dk), self._table_bucket("x", ex)]
            keys += [self._table_bucket(str(j), bk if bk else b"\0\0\0") for j, bk in enumerate(bands)]
            keys.append(self.meta_key)
            args: list[bytes | str | int] = [dk, e.doc_id.encode("utf-8", "surrogatepass"), ex, *bands]
            args += [self.buckets, self.prefix]
            self._check_and_add(keys=keys, args=args, client=pipe)
        try:
            replies = pipe.execute()
        except Exception as exc:
            raise DedupIndexError(f"redis check-and-add failed: {exc}") from exc
        return [self._verdict(r) for r in replies]

    @staticmethod
    def _verdict(reply: Sequence[Any]) -> Verdict:
        kind = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if kind == "new":
            return Unique()
        if kind == "self":
            return Unique(replayed=True)
        doc = reply[1].decode("utf-8", "surrogatepass") if isinstance(reply[1], bytes) else str(reply[1])
        return DuplicateOf(doc, "exact" if kind == "exact" else "near", int(reply[2]))

    def _record(self, dk: bytes) -> bytes | None:
        rec = self._redis.hget(self._doc_bucket(dk), dk)
        return bytes(rec) if rec is not None else None

    @staticmethod
    def _rec_doc(rec: bytes) -> str:
        return rec[17 + 8 * rec[0] :].decode("utf-8", "surrogatepass")

    @staticmethod
    def _rec_bands(rec: bytes) -> list[int]:
        return [int.from_bytes(rec[17 + 8 * j : 25 + 8 * j], "big") for j in range(rec[0])]

    def contains(self, doc_id: str) -> bool:
        self._ensure_open()
        rec = self._record(self.doc_key(doc_id))
        return rec is not None and self._rec_doc(rec) == doc_id

    def remove(self, doc_id: str) -> bool:
        self._ensure_open()
        dk = self.doc_key(doc_id)
        done = self._remove(
            keys=[self._doc_bucket(dk), self.meta_key],
            args=[dk, doc_id.encode("utf-8", "surrogatepass"), self.buckets, self.prefix],
        )
        return bool(done)

    def near(self, band_keys: Sequence[int]) -> list[str]:
        return [doc for doc, _ in self._near(band_keys, exclude=None)]

    def _near(self, band_keys: Sequence[int], exclude: bytes | None) -> list[tuple[str, int]]:
        self._ensure_open()
        if not band_keys:
            return []
        pipe = self._redis.pipeline(transaction=False)
        keys = [_b8(k) for k in band_keys]
        for j, k in enumerate(keys):
            pipe.hget(self._table_bucket(str(j), k), k)
        owners = [bytes(o) for o in pipe.execute() if o is not None]
        votes = Counter(o for o in owners if o != exclude)
        if not votes:
            return []
        pipe = self._redis.pipeline(transaction=False)
        order = list(votes)
        for o in order:
            pipe.hget(self._doc_bucket(o), o)
        found = []
        for o, rec in zip(order, pipe.execute(), strict=True):
            if rec is not None:
                rec = bytes(rec)
                found.append((self._rec_doc(rec), votes[o], int.from_bytes(rec[1:9], "big")))
        found.sort(key=lambda x: (-x[1], x[2]))
        return [(doc, v) for doc, v, _ in found]

    def near_doc(self, doc_id: str) -> list[str]:
        self._ensure_open()
        dk = self.doc_key(doc_id)
        rec = self._record(dk)
        if rec is None or self._rec_doc(rec) != doc_id:
            return []
        return [doc for doc, _ in self._near(self._rec_bands(rec), exclude=dk)]

    def checkpoint(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Records the offsets the index reflects; durability is the server's (appendonly, appendfsync)."""
        self._ensure_open()
        if offsets:
            self._redis.hset(
                self.offsets_key, mapping={f"{tp.topic}[{tp.partition}]": int(o) for tp, o in offsets.items()}
            )

    def memory_usage(self, sample: int = 0) -> int:
        """Bytes Redis reports for every key of the namespace (``MEMORY USAGE``, exact by default)."""
        total = 0
        for key in self._redis.scan_iter(match=f"{self.prefix}*", count=1000):
            total += int(self._redis.memory_usage(key, samples=sample) or 0)
        return total

    def stats(self) -> IndexStats:
        self._ensure_open()
        meta = {k.decode(): v.decode() for k, v in self._redis.hgetall(self.meta_key).items()}
        offsets = {k.decode(): int(v) for k, v in self._redis.hgetall(self.offsets_key).items()}
        info = self._redis.info("memory")
        return IndexStats(
            backend=self.backend,
            documents=int(meta.get("documents", 0)),
            removed=int(meta.get("removed", 0)),
            bytes_total=int(info.get("used_memory", 0)),
            bytes_memory=int(info.get("used_memory", 0)),
            offsets=offsets,
            details={
                "url": self.url,
                "namespace": self.namespace,
                "buckets": self.buckets,
                "params": meta.get("params"),
            },
        )

    def clear(self) -> int:
        """Delete every key of the namespace (tests and ``headrace dedup`` tooling)."""
        n = 0
        for key in self._redis.scan_iter(match=f"{self.prefix}*", count=1000):
            n += int(self._redis.delete(key))
        return n

    def _ensure_open(self) -> None:
        if self._closed:
            raise DedupIndexError("redis dedup index is closed")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._redis.close()

    def __enter__(self) -> RedisIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
