#!/usr/bin/env python3
"""Assemble and run a real single-node Apache Kafka broker (KRaft) on loopback.

Standard library only: this runs before the project's virtualenv exists (CI bootstrap, local ``up``).

Library use::

    from broker import Broker, ensure_jars
    with Broker(Path(".run/kafka")) as broker:
        print(broker.bootstrap)

CLI::

    python tools/kafka/broker.py up [--run-dir .run/kafka] [--port N]   # detached, prints bootstrap
    python tools/kafka/broker.py status | down | jars

The jars come from Maven (``tools/kafka/pom.xml``) via ``mvn dependency:copy-dependencies`` and are
cached per pom content. See docs/kafka.md for the recipe and measured timings.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

log = logging.getLogger(__name__)

KAFKA_TOOLS_DIR = Path(__file__).resolve().parent
POM_PATH = KAFKA_TOOLS_DIR / "pom.xml"
REPO_ROOT = KAFKA_TOOLS_DIR.parent.parent
DEFAULT_RUN_DIR = REPO_ROOT / ".run" / "kafka"

HOST = "127.0.0.1"
READY_LINE = "Kafka Server started"
MARKER_NAME = ".headrace-complete"
PID_FILE = "broker.pid"
BOOTSTRAP_FILE = "bootstrap"
DEFAULT_HEAP = ("256m", "512m")
# Printed by Kafka's SocketServer when a listener port is taken; triggers a retry on fresh ports.
_BIND_ERRORS = ("Address already in use", "failed to bind")
_MVN_TIMEOUT_S = 1800.0
_FORMAT_TIMEOUT_S = 120.0
_TAIL_LINES = 40


class BrokerError(Exception):
    """Base class for everything this module raises on purpose."""


class JarFetchError(BrokerError):
    """Maven could not assemble the broker classpath."""


class BrokerStartError(BrokerError):
    """The broker process could not be formatted, started or made ready."""


class PortInUseError(BrokerStartError):
    """A listener port was taken between choosing it and the broker binding it."""


# --------------------------------------------------------------------------- jars


def kafka_version(pom: Path = POM_PATH) -> str:
    """The Kafka version pinned in the pom (single source of truth for cache paths)."""
    root = ET.parse(pom).getroot()  # noqa: S314 - our own file
    # Match by local name so the pom may or may not declare the POM namespace.
    for node in root.iter():
        if node.tag.rsplit("}", 1)[-1] == "kafka.version" and (node.text or "").strip():
            return (node.text or "").strip()
    raise JarFetchError(f"{pom} has no <kafka.version> property")


def default_libs_dir() -> Path:
    env = os.environ.get("HEADRACE_KAFKA_CACHE", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "headrace" / f"kafka-{kafka_version()}" / "libs"


def _pom_fingerprint() -> str:
    return hashlib.sha256(POM_PATH.read_bytes()).hexdigest()


def _libs_complete(libs: Path, fingerprint: str) -> bool:
    marker = libs / MARKER_NAME
    try:
        return marker.read_text().strip() == fingerprint and any(libs.glob("kafka_2.13-*.jar"))
    except OSError:
        return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Serialises concurrent fetches (parallel test workers, a CI step and a developer) on one cache.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_jars(cache_dir: Path | None = None) -> Path:
    """Return a folder holding the broker's runtime jars, fetching them with Maven if needed.

    ``cache_dir`` is the jar folder itself (default ``$HEADRACE_KAFKA_CACHE`` or
    ``~/.cache/headrace/kafka-<version>/libs``). A marker holding the pom's hash is written only after a
    successful copy, so an interrupted fetch or an edited pom causes a clean re-copy.
    """
    libs = Path(cache_dir).expanduser().resolve() if cache_dir is not None else default_libs_dir()
    fingerprint = _pom_fingerprint()
    if _libs_complete(libs, fingerprint):
        return libs
    with _file_lock(libs.parent / f"{libs.name}.lock"):
        if _libs_complete(libs, fingerprint):  # another process finished while we waited
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise JarFetchError("mvn is not on PATH (needs Maven >= 3.6 and a JDK >= 17)")
        if libs.exists():
            shutil.rmtree(libs)  # never mix jars of a partial or older copy into the classpath
        cmd = [mvn, "-B", "-q", "-f", str(POM_PATH), "dependency:copy-dependencies", f"-Dkafka.libs={libs}"]
        log.info("fetching Kafka %s jars into %s", kafka_version(), libs)
        started = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=KAFKA_TOOLS_DIR, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise JarFetchError(f"mvn timed out after {_MVN_TIMEOUT_S:.0f}s") from exc
        if proc.returncode != 0:
            tail = _tail_text(proc.stdout + proc.stderr)
            raise JarFetchError(f"mvn failed (rc={proc.returncode}):\n{tail}")
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise JarFetchError(f"mvn succeeded but {libs} has no kafka_2.13 jar")
        (libs / MARKER_NAME).write_text(fingerprint + "\n")
        log.info("fetched %d jars in %.1fs", len(list(libs.glob("*.jar"))), time.monotonic() - started)
    return libs


# --------------------------------------------------------------------------- helpers


def _tail_text(text: str, lines: int = _TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the JVM sets on its listeners, so TIME_WAIT leftovers do not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _port_open(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _cluster_id() -> str:
    # Kafka's own Uuid.randomUuid() rejects ids starting with '-' (argparse would read them as an
    # option) and the reserved all-zero / one ids; do the same.
    while True:
        raw = os.urandom(16)
        cid = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        if not cid.startswith("-") and int.from_bytes(raw, "big") > 1:
            return cid


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME", "").strip()
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerStartError("java is not on PATH and JAVA_HOME is unset (Kafka 4.x needs Java >= 17)")
    return java


def _heap_opts() -> list[str]:
    # HEADRACE_KAFKA_HEAP: "<max>" (min stays 256m, or max if smaller) or "<min>:<max>", JVM size syntax.
    value = os.environ.get("HEADRACE_KAFKA_HEAP", "").strip()
    if not value:
        xms, xmx = DEFAULT_HEAP
    elif ":" in value:
        xms, xmx = (part.strip() for part in value.split(":", 1))
    else:
        xmx = value
        xms = DEFAULT_HEAP[0] if _jvm_size(value) >= _jvm_size(DEFAULT_HEAP[0]) else value
    return [f"-Xms{xms}", f"-Xmx{xmx}"]


def _jvm_size(value: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    suffix = value[-1:].lower()
    try:
        return int(value[:-1]) * units[suffix] if suffix in units else int(value)
    except ValueError as exc:
        raise BrokerStartError(f"HEADRACE_KAFKA_HEAP: bad JVM size {value!r}") from exc


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec: the broker gets SIGKILL if its parent dies, so a crashed
    # or SIGKILLed test run cannot leak a JVM (the child lives in its own session otherwise).
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The broker is a session leader (start_new_session), so its pgid equals its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by tools/kafka/broker.py. shutdownHook="disable": otherwise log4j's own JVM shutdown hook
     stops logging while Kafka's shutdown hook is still running, and the shutdown is not logged. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <File name="file" fileName="${sys:kafka.logs.dir}/server.log" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <!-- Root must stay at INFO: readiness waits for an INFO line from kafka.server.KafkaRaftServer. -->
    <Root level="INFO">
      <AppenderRef ref="file"/>
    </Root>
  </Loggers>
</Configuration>
"""


# --------------------------------------------------------------------------- broker


class Broker:
    """One single-node KRaft broker (combined broker + controller) as a child process on loopback.

    ``start()`` always begins from an empty, freshly formatted data dir; ``restart()`` keeps the data
    dir and the ports, so committed records and group offsets survive.
    """

    def __init__(
        self,
        run_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        message_max_bytes: int = 16 * 1024 * 1024,
        *,
        libs_dir: Path | None = None,
        die_with_parent: bool = False,
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir).expanduser().resolve()
        self.port = port
        self.controller_port = controller_port
        self.message_max_bytes = message_max_bytes
        self.libs_dir = libs_dir
        self.die_with_parent = die_with_parent
        self.extra_properties = dict(extra_properties or {})
        self.cluster_id: str | None = None
        self.ready_seconds: float | None = None  # start-to-ready of the last (re)start
        self.format_seconds: float | None = None
        self._pick_ports = port is None or controller_port is None
        self._fixed_port = port
        self._fixed_controller_port = controller_port
        self._proc: subprocess.Popen[bytes] | None = None
        self._libs: Path | None = None

    # -- paths
    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.logs_dir / "stdout.log"

    @property
    def properties_path(self) -> Path:
        return self.run_dir / "server.properties"

    # -- public state
    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise BrokerError("broker has no port yet: call start() first")
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle
    def start(self, timeout: float = 120.0) -> None:
        """Format a fresh data dir, launch the broker and wait until it serves on ``bootstrap``."""
        if self.is_running():
            raise BrokerError(f"broker already running (pid {self.pid})")
        self._libs = ensure_jars(self.libs_dir)
        for fixed in (self._fixed_port, self._fixed_controller_port):
            if fixed is not None and not _port_free(fixed):
                raise PortInUseError(f"port {fixed} on {HOST} is already in use")
        attempts = 3 if self._pick_ports else 1
        deadline = time.monotonic() + timeout
        for attempt in range(1, attempts + 1):
            if self._pick_ports:
                self._choose_ports()
            self._prepare_run_dir()
            self._format()
            try:
                self._launch(deadline)
                return
            except PortInUseError as exc:
                if attempt == attempts:
                    raise
                # The quorum's voter endpoint is written at format time, so new ports need a re-format.
                log.warning("port taken (%s); retrying on new ports", exc.args[0].splitlines()[0])

    def restart(self, timeout: float = 120.0) -> None:
        """Stop (if running) and start again on the same ports and data dir, without re-formatting."""
        if self.cluster_id is None or not (self.data_dir / "meta.properties").exists():
            raise BrokerError("restart() needs a broker that was start()ed first")
        self.stop()
        deadline = time.monotonic() + timeout
        for attempt in range(1, 4):
            try:
                self._launch(deadline)
                return
            except PortInUseError:
                # Same ports by contract; a just-closed socket can linger briefly, so wait and retry.
                if attempt == 3:
                    raise
                time.sleep(1.0)

    def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown with SIGTERM; SIGKILL if it takes longer than ``timeout`` seconds."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("broker pid %d ignored SIGTERM for %.0fs; sending SIGKILL", proc.pid, timeout)
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL without a clean shutdown (for fault tests); ``restart()`` recovers the logs."""
        proc = self._proc
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        self._proc = None

    def __enter__(self) -> Broker:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals
    def _choose_ports(self) -> None:
        port = self._fixed_port or _free_port()
        cport = self._fixed_controller_port or _free_port()
        while cport == port:
            cport = _free_port()
        self.port, self.controller_port = port, cport

    def _jvm_opts(self, logs_dir: Path) -> list[str]:
        return [
            *_heap_opts(),
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={logs_dir}",
            f"-Dlog4j2.configurationFile={self.run_dir / 'log4j2.xml'}",
        ]

    def _classpath(self) -> str:
        if self._libs is None:
            self._libs = ensure_jars(self.libs_dir)
        return f"{self._libs}/*"

    def properties(self) -> dict[str, str]:
        """The server.properties content for the current ports."""
        if self.port is None or self.controller_port is None:
            raise BrokerError("ports not chosen yet")
        plain = f"PLAINTEXT://{HOST}:{self.port}"
        ctrl = f"CONTROLLER://{HOST}:{self.controller_port}"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Dynamic quorum (pairs with `format --standalone`); never combine with controller.quorum.voters.
            "controller.quorum.bootstrap.servers": f"{HOST}:{self.controller_port}",
            "listeners": f"{plain},{ctrl}",
            "advertised.listeners": f"{plain},{ctrl}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "auto.create.topics.enable": "true",
            "num.partitions": "1",
            "default.replication.factor": "1",
            # One node: internal topics default to RF 3 / min ISR 2 and would never become available.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "transaction.max.timeout.ms": "900000",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            # No 3 s wait before the first rebalance; short sessions allowed for fault tests.
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
            # After kill(), the new incarnation cannot register until the old broker session expires
            # (default 9 s); heartbeats are in-process on one node, so a short session is safe.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "4000",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "message.max.bytes": str(self.message_max_bytes),
            "replica.fetch.max.bytes": str(self.message_max_bytes),
            "socket.request.max.bytes": str(max(104857600, self.message_max_bytes + (1 << 20))),
        }
        props.update(self.extra_properties)
        return props

    def _prepare_run_dir(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        body = "".join(f"{key}={value}\n" for key, value in self.properties().items())
        self.properties_path.write_text("# Written by tools/kafka/broker.py\n" + body)
        (self.run_dir / "log4j2.xml").write_text(LOG4J2_XML)

    def _format(self) -> None:
        self.cluster_id = _cluster_id()
        # --cluster-id=<id> (not "-t <id>") so that no id can ever be parsed as an option.
        cmd = [
            _java(),
            *self._jvm_opts(self.logs_dir / "format"),
            "-cp",
            self._classpath(),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            f"--cluster-id={self.cluster_id}",
            "-c",
            str(self.properties_path),
        ]
        started = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=self.run_dir, capture_output=True, text=True, timeout=_FORMAT_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerStartError(f"kafka-storage format failed: {exc}") from exc
        if proc.returncode != 0:
            tail = _tail_text(proc.stdout + proc.stderr)
            raise BrokerStartError(f"kafka-storage format failed (rc={proc.returncode}):\n{tail}")
        self.format_seconds = time.monotonic() - started
        log.debug("formatted %s (cluster %s) in %.1fs", self.data_dir, self.cluster_id, self.format_seconds)

    def _launch(self, deadline: float) -> None:
        if self.port is None:
            raise BrokerError("ports not chosen yet")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_offset = self.server_log.stat().st_size if self.server_log.exists() else 0
        out_offset = self.stdout_log.stat().st_size if self.stdout_log.exists() else 0
        cmd = [
            _java(),
            *self._jvm_opts(self.logs_dir),
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.properties_path),
        ]
        started = time.monotonic()
        out: IO[bytes]
        with self.stdout_log.open("ab") as out:
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    cwd=self.run_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own session + process group: signals reach only the broker
                    preexec_fn=_set_pdeathsig if self.die_with_parent else None,  # noqa: PLW1509 - no threads fork here
                )
            except OSError as exc:
                raise BrokerStartError(f"cannot run java: {exc}") from exc
        log.info("started Kafka broker pid %d on %s (in %s)", self._proc.pid, self.bootstrap, self.run_dir)
        try:
            self._wait_ready(deadline, log_offset, out_offset)
        except BrokerStartError:
            self.kill()
            raise
        self.ready_seconds = time.monotonic() - started
        log.info("Kafka broker ready on %s after %.1fs", self.bootstrap, self.ready_seconds)

    def _failure_tail(self, log_offset: int, out_offset: int) -> str:
        text = _read_from(self.server_log, log_offset) + "\n" + _read_from(self.stdout_log, out_offset)
        return _tail_text(text)

    def _wait_ready(self, deadline: float, log_offset: int, out_offset: int) -> None:
        proc = self._proc
        port = self.port
        if proc is None or port is None:
            raise BrokerError("no broker process")
        logged_ready = False
        while True:
            if not logged_ready:
                new_text = _read_from(self.server_log, log_offset)
                if any(err in new_text for err in _BIND_ERRORS):
                    ports = f"{port} or {self.controller_port}"
                    raise PortInUseError(f"port {ports} in use:\n{_tail_text(new_text)}")
                logged_ready = READY_LINE in new_text
            if logged_ready and _port_open(port):
                return
            rc = proc.poll()
            if rc is not None:
                tail = self._failure_tail(log_offset, out_offset)
                error = PortInUseError if any(err in tail for err in _BIND_ERRORS) else BrokerStartError
                raise error(f"Kafka broker exited with rc={rc} before it was ready; log tail:\n{tail}")
            if time.monotonic() > deadline:
                tail = self._failure_tail(log_offset, out_offset)
                raise BrokerStartError(f"Kafka broker not ready on {HOST}:{port} in time; log tail:\n{tail}")
            time.sleep(0.1)


# --------------------------------------------------------------------------- detached (CLI) control


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited already


def _is_our_broker(pid: int, run_dir: Path) -> bool:
    # Guards against pid reuse: only signal a JVM running kafka.Kafka with this run dir's properties.
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in argv and str(run_dir / "server.properties").encode() in argv


def _read_detached(run_dir: Path) -> tuple[int, str] | None:
    try:
        pid = int((run_dir / PID_FILE).read_text().strip())
        bootstrap = (run_dir / BOOTSTRAP_FILE).read_text().strip()
    except (OSError, ValueError):
        return None
    return pid, bootstrap


def _detached_healthy(run_dir: Path) -> tuple[int, str] | None:
    state = _read_detached(run_dir)
    if state is None:
        return None
    pid, bootstrap = state
    port = int(bootstrap.rsplit(":", 1)[1])
    if _pid_alive(pid) and _is_our_broker(pid, run_dir) and _port_open(port):
        return state
    return None


def stop_detached(run_dir: Path, timeout: float = 30.0) -> bool:
    """Stop a broker started by ``up``; returns whether one was running."""
    state = _read_detached(run_dir)
    stopped = False
    if state is not None and _pid_alive(state[0]) and _is_our_broker(state[0], run_dir):
        pid = state[0]
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            log.warning("broker pid %d ignored SIGTERM for %.0fs; sending SIGKILL", pid, timeout)
            _signal_group(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.1)
        stopped = True
    for name in (PID_FILE, BOOTSTRAP_FILE):
        (run_dir / name).unlink(missing_ok=True)
    return stopped


def start_detached(run_dir: Path, port: int | None = None, timeout: float = 120.0) -> str:
    """Start a broker that outlives this process; returns its bootstrap address."""
    healthy = _detached_healthy(run_dir)
    if healthy is not None:
        return healthy[1]
    stop_detached(run_dir)  # a stale or unhealthy one from an earlier `up`
    broker = Broker(run_dir, port=port)
    broker.start(timeout)
    (run_dir / PID_FILE).write_text(f"{broker.pid}\n")
    (run_dir / BOOTSTRAP_FILE).write_text(broker.bootstrap + "\n")
    # Deliberately not stopped: the JVM is in its own session and keeps running after we exit.
    return broker.bootstrap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a single-node Kafka broker (KRaft) on loopback.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "start detached (no-op if already healthy); prints the bootstrap address"),
        ("down", "stop the detached broker"),
        ("status", "print the bootstrap address if running; exit 1 if not"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
        if name == "up":
            cmd.add_argument("--port", type=int, default=None)
            cmd.add_argument("--timeout", type=float, default=120.0)
    jars = sub.add_parser("jars", help="only fetch the broker jars; prints their folder")
    jars.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)

    try:
        if args.command == "jars":
            print(ensure_jars(args.cache_dir))
            return 0
        run_dir = Path(args.run_dir).expanduser().resolve()
        if args.command == "up":
            print(start_detached(run_dir, port=args.port, timeout=args.timeout))
            return 0
        if args.command == "down":
            if not stop_detached(run_dir):
                log.info("no broker running in %s", run_dir)
            return 0
        healthy = _detached_healthy(run_dir)
        if healthy is None:
            print("not running")
            return 1
        print(f"{healthy[1]} pid {healthy[0]}")
        return 0
    except BrokerError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
