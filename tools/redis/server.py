#!/usr/bin/env python3
"""Run a throwaway ``redis-server`` (Debian's package) on loopback for tests and benchmarks.

Standard library only. ``make redis-server`` installs the package; this script only starts it::

    from server import RedisServer
    with RedisServer(Path(".run/redis")) as srv:
        print(srv.url)

CLI::

    python tools/redis/server.py up [--run-dir .run/redis] [--port N]   # detached, prints the URL
    python tools/redis/server.py down [--run-dir .run/redis]

No persistence unless ``appendonly=True`` (restart tests): the data lives in ``run_dir``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_RUN_DIR = REPO_ROOT / ".run" / "redis"
#: Compact hashes for the dedup index's bucketed layout (consumers/dedup/redis_backend.py).
TUNING = {"hash-max-listpack-entries": "512", "hash-max-listpack-value": "256"}


class RedisServerError(Exception):
    """redis-server is missing or could not be started."""


def find_redis_server() -> str:
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if path is None:
        raise RedisServerError("redis-server is not installed (run `make redis-server`, Debian package redis-server)")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ping(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _set_pdeathsig() -> None:
    # The server gets SIGKILL when its parent dies, so a killed test run leaves no redis behind.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)


class RedisServer:
    def __init__(
        self,
        run_dir: Path,
        port: int | None = None,
        *,
        appendonly: bool = False,
        die_with_parent: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.port = port
        self.appendonly = appendonly
        self.die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RedisServerError("server not started")
        return f"redis://{HOST}:{self.port}/0"

    def args(self) -> list[str]:
        if self.port is None:
            raise RedisServerError("no port chosen")
        args = [
            find_redis_server(),
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.run_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--protected-mode", "yes",
            "--logfile", str(self.run_dir / "redis.log"),
        ]  # fmt: skip
        for k, v in TUNING.items():
            args += [f"--{k}", v]
        return args

    def start(self, timeout: float = 20.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            if self.port is None or attempt:
                self.port = _free_port()
            self._proc = subprocess.Popen(
                self.args(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_set_pdeathsig if self.die_with_parent else None,  # noqa: PLW1509 - no threads fork here
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if ping(self.port, 0.5):
                    (self.run_dir / "redis.pid").write_text(str(self._proc.pid))
                    return
                if self._proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.stop()
        raise RedisServerError(f"redis-server did not start; see {self.run_dir / 'redis.log'}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        """Stop and start on the same port and folder (keeps data when ``appendonly``)."""
        self.stop()
        port = self.port
        self.start()
        if self.port != port:
            log.warning("redis restarted on port %s instead of %s", self.port, port)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start detached and print the URL")
    up.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    up.add_argument("--port", type=int)
    down = sub.add_parser("down", help="stop the detached server")
    down.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    ns = parser.parse_args(argv)
    if ns.cmd == "up":
        srv = RedisServer(ns.run_dir, ns.port)
        srv.start()
        print(srv.url)
        return 0
    pid_file = ns.run_dir / "redis.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
