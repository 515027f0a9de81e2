"""Runs the real ``headrace`` CLI with a fault injected into extraction (tests only).

Why a wrapper and not a switch in the product: fault injection that ships can be switched on by
accident (a stray environment variable in a pod spec). This file lives in ``tests/``, is not part of
the wheel or the image, and patches the process from the outside, so production code has no hang hook.

Environment (read here only):
- ``FAULT_HANG_FILE``: while this file exists, every extraction call blocks. It ignores the stop event
  like a hung lxml parse would, so only the shutdown deadline can end the process.
- ``FAULT_BATCH_DELAY_S``: extra seconds per extraction call (makes "SIGTERM mid-batch" easy to hit).
- ``FAULT_MARK_FILE``: a line ``start <monotonic>`` / ``hang <monotonic>`` / ``end <monotonic>`` is
  appended per call, so the test can tell when a batch is in flight.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from consumers import extract
from headrace.cli import main
from streams.records import Page

_original = extract.Extractor.extract_batch
HANG = os.environ.get("FAULT_HANG_FILE")
DELAY = float(os.environ.get("FAULT_BATCH_DELAY_S", "0"))
MARK = os.environ.get("FAULT_MARK_FILE")


def _mark(event: str) -> None:
    if MARK:
        with Path(MARK).open("a") as fh:
            fh.write(f"{event} {time.monotonic():.3f} {time.time():.3f}\n")


def extract_batch(self: extract.Extractor, pages: Sequence[Page]) -> list:
    _mark("start")
    if HANG and Path(HANG).exists():
        _mark("hang")
        while Path(HANG).exists():
            time.sleep(0.05)
    if DELAY:
        time.sleep(DELAY)
    out = _original(self, pages)
    _mark("end")
    return out


extract.Extractor.extract_batch = extract_batch  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = ["headrace", *sys.argv[1:]]
    main()
