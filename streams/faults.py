"""Test-only fault points: kill this process at a named moment of the commit protocol.

Crash tests need to kill a consumer at moments a random ``SIGKILL`` rarely hits, such as right after a
shard's manifest is published and before the group commit. Code calls ``fault_point("name")`` at
those moments; nothing happens unless the environment arms that point:

``HEADRACE_FAULT_POINT=shards.after-seal:3`` makes the 3rd hit of ``shards.after-seal`` print a line
to stderr and ``SIGKILL`` the process (no ``finally`` blocks, no flushes: a real crash). Points are
armed one at a time; an unset variable costs one dictionary lookup per call. Never set it in
production: it exists for the crash tests.

Known points: ``shards.before-manifest`` (data files renamed, manifest not yet published),
``shards.after-seal`` (manifest published, offsets not committed), ``channel.before-commit``
(a stage group's outputs sent, transaction not committed), ``takedown.after-rewrite`` (one shard of a
takedown rewritten, the others not yet).
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "HEADRACE_FAULT_POINT"
POINTS = (
    "shards.before-manifest",
    "shards.after-seal",
    "channel.before-commit",
    "takedown.after-rewrite",
)


class FaultConfigError(ValueError):
    """``HEADRACE_FAULT_POINT`` names no known point or has a bad count."""


def _parse(raw: str) -> tuple[str, int]:
    name, _, count = raw.partition(":")
    if name not in POINTS:
        raise FaultConfigError(f"{ENV}={raw!r}: unknown point {name!r} (known: {', '.join(POINTS)})")
    try:
        n = int(count or "1")
    except ValueError as exc:
        raise FaultConfigError(f"{ENV}={raw!r}: count must be an integer") from exc
    if n < 1:
        raise FaultConfigError(f"{ENV}={raw!r}: count must be >= 1")
    return name, n


_armed: tuple[str, int] | None = None
_hits = 0
_loaded = False


def _load() -> None:
    global _armed, _loaded
    raw = os.environ.get(ENV, "").strip()
    _armed = _parse(raw) if raw else None
    _loaded = True


def fault_point(name: str) -> None:
    """Die here with SIGKILL if the environment armed this point and its count is reached."""
    global _hits
    if not _loaded:
        _load()
    if _armed is None or _armed[0] != name:
        return
    _hits += 1
    if _hits >= _armed[1]:
        sys.stderr.write(f"FAULT-POINT {name} hit {_hits}: SIGKILL pid {os.getpid()}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def reset() -> None:
    """Forget the parsed environment (unit tests)."""
    global _armed, _hits, _loaded
    _armed, _hits, _loaded = None, 0, False
