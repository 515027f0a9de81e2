"""Graceful shutdown with a hard deadline.

SIGTERM (or SIGINT) sets a stop event: the poll loop finishes the batch in hand (or releases one it has
not started), commits, and the consumer leaves the group. If that has not happened ``grace - margin``
seconds after the signal (a stage is stuck), the process dumps every thread's stack and exits with
:data:`EXIT_SHUTDOWN_DEADLINE` before the kubelet's SIGKILL; whatever was not committed is re-read by
the next owner, so nothing is lost and, thanks to the transactional hops and the idempotent shard sink,
nothing is doubled.

Why a wakeup fd: Python runs signal handlers only in the main thread, between bytecodes. A main thread
stuck inside a C call (an lxml parse) never gets there. ``signal.set_wakeup_fd`` makes the C-level
handler write the signal number to a socket that a watchdog thread is blocked on, so the deadline
starts even then. ``faulthandler.dump_traceback_later`` is a second, C-level timer that fires even if
the stuck code also holds the GIL.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

from headrace.ops.config import OpsConfig
from headrace.ops.health import Health

log = logging.getLogger(__name__)

#: Exit status when the shutdown deadline passed (a stage hung); see the CLI's exit status table.
EXIT_SHUTDOWN_DEADLINE = 4
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_WAKE = 0  # byte written by request() itself to wake the watchdog


class GracefulShutdown:
    """Context manager; use from the main thread. ``stop`` is the event loops watch."""

    def __init__(
        self,
        config: OpsConfig,
        health: Health | None = None,
        *,
        exit_code: int = EXIT_SHUTDOWN_DEADLINE,
        backstop: bool = True,
    ) -> None:
        self.config = config
        self.health = health
        self.exit_code = exit_code
        self.backstop = backstop
        self.stop = threading.Event()
        self.requested_at: float | None = None
        self.signum: int | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup = -1
        self._rsock: socket.socket | None = None
        self._wsock: socket.socket | None = None
        self._watchdog: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def install(self) -> GracefulShutdown:
        self._rsock, self._wsock = socket.socketpair()
        self._wsock.setblocking(False)
        self._old_wakeup = signal.set_wakeup_fd(self._wsock.fileno(), warn_on_full_buffer=False)
        for sig in _SIGNALS:
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        self._watchdog = threading.Thread(target=self._watch, name="headrace-shutdown", daemon=True)
        self._watchdog.start()
        return self

    def finished(self) -> None:
        """Everything is drained and closed: disarm the deadline."""
        self._done.set()
        if self.backstop:
            faulthandler.cancel_dump_traceback_later()

    def uninstall(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()
        signal.set_wakeup_fd(self._old_wakeup)
        if self._wsock is not None:
            self._wsock.close()
        if self._rsock is not None:
            self._rsock.shutdown(socket.SHUT_RDWR)
            self._rsock.close()

    def __enter__(self) -> GracefulShutdown:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finished()
        self.uninstall()

    # -- requests ----------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.request(signum)

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Begin the shutdown (idempotent; any thread)."""
        with self._lock:
            if self.requested_at is not None:
                return
            self.requested_at = time.monotonic()
            self.signum = signum
        deadline = self.config.shutdown_deadline_s
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        log.warning("received %s: finishing the batch in hand, committing and leaving; deadline %.1fs", name, deadline)
        if self.health is not None:
            self.health.stopping.set()
        if self.backstop:
            try:
                faulthandler.dump_traceback_later(deadline + 1.0, exit=True)
            except (ValueError, RuntimeError, OSError) as exc:  # stderr without a file descriptor
                log.debug("no C-level shutdown backstop: %s", exc)
        self.stop.set()
        if self._wsock is not None:
            with contextlib.suppress(OSError):  # buffer full or closed: the watchdog is awake anyway
                self._wsock.send(bytes([_WAKE]))

    def elapsed(self) -> float | None:
        """Seconds since the shutdown was requested."""
        return None if self.requested_at is None else time.monotonic() - self.requested_at

    # -- watchdog ------------------------------------------------------------------------------------
    def _watch(self) -> None:
        if self._rsock is None:
            return
        while self.requested_at is None:
            try:
                data = self._rsock.recv(64)
            except OSError:
                return
            if not data:
                return  # uninstalled
            sigs = [b for b in data if b in (int(s) for s in _SIGNALS)]
            if sigs:
                self.request(sigs[0])
        remaining = self.config.shutdown_deadline_s - (self.elapsed() or 0.0)
        if self._done.wait(max(0.0, remaining)):
            return
        log.critical(
            "shutdown deadline of %.1fs passed and the loop has not drained (a stage is stuck); aborting: "
            "uncommitted work will be read again by the next owner",
            self.config.shutdown_deadline_s,
        )
        with contextlib.suppress(ValueError, RuntimeError, OSError):
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):  # exiting anyway
                handler.flush()
        os._exit(self.exit_code)
