"""A scriptable local web site on 127.0.0.1 for crawler tests, and a subprocess crawl driver.

``Site`` serves routes (static responses or handler functions) from a threaded ``http.server`` and logs
every request with its arrival time (monotonic), so tests can assert what the crawler did on the wire.
``run_crawl_subprocess`` runs one crawl in a fresh interpreter (Twisted's reactor is not restartable)
and returns the crawl report plus every published page.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


@dataclass
class Hit:
    path: str
    t: float
    headers: dict[str, str]


@dataclass
class Route:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/html; charset=utf-8"
    length: int | None = None  # Content-Length when the body is a chunk iterator


Handler = Callable[[BaseHTTPRequestHandler], Route | None]


class Site:
    def __init__(self) -> None:
        self.routes: dict[str, Route | Handler] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        site = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                t = time.monotonic()
                with site._lock:
                    site.hits.append(Hit(self.path, t, {k.lower(): v for k, v in self.headers.items()}))
                route = site.routes.get(self.path) or site.routes.get(self.path.split("?", 1)[0])
                if callable(route):
                    route = route(self)
                    if route is None:  # the handler answered (or dropped the connection) itself
                        return
                if route is None:
                    route = Route(404, b"not found", content_type="text/plain")
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    for k, v in route.headers:
                        self.send_header(k, v)
                    if isinstance(route.body, bytes):
                        self.send_header("Content-Length", str(len(route.body)))
                        self.end_headers()
                        self.wfile.write(route.body)
                    else:
                        self.send_header("Content-Length", str(route.length))
                        self.end_headers()
                        for chunk in route.body:
                            self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, route: Route | Handler) -> None:
        self.routes[path] = route

    def page(self, path: str, text: str = "", links: Iterable[str] = (), head: str = "", **kw: Any) -> None:
        prose = text or prose_for(path)
        body = (
            f"<html><head><title>{path}</title>{head}</head><body><article><h1>Page {path}</h1>"
            f"<p>{prose}</p>" + "".join(f'<a href="{link}">{link}</a> ' for link in links) + "</article></body></html>"
        ).encode()
        self.add(path, Route(body=body, **kw))

    def paths(self) -> list[str]:
        with self._lock:
            return [h.path for h in self.hits]

    def hits_for(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]


_WORDS = [
    "the",
    "river",
    "valley",
    "town",
    "market",
    "bridge",
    "winter",
    "summer",
    "garden",
    "library",
    "school",
    "morning",
    "evening",
    "teacher",
    "student",
    "history",
    "music",
    "painting",
    "kitchen",
    "bread",
    "coffee",
    "mountain",
    "forest",
    "village",
    "harbour",
    "ship",
    "train",
    "station",
    "letter",
    "story",
    "question",
    "answer",
    "science",
    "language",
    "number",
    "window",
    "street",
    "family",
    "friend",
    "city",
    "season",
    "weather",
    "rain",
    "light",
    "field",
    "farmer",
    "baker",
    "doctor",
    "museum",
    "festival",
    "road",
    "journey",
    "map",
    "island",
]


def prose_for(path: str, sentences: int = 12) -> str:
    """Distinct, English-looking text per page (so no two test pages are near-duplicates)."""
    rng = random.Random(path)
    out = []
    for _ in range(sentences):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 14))]
        out.append(" ".join(words).capitalize() + ".")
    return f"Notes about {path}. " + " ".join(out)


def run_crawl_subprocess(
    tmp: Path,
    seeds: list[str],
    config: dict[str, Any] | None = None,
    *,
    sitemaps: list[str] | None = None,
    obey_robots: bool = True,
    timeout: float = 120,
) -> dict[str, Any]:
    """Run ``crawl_driver.py`` and return ``{"report": ..., "pages": [...], "log": str}``."""
    spec = {
        "seeds": seeds,
        "sitemaps": sitemaps or [],
        "config": {"contact_url": "https://example.org/crawler", "min_delay_s": 0.0, **(config or {})},
        "obey_robots": obey_robots,
        "out": str(tmp / "crawl-result.json"),
    }
    spec_path = tmp / "crawl-spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    res = subprocess.run(
        [sys.executable, str(HERE / "crawl_driver.py"), str(spec_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        raise AssertionError(f"crawl failed ({res.returncode}):\n{res.stderr[-6000:]}")
    result: dict[str, Any] = json.loads((tmp / "crawl-result.json").read_text())
    result["log"] = res.stderr
    return result


def signals_of(page: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in page.get("signals", []) if s["kind"] == kind]


def policy_of(page: dict[str, Any]) -> dict[str, Any]:
    found = signals_of(page, "policy")
    assert found, f"no policy signal on {page['url']}"
    return found[-1]
