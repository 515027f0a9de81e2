"""Where archives come from: local files, folders, globs, ``warc.paths`` manifests, http(s), s3.

Inputs expand to an ordered list of :class:`InputRef`; ``--shard i/n`` keeps every n-th entry of that
list starting at i, so n workers given the same arguments split the work without talking to each other.
Each input opens as a :class:`crawler.rawio.Source` that can be (re)opened at any byte offset: local
files seek, http(s) sends a ``Range`` request, s3 passes ``Range`` to GetObject. Nothing is downloaded
whole before reading starts.
"""

from __future__ import annotations

import glob
import gzip
import io
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from crawler.rawio import Source, SourceError
from crawler.replay_config import ReplayConfig

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".paths", ".paths.gz", ".paths.txt")
_ARCHIVE_NAME = re.compile(r"\.(w?arc)(\.gz)?$|\.warc\.|\.arc\.", re.I)
_MAX_MANIFEST_BYTES = 512 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class InputError(ValueError):
    """The inputs cannot be expanded (bad --shard, manifest needing a prefix, ...)."""


@dataclass(frozen=True, slots=True)
class InputRef:
    """One archive to read. ``name`` is its stable identity (lineage, checkpoints, dead letters)."""

    name: str
    error: str | None = None  # set when the input cannot be used at all (missing file, ...)

    @property
    def scheme(self) -> str:
        if self.name.startswith(("http://", "https://")):
            return "http"
        if self.name.startswith("s3://"):
            return "s3"
        return "file"


def is_manifest(name: str) -> bool:
    return name.lower().endswith(MANIFEST_SUFFIXES)


def _is_remote(name: str) -> bool:
    return name.startswith(("http://", "https://", "s3://"))


def parse_shard(spec: str) -> tuple[int, int]:
    """``"3/8"`` -> ``(3, 8)``; worker indexes start at 0 (a k8s Indexed Job's JOB_COMPLETION_INDEX)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec or "")
    if not m:
        raise InputError(f"--shard must look like I/N (e.g. 0/4), got {spec!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {spec}: need 0 <= I < N")
    return i, n


def select_shard(refs: Sequence[InputRef], index: int, count: int) -> list[InputRef]:
    """Entry k of the expanded list belongs to worker ``k % count`` (balanced and deterministic)."""
    return [r for k, r in enumerate(refs) if k % count == index]


def join_prefix(prefix: str, entry: str) -> str:
    if _is_remote(prefix):
        return prefix.rstrip("/") + "/" + entry.lstrip("/")
    return str(Path(prefix) / entry.lstrip("/"))


def expand_inputs(
    inputs: Iterable[str],
    config: ReplayConfig | None = None,
    from_paths: Iterable[str] = (),
) -> list[InputRef]:
    """Expand files, folders, globs, URLs and manifests into archive inputs, in a stable order."""
    config = config or ReplayConfig()
    out: list[InputRef] = []
    for name in inputs:
        if is_manifest(name):
            out.extend(read_manifest(name, config))
        elif _is_remote(name):
            out.append(InputRef(name))
        elif any(ch in name for ch in "*?["):
            matches = sorted(glob.glob(name, recursive=True))
            if not matches:
                out.append(InputRef(name, "the pattern matched nothing"))
            for m in matches:
                out.extend(read_manifest(m, config) if is_manifest(m) else [InputRef(m)])
        else:
            p = Path(name)
            if p.is_dir():
                files = sorted(
                    f for f in p.rglob("*") if f.is_file() and _ARCHIVE_NAME.search(f.name) and not is_manifest(f.name)
                )
                if not files:
                    out.append(InputRef(name, "no WARC/ARC files in this folder"))
                out.extend(InputRef(str(f)) for f in files)
            elif p.is_file():
                out.append(InputRef(name))
            else:
                out.append(InputRef(name, "no such file"))
    for manifest in from_paths:
        out.extend(read_manifest(manifest, config))
    return out


def read_manifest(name: str, config: ReplayConfig) -> list[InputRef]:
    """Entries of a ``warc.paths(.gz)`` manifest; relative ones are joined to ``config.prefix``."""
    try:
        src = open_source(InputRef(name), config)
        with src.open(0) as fh:
            blob = fh.read(_MAX_MANIFEST_BYTES + 1)
    except SourceError as exc:
        return [InputRef(name, f"cannot read manifest: {exc}")]
    if len(blob) > _MAX_MANIFEST_BYTES:
        return [InputRef(name, f"manifest larger than {_MAX_MANIFEST_BYTES} bytes")]
    if blob[:2] == b"\x1f\x8b":
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError) as exc:
            return [InputRef(name, f"corrupt gzip manifest: {exc}")]
    entries = [ln.strip() for ln in blob.decode("utf-8", "replace").splitlines()]
    entries = [e for e in entries if e and not e.startswith("#")]
    refs: list[InputRef] = []
    for entry in entries:
        if _is_remote(entry) or Path(entry).is_absolute():
            refs.append(InputRef(entry))
        elif config.prefix:
            refs.append(InputRef(join_prefix(config.prefix, entry)))
        else:
            raise InputError(
                f"{name} lists relative paths (e.g. {entry!r}): give --prefix (config replay.prefix), the "
                "base URL or local folder they are relative to"
            )
    if not refs:
        return [InputRef(name, "manifest lists no files")]
    return refs


# ------------------------------------------------------------------------------------------- sources
class LocalSource:
    def __init__(self, name: str) -> None:
        self.name = name
        self.path = Path(name)

    def open(self, offset: int) -> BinaryIO:
        try:
            fh = self.path.open("rb")
            if offset:
                fh.seek(offset)
        except OSError as exc:
            raise SourceError(f"cannot open {self.name}: {exc.strerror or exc}") from exc
        return fh

    def size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None


class HttpSource:
    """An archive on a web server, streamed; reopening sends ``Range: bytes=<offset>-``."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.name = url
        self.timeout = timeout
        self._size: int | None = None

    def open(self, offset: int) -> BinaryIO:
        req = urllib.request.Request(self.name, headers={"User-Agent": "headrace-replay"})  # noqa: S310
        if offset:
            req.add_header("Range", f"bytes={offset}-")
        try:
            resp = urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310 - http(s) only, checked by scheme
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:  # asked past the end
                return io.BytesIO(b"")
            raise SourceError(f"HTTP {exc.code} for {self.name}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SourceError(f"cannot fetch {self.name}: {exc}") from exc
        status = getattr(resp, "status", 200)
        content_range = _CONTENT_RANGE.match(resp.headers.get("Content-Range") or "")
        if content_range and content_range.group(3) != "*":
            self._size = int(content_range.group(3))
        elif resp.headers.get("Content-Length") and status == 200:
            self._size = int(resp.headers["Content-Length"])
        if offset and status != 206:
            # The server ignored Range: read up to the offset and drop it.
            left = offset
            while left:
                got = resp.read(min(left, 1 << 20))
                if not got:
                    break
                left -= len(got)
        return resp

    def size(self) -> int | None:
        return self._size


class S3Source:
    """An object in S3 (or an S3-compatible store: set AWS_ENDPOINT_URL); needs the ``s3`` extra."""

    def __init__(self, url: str, client: Any = None) -> None:
        m = re.fullmatch(r"s3://([^/]+)/(.+)", url)
        if not m:
            raise SourceError(f"not an s3://bucket/key URL: {url}")
        self.name = url
        self.bucket, self.key = m.group(1), m.group(2)
        self._client = client
        self._size: int | None = None

    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError as exc:
                raise SourceError("s3:// inputs need the s3 extra: pip install 'headrace[s3]'") from exc
            self._client = boto3.client("s3")
        return self._client

    def open(self, offset: int) -> BinaryIO:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        try:
            resp = self.client().get_object(**kwargs)
        except SourceError:
            raise
        except Exception as exc:  # botocore's ClientError and connection errors
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "InvalidRange" and offset:
                return io.BytesIO(b"")
            raise SourceError(f"cannot read {self.name}: {exc}") from exc
        content_range = _CONTENT_RANGE.match(resp.get("ContentRange") or "")
        if content_range and content_range.group(3) != "*":
            self._size = int(content_range.group(3))
        elif resp.get("ContentLength") is not None and not offset:
            self._size = int(resp["ContentLength"])
        body: BinaryIO = resp["Body"]
        return body

    def size(self) -> int | None:
        return self._size


def open_source(ref: InputRef, config: ReplayConfig | None = None, s3_client: Any = None) -> Source:
    config = config or ReplayConfig()
    if ref.scheme == "http":
        return HttpSource(ref.name, timeout=config.network_timeout_s)
    if ref.scheme == "s3":
        return S3Source(ref.name, s3_client)
    return LocalSource(ref.name)


def env_shard() -> str | None:
    """``I/N`` from a k8s Indexed Job: JOB_COMPLETION_INDEX plus HEADRACE_REPLAY_SHARDS."""
    index = os.environ.get("JOB_COMPLETION_INDEX")
    count = os.environ.get("HEADRACE_REPLAY_SHARDS")
    return f"{index}/{count}" if index is not None and count else None


class BytesSource:
    """An archive already in memory (tests, tools that receive archives over another channel)."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data

    def open(self, offset: int) -> BinaryIO:
        fh = io.BytesIO(self.data)
        fh.seek(offset)
        return fh

    def size(self) -> int | None:
        return len(self.data)
