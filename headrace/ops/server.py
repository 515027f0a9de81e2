"""The ops HTTP server: ``/metrics`` (Prometheus text format), ``/healthz`` and ``/readyz``.

Standard library ``ThreadingHTTPServer`` on a daemon thread: no event loop to share with the pipeline,
and answers come from in-memory state only, so a probe never waits on Kafka or on the poll loop.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from headrace.ops.health import Health, Verdict

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    registry: CollectorRegistry
    health: Health


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = generate_latest(self.server.registry)
            except Exception as exc:
                log.exception("metrics collection failed")
                self._send(500, f"metrics collection failed: {exc}\n".encode(), "text/plain; charset=utf-8")
                return
            self._send(200, body, CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._verdict(self.server.health.live())
        elif path == "/readyz":
            self._verdict(self.server.health.ready())
        else:
            self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain; charset=utf-8")

    def _verdict(self, verdict: Verdict) -> None:
        body = json.dumps({"ok": verdict.ok, "reason": verdict.reason, **verdict.detail}).encode() + b"\n"
        self._send(200 if verdict.ok else 503, body, "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ops %s - %s", self.address_string(), format % args)


class OpsServer:
    """Serves the endpoints on ``host:port`` (port 0 picks a free port; see :attr:`port`)."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Health) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.registry = registry
        self._server.health = health
        self._thread = threading.Thread(target=self._server.serve_forever, name="headrace-ops", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("ops server on http://%s:%d (/metrics /healthz /readyz)", self.host, self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
