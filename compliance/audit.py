"""Append-only, hash-chained audit log (JSONL).

Each line is one JSON object with ``seq``, ``at``, ``prev`` (the previous line's ``hash``) and ``hash`` =
sha256 over the canonical JSON of every other field plus ``prev``. Changing, removing, inserting or
reordering any line breaks the chain from that line on, which :func:`verify_chain` reports with the line
number. Appends take an exclusive ``flock`` so concurrent writers cannot interleave or fork the chain.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GENESIS = "0" * 64


class AuditError(RuntimeError):
    """The audit log cannot be written or read."""


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    lines: int
    first_bad_line: int | None = None  # 1-based
    reason: str = ""
    head: str = GENESIS  # hash of the last good line


def _canonical(entry: Mapping[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``record`` (any JSON-serialisable fields) and return the stored entry."""
        reserved = {"seq", "prev", "hash"} & set(record)
        if reserved:
            raise AuditError(f"fields {sorted(reserved)} are set by the log itself")
        with self.path.open("a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                fh.seek(0)
                last = None
                for last in _iter_lines(fh):  # noqa: B007 - we need the final line
                    pass
                prev, seq = GENESIS, 0
                if last is not None:
                    prev_entry = _parse(last, 0)
                    prev, seq = str(prev_entry["hash"]), int(prev_entry["seq"])
                entry: dict[str, Any] = {"seq": seq + 1, "at": record.get("at") or _now(), **record, "prev": prev}
                entry["hash"] = entry_hash(entry)
                fh.seek(0, os.SEEK_END)
                fh.write(_canonical(entry) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for n, line in enumerate(_iter_lines(fh), start=1):
                yield _parse(line, n)

    def find(self, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries() if all(e.get(k) == v for k, v in fields.items())]

    def verify(self) -> ChainReport:
        return verify_chain(self.path)


def _iter_lines(fh: Any) -> Iterator[bytes]:
    for raw in fh:
        line = raw.rstrip(b"\n")
        if line:
            yield line


def _parse(line: bytes, n: int) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AuditError(f"line {n}: not JSON ({exc})") from exc
    if not isinstance(entry, dict):
        raise AuditError(f"line {n}: not a JSON object")
    return entry


def verify_chain(path: Path) -> ChainReport:
    """Recompute every hash and link; report the first line that does not check out."""
    if not path.exists():
        return ChainReport(ok=True, lines=0)
    prev = GENESIS
    n = 0
    with path.open("rb") as fh:
        for n, line in enumerate(_iter_lines(fh), start=1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                return ChainReport(False, n, n, "line is not valid JSON", prev)
            if not isinstance(entry, dict):
                return ChainReport(False, n, n, "line is not a JSON object", prev)
            if entry.get("seq") != n:
                return ChainReport(False, n, n, f"sequence number {entry.get('seq')} where {n} was expected", prev)
            if entry.get("prev") != prev:
                return ChainReport(False, n, n, "link to the previous line is broken (line removed or reordered)", prev)
            if entry.get("hash") != entry_hash(entry):
                return ChainReport(False, n, n, "content does not match its hash (line altered)", prev)
            prev = str(entry["hash"])
    return ChainReport(True, n, None, "", prev)
