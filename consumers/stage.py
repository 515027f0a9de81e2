"""The ``Stage`` protocol every processing step implements.

``process_batch`` returns exactly one result per input, in order (datatrove's ``filter_batch`` rule), so
the runner always knows which input each output or drop belongs to and which offsets are done. Most
stages subclass :class:`DocumentStage` and implement ``process(doc)``; an exception on one document
becomes a ``Drop`` for that document only, never a crashed batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from consumers.stats import Stats
from streams.bus import TopicPartition
from streams.records import Document

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Drop:
    """A document (or page) the stage removes, with a machine-readable reason and the values
    that led to it (they go to the decision ledger)."""

    reason: str
    values: Mapping[str, float] = field(default_factory=dict)
    detail: str = ""
    duplicate_of: str = ""
    stage: str = ""


StageResult = Document | Drop


class StageBatchError(RuntimeError):
    """A stage broke its contract (wrong number of results)."""


@runtime_checkable
class Stage(Protocol):
    name: str

    def process_batch(self, docs: Sequence[Document]) -> list[StageResult]: ...

    def close(self) -> None: ...


@runtime_checkable
class Checkpointing(Protocol):
    """A stage with state (the dedup index): the group calls ``checkpoint`` after a batch is handled and
    before its offsets are committed, so the state is durable at the same cut as the offsets."""

    def checkpoint(self, offsets: Mapping[TopicPartition, int]) -> None: ...


class DocumentStage:
    """Base class for per-document stages."""

    name = "stage"

    def process(self, doc: Document) -> StageResult:
        raise NotImplementedError

    def process_batch(self, docs: Sequence[Document]) -> list[StageResult]:
        out: list[StageResult] = []
        for doc in docs:
            try:
                out.append(self.process(doc))
            except Exception as exc:
                log.warning("%s failed on %s (%s): %s", self.name, doc.doc_id, doc.url, exc)
                out.append(Drop(f"error:{type(exc).__name__}", detail=str(exc)[:500], stage=self.name))
        return out

    def close(self) -> None:
        """Release resources (worker processes, models)."""


def run_chain(stages: Sequence[Stage], docs: Sequence[Document], stats: Stats | None = None) -> list[StageResult]:
    """Run ``docs`` through ``stages``; survivors of each stage feed the next. One result per input.
    With ``stats``, each stage's time is added under its name (``stats.seconds[stage.name]``)."""
    results: list[StageResult] = list(docs)
    for stage in stages:
        alive = [i for i, r in enumerate(results) if isinstance(r, Document)]
        if not alive:
            break
        batch = [results[i] for i in alive]
        if stats is not None:
            with stats.timer(stage.name):
                out = stage.process_batch(batch)  # type: ignore[arg-type]
            stats.inc(f"{stage.name}/in", len(batch))
        else:
            out = stage.process_batch(batch)  # type: ignore[arg-type]
        if len(out) != len(batch):
            raise StageBatchError(f"stage {stage.name} returned {len(out)} results for {len(batch)} inputs")
        for i, r in zip(alive, out, strict=True):
            if isinstance(r, Drop) and not r.stage:
                r = Drop(r.reason, r.values, r.detail, r.duplicate_of, stage.name)
            results[i] = r
    return results
