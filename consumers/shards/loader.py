"""Training loader over sealed shards (numpy core; ``torch_loader`` wraps it for PyTorch).

How an epoch is laid out (all of it derived from the loader state, so every rank and every dataloader
worker computes the same thing on its own):

* **Shard set.** An epoch starts from the shards sealed when it begins (a *segment*). ``refresh()`` at
  a checkpoint boundary can append newly sealed shards as another segment; the state records every
  segment (shard id, data file prefix, token count) with the step it was added at.
* **Packing.** The token streams of the epoch's shards are concatenated (each document already ends
  with EOS); sample ``i`` is the window ``[i * seq_len, i * seq_len + seq_len + 1)``, so inputs and
  labels come from one row. The tail that does not fill a sample is left out.
* **Order.** The samples are permuted with a generator seeded by ``(seed, epoch, segment)``. When a
  segment is added at step ``k``, the samples already consumed keep their places and the rest, plus
  the new samples, are shuffled again.
* **Sharding.** Step ``s`` is one global batch of ``batch_size * world_size`` samples; rank ``r`` takes
  its ``batch_size`` consecutive rows of it. Dataloader worker ``w`` of ``W`` serves the steps
  ``start + w, start + w + W, ...``, so round-robin collection returns them in step order.
* **Resume.** ``state_dict()`` is ``{epoch, step, segments, ...}``: the same for every rank and worker.
  ``load_state_dict`` rebuilds the identical plan and the next batch is the one an uninterrupted run
  would have produced.

Shards that ``headrace shards merge`` folded into a bigger one stay addressable: the merged manifest
records where each source's tokens start, so a state saved before a merge resumes after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from consumers.shards.manifest import DocEntry, Manifest
from consumers.shards.reader import live_manifests, read_manifests

log = logging.getLogger(__name__)

STATE_FORMAT = "headrace-loader"
STATE_VERSION = 1


class LoaderError(ValueError):
    """The loader cannot build or restore a plan (bad config, changed shards, mixed tokenizers)."""


class ShardSetChangedError(LoaderError):
    """A shard recorded in the state is gone or its content changed (e.g. rewritten by a takedown)."""


class ShardRef(msgspec.Struct, frozen=True):
    """What the state records about one shard: enough to find the same tokens again."""

    id: str
    data_prefix: str
    tokens: int


class Segment(msgspec.Struct, frozen=True):
    at_step: int
    shards: tuple[ShardRef, ...]


@dataclass(frozen=True)
class LoaderConfig:
    seq_len: int = 2048
    batch_size: int = 8  # samples per rank per step
    seed: int = 0
    shuffle: bool = True
    rank: int = 0
    world_size: int = 1
    out_dtype: str = "int64"  # token dtype of the batches (int64 is what embedding layers index with)

    def check(self) -> None:
        if self.seq_len < 1 or self.batch_size < 1 or self.world_size < 1:
            raise LoaderError(f"seq_len, batch_size and world_size must be >= 1: {self}")
        if not 0 <= self.rank < self.world_size:
            raise LoaderError(f"rank {self.rank} is outside world_size {self.world_size}")


@dataclass(frozen=True)
class _Source:
    """Where a shard's tokens live: a file and the token offset of the shard inside it."""

    ref: ShardRef
    bin_path: Path
    dtype: str
    offset: int
    tokenizer_sha256: str
    manifest: Manifest


@dataclass(frozen=True)
class DocSpan:
    """The part of one document that a sample holds."""

    doc_id: str
    shard_id: str
    sample_start: int  # first token of the span inside the sample (0 .. seq_len)
    doc_start: int  # first token of the span inside the document
    length: int


@dataclass
class Batch:
    tokens: npt.NDArray[np.integer]  # (batch_size, seq_len + 1)
    sample_ids: npt.NDArray[np.int64]  # (batch_size,) sample numbers in the epoch's packing
    epoch: int
    step: int

    @property
    def input_ids(self) -> npt.NDArray[np.integer]:
        return self.tokens[:, :-1]

    @property
    def labels(self) -> npt.NDArray[np.integer]:
        return self.tokens[:, 1:]


class ShardCatalog:
    """The live shards of a directory, addressable by shard id, merged sources included."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.live: dict[str, Manifest] = {}
        self.sources: dict[str, _Source] = {}
        self.reload()

    def reload(self) -> None:
        self.live = {m.shard_id: m for m in live_manifests(read_manifests(self.directory))}
        self.sources = {}
        for m in self.live.values():
            path = self.directory / m.bin.name
            self.sources[m.shard_id] = _Source(
                ShardRef(m.shard_id, m.data_prefix, m.tokens), path, m.dtype, 0, m.tokenizer.sha256, m
            )
            for part in m.merged_from:
                ref = ShardRef(part.shard_id, part.data_prefix, part.tokens)
                self.sources.setdefault(
                    part.shard_id, _Source(ref, path, m.dtype, part.token_offset, m.tokenizer.sha256, m)
                )

    def snapshot(self) -> list[ShardRef]:
        """The live shards now, in shard-id order (the default shard set of a new epoch)."""
        return [self.sources[sid].ref for sid in sorted(self.live) if self.live[sid].tokens > 0]

    def resolve(self, ref: ShardRef) -> _Source:
        src = self.sources.get(ref.id)
        if src is None:
            self.reload()
            src = self.sources.get(ref.id)
        if src is None:
            raise ShardSetChangedError(f"shard {ref.id} recorded in the loader state is not in {self.directory}")
        if src.ref != ref:
            raise ShardSetChangedError(
                f"shard {ref.id} changed since the state was saved "
                f"({ref.data_prefix}/{ref.tokens} tokens -> {src.ref.data_prefix}/{src.ref.tokens})"
            )
        return src


@dataclass
class EpochPlan:
    """The packing and order of one epoch, rebuilt deterministically from its segments."""

    epoch: int
    segments: list[Segment]
    sources: list[_Source]
    cum_tokens: npt.NDArray[np.int64]  # len(sources) + 1 stream offsets
    order: npt.NDArray[np.int64]  # sample ids in the order they are served
    global_batch: int
    num_samples: int

    @property
    def num_steps(self) -> int:
        return len(self.order) // self.global_batch

    @property
    def total_tokens(self) -> int:
        return int(self.cum_tokens[-1])


def _rng(seed: int, epoch: int, segment: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, segment])))


def build_plan(config: LoaderConfig, epoch: int, segments: Sequence[Segment], catalog: ShardCatalog) -> EpochPlan:
    """Derive the epoch's packing and sample order from its segments (pure and deterministic)."""
    sources: list[_Source] = []
    tokenizer: str | None = None
    order = np.zeros(0, dtype=np.int64)
    n_prev = 0
    g = config.batch_size * config.world_size
    total = 0
    for k, seg in enumerate(segments):
        for ref in seg.shards:
            src = catalog.resolve(ref)
            if tokenizer is None:
                tokenizer = src.tokenizer_sha256
            elif src.tokenizer_sha256 != tokenizer:
                raise LoaderError(f"shard {ref.id} was written with a different tokenizer than the others")
            sources.append(src)
            total += ref.tokens
        n = max(0, (total - 1) // config.seq_len)
        new = np.arange(n_prev, n, dtype=np.int64)
        consumed = seg.at_step * g
        if consumed > len(order):
            raise LoaderError(f"segment added at step {seg.at_step}, after the end of epoch {epoch}")
        rest = np.concatenate([order[consumed:], new])
        if config.shuffle:
            rest = _rng(config.seed, epoch, k).permutation(rest)
        order = np.concatenate([order[:consumed], rest])
        n_prev = n
    cum = np.zeros(len(sources) + 1, dtype=np.int64)
    np.cumsum([s.ref.tokens for s in sources], out=cum[1:])
    return EpochPlan(epoch, list(segments), sources, cum, order, g, n_prev)


@dataclass
class _Maps:
    """Memory maps opened lazily in the process that reads (each dataloader worker has its own)."""

    maps: dict[Path, npt.NDArray[Any]] = field(default_factory=dict)

    def get(self, src: _Source) -> npt.NDArray[Any]:
        arr = self.maps.get(src.bin_path)
        if arr is None:
            # A plain ndarray view of the map: slicing np.memmap objects costs twice as much per sample.
            arr = np.asarray(np.memmap(src.bin_path, dtype=np.dtype(src.dtype), mode="r"))
            self.maps[src.bin_path] = arr
        return arr


ShardLister = Callable[[], list[ShardRef]]


class ShardLoader:
    """Deterministic, resumable batches of packed token samples from a shard directory.

    ``for batch in loader`` serves the rest of the current epoch, then moves the state to the next
    epoch; the next ``for`` starts it with the shards sealed by then. Several ranks must agree on the
    shard set of a new epoch: give them the same ``shard_lister`` result (the PyTorch adapter
    broadcasts rank 0's), or restore them all from one ``state_dict()``.
    """

    def __init__(
        self,
        directory: Path | str,
        config: LoaderConfig,
        shard_lister: ShardLister | None = None,
        catalog: ShardCatalog | None = None,
    ) -> None:
        config.check()
        self.directory = Path(directory)
        self.config = config
        self.catalog = catalog or ShardCatalog(self.directory)  # dataloader workers reuse the parent's
        self._lister = shard_lister
        self.epoch = 0
        self.step = 0
        self._segments: list[Segment] | None = None
        self._plan: EpochPlan | None = None
        self._maps = _Maps()
        self._plan_views: tuple[EpochPlan, list[npt.NDArray[Any]], list[int], list[int]] | None = None
        self._doc_starts: dict[str, npt.NDArray[np.int64]] = {}

    # -- plan and state ----------------------------------------------------------------------------
    def list_shards(self) -> list[ShardRef]:
        if self._lister is not None:
            return list(self._lister())
        self.catalog.reload()
        return self.catalog.snapshot()

    @property
    def plan(self) -> EpochPlan:
        if self._plan is None:
            if self._segments is None:
                self._segments = [Segment(0, tuple(self.list_shards()))]
            self._plan = build_plan(self.config, self.epoch, self._segments, self.catalog)
            if self._plan.num_steps == 0:
                log.warning("epoch %d has no full batch (%d tokens)", self.epoch, self._plan.total_tokens)
        return self._plan

    def refresh(self, shards: Sequence[ShardRef] | None = None) -> int:
        """Add shards sealed since the epoch's plan was made, at the current step (call it at a
        checkpoint boundary, on every rank with the same list). Returns how many were added."""
        plan = self.plan
        known = {ref.id for seg in plan.segments for ref in seg.shards}
        merged_into = {src.ref.id for src in plan.sources}
        candidates = list(shards) if shards is not None else self.list_shards()
        new = []
        for ref in candidates:
            if ref.id in known or ref.id in merged_into:
                continue
            src = self.catalog.resolve(ref)
            # A merged shard that contains shards already in the plan would double their tokens.
            if any(part.shard_id in known for part in src.manifest.merged_from):
                continue
            new.append(ref)
        if not new or self.step >= plan.num_steps:
            return 0
        self._segments = [*plan.segments, Segment(self.step, tuple(new))]
        self._plan = None
        log.info("epoch %d step %d: %d new shards added", self.epoch, self.step, len(new))
        return len(new)

    def state_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able). It always records the shard set of the current epoch, so ranks
        restored from one state agree on it even at an epoch boundary."""
        plan = self.plan
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "epoch": self.epoch,
            "step": self.step,
            "seed": self.config.seed,
            "seq_len": self.config.seq_len,
            "batch_size": self.config.batch_size,
            "world_size": self.config.world_size,
            "shuffle": self.config.shuffle,
            "segments": msgspec.to_builtins(plan.segments),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise LoaderError(f"not a {STATE_FORMAT} v{STATE_VERSION} state: {state.get('format')}")
        cfg = self.config
        for key in ("seed", "seq_len", "batch_size", "world_size", "shuffle"):
            if state[key] != getattr(cfg, key):
                raise LoaderError(f"state was saved with {key}={state[key]!r}, loader has {getattr(cfg, key)!r}")
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        segs = state.get("segments")
        self._segments = msgspec.convert(segs, list[Segment]) if segs is not None else None
        self._plan = None
        if self._segments is not None and self.step > self.plan.num_steps:
            raise LoaderError(f"state step {self.step} is past the end of epoch {self.epoch}")

    def _next_epoch(self) -> None:
        self.epoch += 1
        self.step = 0
        self._segments = None
        self._plan = None
        self._doc_starts.clear()

    # -- reading -----------------------------------------------------------------------------------
    def batch_at(self, step: int, plan: EpochPlan | None = None, out: npt.NDArray[np.integer] | None = None) -> Batch:
        """Rank ``config.rank``'s batch of ``step``; ``out`` (batch_size, seq_len + 1) is filled if given
        (the PyTorch adapter passes shared memory so the batch crosses to the main process uncopied)."""
        plan = plan or self.plan
        cfg = self.config
        lo = step * plan.global_batch + cfg.rank * cfg.batch_size
        ids = plan.order[lo : lo + cfg.batch_size]
        if out is None:
            out = np.empty((len(ids), cfg.seq_len + 1), dtype=np.dtype(cfg.out_dtype))
        self.read_samples(ids, out, plan)
        return Batch(out, ids, plan.epoch, step)

    def _views(self, plan: EpochPlan) -> tuple[list[npt.NDArray[Any]], list[int], list[int]]:
        """Per plan source: the mapped token array shifted so that stream offset ``a`` is ``arr[a]``
        (as a start offset ``base``), plus the stream offsets as Python ints: the per-row loop below
        then touches no numpy scalars and no dict keyed by paths."""
        cached = self._plan_views
        if cached is not None and cached[0] is plan:
            return cached[1], cached[2], cached[3]
        cum = plan.cum_tokens.tolist()
        arrays = [self._maps.get(src) for src in plan.sources]
        bases = [src.offset - cum[i] for i, src in enumerate(plan.sources)]
        self._plan_views = (plan, arrays, bases, cum)
        return arrays, bases, cum

    def read_samples(self, ids: npt.NDArray[np.int64], out: npt.NDArray[np.integer], plan: EpochPlan) -> None:
        width = self.config.seq_len + 1
        starts = ids * self.config.seq_len
        which = np.searchsorted(plan.cum_tokens, starts, side="right") - 1
        arrays, bases, cum = self._views(plan)
        for row, (a, i) in enumerate(zip(starts.tolist(), which.tolist(), strict=True)):
            b = a + width
            if b <= cum[i + 1]:  # the common case: the sample lies in one shard
                base = bases[i]
                out[row] = arrays[i][base + a : base + b]
                continue
            pos = 0
            while pos < width:
                base = bases[i]
                take = min(b, cum[i + 1]) - (a + pos)
                out[row, pos : pos + take] = arrays[i][base + a + pos : base + a + pos + take]
                pos += take
                i += 1

    def iter_steps(self, start: int, worker_id: int = 0, num_workers: int = 1) -> Iterator[Batch]:
        """Batches of steps ``start + worker_id, start + worker_id + num_workers, ...`` of the current
        plan, without touching the state (dataloader workers use this)."""
        plan = self.plan
        for step in range(start + worker_id, plan.num_steps, num_workers):
            yield self.batch_at(step, plan)

    def __iter__(self) -> Iterator[Batch]:
        """The rest of the current epoch; the state advances as batches are handed out."""
        while self.step < self.plan.num_steps:
            batch = self.batch_at(self.step)
            self.step += 1
            yield batch
        self._next_epoch()

    # -- provenance --------------------------------------------------------------------------------
    def sample_docs(self, sample_id: int) -> list[DocSpan]:
        """Which documents (and which of their tokens) sample ``sample_id`` of the current epoch holds."""
        plan = self.plan
        if not 0 <= sample_id < plan.num_samples:
            raise IndexError(f"sample {sample_id} outside 0..{plan.num_samples - 1}")
        width = self.config.seq_len + 1
        a = sample_id * self.config.seq_len
        b = a + width
        i = int(np.searchsorted(plan.cum_tokens, a, side="right")) - 1
        spans: list[DocSpan] = []
        while a < b and i < len(plan.sources):
            src = plan.sources[i]
            shard_lo = int(plan.cum_tokens[i])
            local_a, local_b = a - shard_lo, min(b, int(plan.cum_tokens[i + 1])) - shard_lo
            docs, starts = self._docs_of(src)
            j = int(np.searchsorted(starts, local_a, side="right")) - 1
            while j < len(docs) and starts[j] < local_b:
                d = docs[j]
                lo, hi = max(local_a, int(starts[j])), min(local_b, int(starts[j]) + d.length)
                spans.append(
                    DocSpan(
                        d.doc_id,
                        src.ref.id,
                        lo + shard_lo - sample_id * self.config.seq_len,
                        lo - int(starts[j]),
                        hi - lo,
                    )
                )
                j += 1
            a = int(plan.cum_tokens[i + 1])
            i += 1
        return spans

    def _docs_of(self, src: _Source) -> tuple[Sequence[DocEntry], npt.NDArray[np.int64]]:
        """Documents of one (possibly merged-away) shard with starts relative to that shard."""
        m = src.manifest
        lo, hi = src.offset, src.offset + src.ref.tokens
        all_starts = self._doc_starts.get(m.shard_id)
        if all_starts is None:
            all_starts = np.fromiter((d.start for d in m.docs), dtype=np.int64, count=len(m.docs))
            self._doc_starts[m.shard_id] = all_starts
        first = int(np.searchsorted(all_starts, lo, side="left"))
        last = int(np.searchsorted(all_starts, hi, side="left"))
        return m.docs[first:last], all_starts[first:last] - lo
