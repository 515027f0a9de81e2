"""SIGTERM handling in a real child process: a loop that drains exits 0 quickly; a loop stuck in C
code (GIL released, signal never seen by the main thread) is aborted at the deadline with status 4."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from headrace.ops.shutdown import EXIT_SHUTDOWN_DEADLINE

PRELUDE = """
import ctypes, logging, signal, sys, time
from headrace.ops.config import OpsConfig
from headrace.ops.shutdown import GracefulShutdown
logging.basicConfig(level=logging.WARNING)
cfg = OpsConfig(shutdown_grace_s=4.0, shutdown_margin_s=1.5)
"""


def start(body: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_draining_loop_exits_cleanly_before_the_deadline() -> None:
    proc = start("""
        with GracefulShutdown(cfg) as sd:
            print("ready", flush=True)
            while not sd.stop.is_set():
                time.sleep(0.05)          # a batch
            time.sleep(0.3)               # commit and close
        print(f"drained {sd.elapsed():.2f}", flush=True)
    """)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.startswith("drained")
    assert time.monotonic() - t0 < 2.5
    assert "has not drained" not in err


def test_a_loop_stuck_in_c_code_is_aborted_at_the_deadline() -> None:
    proc = start("""
        with GracefulShutdown(cfg) as sd:
            print("ready", flush=True)
            # The main thread never sees SIGTERM and never returns to Python: like a hung lxml parse.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            ctypes.CDLL(None).sleep(60)
        print("returned", flush=True)
    """)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - t0
    assert proc.returncode == EXIT_SHUTDOWN_DEADLINE, err
    assert "returned" not in out
    assert 2.0 <= elapsed < 4.0  # deadline = grace 4.0 - margin 1.5 = 2.5 s, well before SIGKILL
    assert "shutdown deadline of 2.5s passed" in err
    assert "most recent call first" in err  # every thread's stack was dumped for the post-mortem
