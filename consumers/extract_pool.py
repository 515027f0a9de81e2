"""Extraction in worker processes with a per-document time limit.

lxml (under trafilatura) is not thread-safe and can hang or crash on hostile HTML, and trafilatura's
``extract`` has no time limit. So extraction runs in separate processes, one page at a time each:

* a page that takes longer than ``extract.timeout_s`` gets its worker killed (SIGKILL) and replaced;
  the page is dropped as ``extract-timeout``;
* a worker that dies (segfault, abort, out of memory) takes only its page with it: the page is
  dropped as ``extract-crash`` with the exit status, and a fresh worker takes the next page;
* an exception inside the extractor is an ``extract-error:<Type>`` drop, and the worker carries on.

Everything else in the batch is extracted normally, and results come back in input order, so the
runner commits exactly the pages it got answers for. Workers come from a ``forkserver`` (the parent
may run Kafka client threads, which must not be forked) that has already imported the extractor, so
replacing one takes milliseconds. Each worker is its own process with its own trafilatura
deduplication cache.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from consumers.extract import STAGE, ExtractConfig, error_drop, extract_page, finish, precheck
from consumers.stage import Drop
from streams.records import Document, Page

log = logging.getLogger(__name__)

_PRELOAD = ["consumers.extract", "trafilatura", "lxml.html"]


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker_main(conn: Connection, config: ExtractConfig) -> None:
    """Worker loop: (task id, body, content type) in, (task id, status, payload) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    _limit_memory(config.worker_memory_mb)
    try:
        extract_page(b"<html><body><p>warm up</p></body></html>", "text/html", config)
    except Exception as exc:  # the extractor cannot even start: report it, the pool gives up
        conn.send((-1, "fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send((-1, "ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        task_id, body, content_type = task
        try:
            text = extract_page(body, content_type, config)
        except MemoryError:
            conn.send((task_id, "error", ("MemoryError", "worker memory limit reached")))
            return  # a fresh worker is safer than a fragmented heap
        except Exception as exc:
            conn.send((task_id, "error", (type(exc).__name__, str(exc)[:300])))
            continue
        conn.send((task_id, "ok", text))


class WorkerStartError(RuntimeError):
    """A worker process could not start its extractor."""


class _Worker:
    def __init__(self, ctx: Any, config: ExtractConfig) -> None:
        self.config = config
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, config), daemon=True)
        self.process.start()
        child.close()
        self.task: int | None = None
        self.deadline = 0.0
        self.done = 0
        if not self.conn.poll(config.start_timeout_s):
            self.kill()
            raise WorkerStartError(f"extraction worker did not start within {config.start_timeout_s} s")
        _, status, payload = self.conn.recv()
        if status != "ready":
            self.kill()
            raise WorkerStartError(f"extraction worker failed to start: {payload}")

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def submit(self, task_id: int, page: Page) -> None:
        self.task = task_id
        self.deadline = time.monotonic() + self.config.timeout_s
        self.conn.send((task_id, page.body, page.content_type))

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class ExtractPool:
    """Same API as :class:`consumers.extract.Extractor`, extracting in ``config.workers`` processes."""

    name = STAGE

    def __init__(self, config: ExtractConfig, pipeline: str = "") -> None:
        config.check()
        if config.workers < 1:
            raise ValueError("ExtractPool needs extract.workers >= 1")
        self.config = config
        self.pipeline = pipeline
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)
        self._workers: list[_Worker] = []
        self.timeouts = 0
        self.crashes = 0
        self.restarts = 0

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.config)

    def _ensure_workers(self) -> None:
        while len(self._workers) < self.config.workers:
            self._workers.append(self._spawn())

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (tests and operators use them)."""
        return [w.pid for w in self._workers if w.pid is not None]

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.remove(worker)
        self.restarts += 1
        self._workers.append(self._spawn())

    def extract_batch(self, pages: Sequence[Page]) -> list[Document | Drop]:
        results: list[Document | Drop | None] = [None] * len(pages)
        queue: deque[int] = deque()
        for i, page in enumerate(pages):
            early = precheck(page, self.config)
            if early is not None:
                results[i] = early
            else:
                queue.append(i)
        if queue:
            self._ensure_workers()
        busy: dict[Connection, _Worker] = {}
        while queue or busy:
            for worker in list(self._workers):
                if queue and worker.task is None:
                    if not worker.process.is_alive():  # died while idle: nothing was lost
                        self._replace(worker)
                        continue
                    i = queue.popleft()
                    try:
                        worker.submit(i, pages[i])
                    except (BrokenPipeError, OSError):
                        queue.appendleft(i)  # the page never reached it
                        worker.task = None
                        self._replace(worker)
                        continue
                    busy[worker.conn] = worker
            now = time.monotonic()
            timeout = max(0.0, min(w.deadline for w in busy.values()) - now) if busy else 0.0
            ready = wait(list(busy), timeout=timeout)
            for conn in ready:
                worker = busy[conn]  # type: ignore[index]
                self._collect(worker, pages, results)
                busy.pop(worker.conn, None)
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if worker.task is not None and now >= worker.deadline:
                    i = worker.task
                    log.warning(
                        "extraction of %s exceeded %.1f s; worker replaced", pages[i].url, self.config.timeout_s
                    )
                    self.timeouts += 1
                    results[i] = Drop("extract-timeout", {"timeout_s": float(self.config.timeout_s)}, stage=STAGE)
                    del busy[conn]
                    self._replace(worker)
        return [r if r is not None else Drop("extract-lost", stage=STAGE) for r in results]

    def _collect(self, worker: _Worker, pages: Sequence[Page], results: list[Document | Drop | None]) -> None:
        i = worker.task
        if i is None:  # only busy workers are waited on
            return
        try:
            task_id, status, payload = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            code = worker.process.exitcode
            log.warning("extraction worker died on %s (exit status %s); replaced", pages[i].url, code)
            self.crashes += 1
            results[i] = Drop(
                "extract-crash", {"exitcode": float(code if code is not None else -1)}, detail=pages[i].url, stage=STAGE
            )
            self._replace(worker)
            return
        worker.task = None
        worker.done += 1
        if task_id != i:  # never expected: the protocol is one task at a time
            results[i] = Drop("extract-lost", detail=f"answer for task {task_id}", stage=STAGE)
        elif status == "ok":
            results[i] = finish(pages[i], payload, self.pipeline)
        else:
            exc_type, message = payload
            results[i] = error_drop(exc_type, message)
            if exc_type == "MemoryError":
                self._replace(worker)
                return
        if self.config.max_tasks_per_worker and worker.done >= self.config.max_tasks_per_worker:
            self._replace(worker)

    def close(self) -> None:
        for w in self._workers:
            w.stop()
        self._workers.clear()

    def __enter__(self) -> ExtractPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
