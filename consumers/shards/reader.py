"""Reading sealed shards: listing, decoding, verifying.

Only manifests make shards visible; files without a manifest are ignored.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from consumers.shards.manifest import (
    MANIFEST_SUFFIX,
    DocEntry,
    Manifest,
    ManifestError,
    read_manifest,
    sha256_file,
)
from consumers.shards.mmidx import IndexFormatError, read_index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    directory: Path
    manifest: Manifest

    @property
    def bin_path(self) -> Path:
        return self.directory / self.manifest.bin.name

    @property
    def idx_path(self) -> Path:
        return self.directory / self.manifest.idx.name

    def tokens(self) -> npt.NDArray[np.integer]:
        """The whole token stream, memory-mapped (zero-copy)."""
        if self.manifest.tokens == 0:
            return np.zeros(0, dtype=np.dtype(self.manifest.dtype))
        return np.memmap(self.bin_path, dtype=np.dtype(self.manifest.dtype), mode="r")

    def doc_tokens(self, entry: DocEntry) -> npt.NDArray[np.integer]:
        return self.tokens()[entry.start : entry.start + entry.length]


def read_manifests(directory: Path) -> list[Manifest]:
    """Every readable manifest in ``directory`` (tombstones and merged-away shards included)."""
    manifests: list[Manifest] = []
    if not directory.is_dir():
        return manifests
    for mpath in sorted(directory.glob(f"*{MANIFEST_SUFFIX}")):
        try:
            manifests.append(read_manifest(mpath))
        except ManifestError as exc:
            log.error("skipping unreadable manifest: %s", exc)
    return manifests


def live_manifests(manifests: list[Manifest]) -> list[Manifest]:
    """The manifests a reader must use: not tombstones, and not folded into a live merged shard.

    The merged manifest is published (one atomic link) before its sources are retired, and from that
    moment it hides them: a reader sees either the sources or the merged shard, never both or neither.
    """
    hidden = {part.shard_id for m in manifests if not m.retired_by for part in m.merged_from}
    return [m for m in manifests if not m.retired_by and m.shard_id not in hidden]


def list_shards(directory: Path) -> list[Shard]:
    """Sealed, live shards in ``directory``, sorted by shard id (deterministic order for loaders)."""
    return [Shard(directory, m) for m in live_manifests(read_manifests(directory))]


def iter_documents(directory: Path) -> Iterator[tuple[Shard, DocEntry, npt.NDArray[np.integer]]]:
    for shard in list_shards(directory):
        toks = shard.tokens()
        for entry in shard.manifest.docs:
            yield shard, entry, toks[entry.start : entry.start + entry.length]


@dataclass
class VerifyReport:
    shards: int = 0
    documents: int = 0
    tokens: int = 0
    problems: list[str] = field(default_factory=list)
    duplicate_doc_ids: list[str] = field(default_factory=list)
    retired: int = 0  # tombstones of merged-away shards
    pending_retirements: list[str] = field(default_factory=list)  # hidden sources not yet tombstoned
    unsealed_files: int = 0  # temp files and data files no manifest references (invisible)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.duplicate_doc_ids


def verify_shards(directory: Path, check_hashes: bool = True) -> VerifyReport:
    """Check every sealed shard: file hashes and sizes, idx <-> bin <-> manifest agreement, EOS
    placement, and that no doc_id appears twice across the corpus."""
    report = VerifyReport()
    seen: dict[str, str] = {}
    manifests = read_manifests(directory)
    live = live_manifests(manifests)
    live_ids = {m.shard_id for m in live}
    covered = {part.shard_id for m in live for part in m.merged_from}
    referenced: set[str] = set()
    for m in manifests:
        referenced.update((m.bin.name, m.idx.name))
        if m.retired_by:
            report.retired += 1
            if m.shard_id not in covered:
                report.problems.append(f"{m.shard_id}: retired by {m.retired_by}, but no live shard holds it")
        elif m.shard_id not in live_ids:
            report.pending_retirements.append(m.shard_id)
    if directory.is_dir():
        report.unsealed_files = sum(
            1
            for p in directory.iterdir()
            if (p.name.startswith(".") and p.name.endswith(".tmp"))
            or (p.name.endswith((".bin", ".idx")) and p.name not in referenced)
        )
    for m in live:
        shard = Shard(directory, m)
        report.shards += 1
        report.documents += m.documents
        report.tokens += m.tokens
        for info, path in ((m.bin, shard.bin_path), (m.idx, shard.idx_path)):
            if not path.is_file():
                report.problems.append(f"{m.shard_id}: missing {path.name}")
                continue
            if path.stat().st_size != info.bytes:
                size = path.stat().st_size
                report.problems.append(f"{m.shard_id}: {path.name} has {size} bytes, manifest says {info.bytes}")
            elif check_hashes and sha256_file(path) != info.sha256:
                report.problems.append(f"{m.shard_id}: {path.name} sha256 mismatch")
        if any(p.startswith(m.shard_id) for p in report.problems):
            continue
        try:
            index = read_index(shard.idx_path)
        except IndexFormatError as exc:
            report.problems.append(f"{m.shard_id}: {exc}")
            continue
        if np.dtype(index.dtype).name != m.dtype:
            report.problems.append(f"{m.shard_id}: idx dtype {np.dtype(index.dtype).name} != manifest {m.dtype}")
        if index.num_sequences != m.documents or len(m.docs) != m.documents:
            n = index.num_sequences
            report.problems.append(f"{m.shard_id}: idx has {n} sequences, manifest {m.documents} docs")
            continue
        sizes = [d.length for d in m.docs]
        if list(map(int, index.sizes)) != sizes or int(np.sum(index.sizes, dtype=np.int64)) != m.tokens:
            report.problems.append(f"{m.shard_id}: idx sequence lengths disagree with manifest")
        itemsize = np.dtype(m.dtype).itemsize
        if m.bin.bytes != m.tokens * itemsize:
            report.problems.append(f"{m.shard_id}: bin holds {m.bin.bytes // itemsize} tokens, manifest {m.tokens}")
            continue
        starts = np.cumsum([0, *sizes[:-1]]).tolist() if sizes else []
        if [d.start for d in m.docs] != starts:
            report.problems.append(f"{m.shard_id}: document token starts are not contiguous")
        _verify_merged(shard, check_hashes, report)
        toks = shard.tokens()
        for d in m.docs:
            if d.length == 0 or int(toks[d.start + d.length - 1]) != m.tokenizer.eos_id:
                report.problems.append(f"{m.shard_id}: document {d.doc_id} does not end with EOS")
                break
        for d in m.docs:
            if d.doc_id in seen:
                report.duplicate_doc_ids.append(d.doc_id)
            seen[d.doc_id] = m.shard_id
    return report


def _verify_merged(shard: Shard, check_hashes: bool, report: VerifyReport) -> None:
    """A merged shard's parts must tile its tokens and documents, and (with hashes) each part's bytes
    must still hash to the source shard's recorded sha256."""
    m = shard.manifest
    if not m.merged_from:
        return
    direct = [
        p
        for p in m.merged_from
        if not any(
            q is not p and q.token_offset <= p.token_offset < q.token_offset + q.tokens and q.tokens > p.tokens
            for q in m.merged_from
        )
    ]
    direct.sort(key=lambda p: p.token_offset)
    tok = doc = 0
    for p in direct:
        if p.token_offset != tok or p.doc_offset != doc:
            report.problems.append(f"{m.shard_id}: merged part {p.shard_id} does not start where the previous ends")
            return
        tok, doc = tok + p.tokens, doc + p.documents
    if tok != m.tokens or doc != m.documents:
        report.problems.append(
            f"{m.shard_id}: merged parts cover {tok} tokens / {doc} docs of {m.tokens} / {m.documents}"
        )
        return
    if check_hashes:
        toks = shard.tokens()
        for p in m.merged_from:
            digest = hashlib.sha256(toks[p.token_offset : p.token_offset + p.tokens].tobytes()).hexdigest()
            if digest != p.bin_sha256:
                report.problems.append(f"{m.shard_id}: bytes of merged part {p.shard_id} do not match its sha256")


def corpus_fingerprint(directory: Path) -> str:
    """Hash of every live shard's manifest-declared content (ids and file hashes)."""
    h = hashlib.sha256()
    for shard in list_shards(directory):
        m = shard.manifest
        h.update(f"{m.shard_id}:{m.bin.sha256}:{m.idx.sha256}\n".encode())
    return h.hexdigest()
