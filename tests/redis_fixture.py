"""Pytest plugin: a real ``redis-server`` for the test session (tools/redis/server.py).

Environment:
- ``HEADRACE_REDIS_URL=redis://host:port/db``: use that server instead of starting one.
- ``HEADRACE_REQUIRE_REDIS=1`` (set by ``make test``): a server that cannot be started fails the tests
  instead of skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

SERVER_SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "redis" / "server.py"
_MODULE_NAME = "headrace_tools_redis_server"


def _load() -> ModuleType:
    cached = sys.modules.get(_MODULE_NAME)
    if cached is not None:
        return cached
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, SERVER_SCRIPT)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SERVER_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


redis_server_module = _load()


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("HEADRACE_REQUIRE_REDIS", "").strip() == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's redis-server."""
    external = os.environ.get("HEADRACE_REDIS_URL", "").strip()
    if external:
        yield external
        return
    server = redis_server_module.RedisServer(tmp_path_factory.mktemp("redis"), die_with_parent=True)
    failure = None
    try:
        server.start()
    except redis_server_module.RedisServerError as exc:
        failure = f"redis-server could not be started: {exc}"
    if failure is not None:
        _unavailable(failure)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_namespace() -> str:
    """A fresh key namespace per test, so tests share one server without seeing each other."""
    return f"t-{uuid.uuid4().hex[:12]}"
