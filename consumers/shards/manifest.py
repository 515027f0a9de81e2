"""Shard manifests: the source of truth for what is sealed.

A shard exists for readers only once its ``<shard_id>.manifest.json`` exists. The manifest is written
last, to a temp file that is fsynced and then *linked* to its final name; ``link`` fails if the name
exists, so two writers (say a zombie and its replacement) can never both seal the shard that starts at
the same source offset (create-only, like Kafka Connect's conditional writes).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path

import msgspec

from streams.records import Lineage, Signal

FORMAT = "headrace-shard"
FORMAT_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"


class ManifestError(ValueError):
    """A manifest that cannot be read or does not match its files."""


class ShardExistsError(FileExistsError):
    """Another writer already sealed a shard with this id (we are a zombie, or a replay)."""


class FileInfo(msgspec.Struct, frozen=True):
    name: str
    bytes: int
    sha256: str


class TokenizerRef(msgspec.Struct, frozen=True):
    name: str
    sha256: str
    vocab_size: int
    eos_id: int


class SourceRange(msgspec.Struct, frozen=True):
    """Source offsets ``[start, end)`` of one topic-partition that this shard covers."""

    source: str  # topic plus bus identity, e.g. "docs.unique@3fa2c1d0"
    partition: int
    start: int
    end: int


class DocEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    doc_id: str
    url: str
    content_hash: str
    start: int  # index of the document's first token in the shard's token stream
    length: int  # tokens including the appended EOS
    language: str = ""
    lineage: Lineage | None = None
    signals: tuple[Signal, ...] = ()
    fetched_at: str = ""
    pii: dict[str, int] = msgspec.field(default_factory=dict)
    page_id: str = ""  # the page the text came from (tells re-deliveries from second captures)
    language_score: float = 0.0
    annotations: dict[str, float] = msgspec.field(default_factory=dict)  # quality measurements (scorecard)


class MergedPart(msgspec.Struct, frozen=True):
    """One source shard folded into a merged shard: where its tokens and documents now start."""

    shard_id: str
    data_prefix: str
    token_offset: int  # first token of the source inside the merged shard's token stream
    tokens: int
    doc_offset: int  # index of the source's first document in the merged manifest's ``docs``
    documents: int
    bin_sha256: str  # sha256 of the source's .bin: the merged bytes [token_offset, +tokens) hash to it


class Manifest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    shard_id: str
    version: int = 1  # takedown rewrites publish version + 1 and retire the old files
    data_prefix: str  # the .bin/.idx files are <data_prefix>.bin / <data_prefix>.idx
    dtype: str  # "uint16" | "int32"
    tokenizer: TokenizerRef
    documents: int
    tokens: int
    bin: FileInfo
    idx: FileInfo
    sources: tuple[SourceRange, ...] = ()
    docs: tuple[DocEntry, ...] = ()
    created_at: str = ""
    pipeline: str = ""
    supersedes: str = ""  # data_prefix of the version this one replaced
    takedown: tuple[str, ...] = ()  # request ids that produced this version
    merged_from: tuple[MergedPart, ...] = ()  # `headrace shards merge`: the shards this one replaces
    retired_by: str = ""  # tombstone: this shard's documents now live in that shard; readers skip it


_decoder = msgspec.json.Decoder(Manifest)
_encoder = msgspec.json.Encoder()


def manifest_path(directory: Path, shard_id: str) -> Path:
    return directory / f"{shard_id}{MANIFEST_SUFFIX}"


def read_manifest(path: Path) -> Manifest:
    try:
        manifest = _decoder.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    if manifest.format != FORMAT or manifest.format_version != FORMAT_VERSION:
        raise ManifestError(f"{path}: format {manifest.format} v{manifest.format_version} not supported")
    return manifest


def encode_manifest(manifest: Manifest) -> bytes:
    return msgspec.json.format(_encoder.encode(manifest), indent=1)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def publish_manifest(directory: Path, manifest: Manifest, *, replace: bool = False) -> Path:
    """Write the manifest last and atomically. ``replace=False`` is create-only."""
    final = manifest_path(directory, manifest.shard_id)
    tmp = directory / f".{manifest.shard_id}.{uuid.uuid4().hex}.manifest.tmp"
    write_bytes_durably(tmp, encode_manifest(manifest))
    try:
        if replace:
            tmp.replace(final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError as exc:
                raise ShardExistsError(f"shard {manifest.shard_id} is already sealed") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(directory)
    return final


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
