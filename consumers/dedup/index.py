"""The ``DedupIndex`` contract (DESIGN.md §4) shared by the embedded and the Redis backend.

Semantics every backend must give (``tests/test_consumers/test_dedup/test_index_contract.py`` runs the
same suite on both):

* ``check_and_add`` looks the document up and, only if it is new, adds it, atomically. The first
  document to claim a key keeps it ("first writer wins"); a later document sharing the exact key is an
  exact duplicate of that owner, one sharing any band key a near duplicate of it.
* A document is never a duplicate of itself: if ``doc_id`` is already in the index the verdict is
  ``Unique(replayed=True)`` and nothing changes. A batch re-delivered after a crash therefore gets the
  verdicts it got the first time, whatever the index saw in between.
* Only unique documents are added; duplicates are answered and forgotten (the decision ledger keeps
  them with the doc_id they duplicate).
* ``remove(doc_id)`` forgets every key of the document, so a later copy is admitted again.
* ``near(band_keys)`` returns the indexed documents sharing at least one band key (their
  near-duplicates, by the LSH rule); ``near_doc(doc_id)`` does the same for an indexed document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from streams.bus import TopicPartition

DuplicateKind = Literal["exact", "near"]


@dataclass(frozen=True, slots=True)
class Unique:
    """The document is new and was added (or was already in the index: ``replayed``)."""

    replayed: bool = False


@dataclass(frozen=True, slots=True)
class DuplicateOf:
    """The document duplicates ``doc_id``, which the index keeps."""

    doc_id: str
    kind: DuplicateKind
    bands_matched: int = 0  # band keys shared with the kept document (all of them for exact copies)


Verdict = Unique | DuplicateOf


class Entry(NamedTuple):
    """What the index stores about one document."""

    doc_id: str
    exact_key: int  # unsigned 64-bit
    band_keys: Sequence[int]  # unsigned 64-bit, one per band (empty: the document has no words)


@dataclass(frozen=True)
class IndexStats:
    backend: str
    documents: int  # live documents
    removed: int = 0
    bytes_total: int = 0  # memory (Redis) or disk (embedded) the index occupies
    bytes_memory: int = 0  # resident memory of the lookup structures
    offsets: dict[str, int] = field(default_factory=dict)  # "topic[partition]" -> next offset reflected
    details: dict[str, object] = field(default_factory=dict)


class DedupIndexError(RuntimeError):
    """Base class of dedup index failures."""


class CorruptIndexError(DedupIndexError):
    """A state file failed its checksum or is truncated; the index refuses to open it."""


class IndexMismatchError(DedupIndexError):
    """The index was built with other MinHash parameters than the configuration asks for."""


class IndexLockedError(DedupIndexError):
    """Another process has the embedded index open."""


@runtime_checkable
class DedupIndex(Protocol):
    backend: str

    def check_and_add(self, doc_id: str, exact_key: int, band_keys: Sequence[int]) -> Verdict: ...

    def check_and_add_many(self, entries: Sequence[Entry]) -> list[Verdict]:
        """Same as calling ``check_and_add`` for each entry in order (later entries see earlier ones)."""
        ...

    def contains(self, doc_id: str) -> bool: ...

    def remove(self, doc_id: str) -> bool:
        """Forget the document and all its keys; False if it was not indexed."""
        ...

    def near(self, band_keys: Sequence[int]) -> list[str]:
        """doc_ids of indexed documents that share at least one band key, most shared bands first."""
        ...

    def near_doc(self, doc_id: str) -> list[str]:
        """``near`` of an indexed document's own band keys, without the document itself."""
        ...

    def checkpoint(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Make everything added so far durable, recording the input offsets (``last + 1``) it reflects."""
        ...

    def stats(self) -> IndexStats: ...

    def close(self) -> None: ...
