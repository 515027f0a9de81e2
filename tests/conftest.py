"""Shared fixtures. The real Kafka broker comes from ``kafka_fixture`` (tools/kafka/broker.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["kafka_fixture", "redis_fixture"]

REPO = Path(__file__).resolve().parent.parent
SAMPLE_WARC = REPO / "samples" / "python-docs.warc.gz"


def shared_data_dir() -> Path | None:
    """Real-world WARCs for tests and benchmarks: $HEADRACE_TEST_DATA or ../shared/data."""
    env = os.environ.get("HEADRACE_TEST_DATA")
    candidates = [Path(env)] if env else [REPO.parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir() and any(c.glob("*.warc*")):
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("real WARC corpus not found (set HEADRACE_TEST_DATA)")
    return d


@pytest.fixture(scope="session")
def sample_warc() -> Path:
    return SAMPLE_WARC
