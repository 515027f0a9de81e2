"""Pytest plugin: a real single-node Kafka broker for the test session.

Register with ``pytest_plugins = ["tests.kafka_fixture"]`` (or ``-p kafka_fixture`` with tests/ on
sys.path). Self-contained: it loads tools/kafka/broker.py by path, so it needs no package layout.

Environment:
- ``HEADRACE_KAFKA_BOOTSTRAP=host:port``: use that broker instead of starting one (restart/kill tests skip).
- ``HEADRACE_REQUIRE_KAFKA=1``: a broker that cannot be started fails the tests instead of skipping them.
- ``HEADRACE_KAFKA_CACHE``, ``HEADRACE_KAFKA_HEAP``: see tools/kafka/broker.py.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
BROKER_SCRIPT = REPO_ROOT / "tools" / "kafka" / "broker.py"
_MODULE_NAME = "headrace_tools_kafka_broker"


def _load_broker_module() -> ModuleType:
    # Reuse one module object so Broker/BrokerError identities agree across importers.
    cached = sys.modules.get(_MODULE_NAME)
    if cached is not None:
        return cached
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, BROKER_SCRIPT)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {BROKER_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


broker_module = _load_broker_module()
Broker = broker_module.Broker
BrokerError = broker_module.BrokerError


class ExternalBroker:
    """A broker named by HEADRACE_KAFKA_BOOTSTRAP; not ours to restart or kill."""

    restartable = False

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("HEADRACE_REQUIRE_KAFKA", "").strip() == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _reachable(bootstrap: str) -> bool:
    for entry in bootstrap.split(","):
        host, _, port = entry.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5):
                return True
        except (OSError, ValueError):
            continue
    return False


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The session's broker: a ``Broker`` (tools/kafka/broker.py) or an ``ExternalBroker``."""
    external = os.environ.get("HEADRACE_KAFKA_BOOTSTRAP", "").strip()
    if external:
        if not _reachable(external):
            _unavailable(f"HEADRACE_KAFKA_BOOTSTRAP={external} is not reachable")
        yield ExternalBroker(external)
        return

    run_dir = tmp_path_factory.mktemp("kafka")
    # die_with_parent: a SIGKILLed pytest must not leave a JVM behind.
    broker = Broker(run_dir, die_with_parent=True)
    failure: str | None = None
    try:
        broker.start()
    except BrokerError as exc:
        failure = f"Kafka broker could not be started: {exc}"
    if failure is not None:  # outside the except block, so the report is not a chained traceback
        _unavailable(failure)
    try:
        yield broker
    finally:
        broker.stop()
        # Keep the logs for post-mortems; the data dir is only bulk.
        shutil.rmtree(broker.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Any) -> str:
    """``host:port`` of the session's broker."""
    return str(kafka_broker.bootstrap)


@pytest.fixture
def kafka_local_broker(kafka_broker: Any) -> Any:
    """The session's ``Broker`` for tests that restart or kill it; skips against an external broker."""
    if not isinstance(kafka_broker, Broker):
        pytest.skip("external broker (HEADRACE_KAFKA_BOOTSTRAP): restart/kill unavailable")
    return kafka_broker


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A per-test prefix for topic and group names (legal Kafka topic characters, short)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:60] or "test"
    return f"hr-{base}-{uuid.uuid4().hex[:8]}"
