"""Fixtures for the dedup tests: the same contract suite runs on the embedded and the Redis backend."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.dedup.embedded import EmbeddedIndex
from consumers.dedup.index import DedupIndex, Entry
from consumers.dedup.minhash import MinHasher


def random_words(rng: random.Random, n: int) -> list[str]:
    """Letters only: numbers are normalised to 0, so digits would make tokens collide."""
    return ["".join(rng.choice(string.ascii_lowercase) for _ in range(8)) for _ in range(n)]


def random_text(rng: random.Random, n: int = 200) -> str:
    return " ".join(random_words(rng, n))


def doc_id(i: int) -> str:
    return f"{i:032x}"


@pytest.fixture(scope="session")
def hasher() -> MinHasher:
    return MinHasher()


@pytest.fixture
def entry_for(hasher: MinHasher) -> Callable[[str, str], Entry]:
    def make(did: str, text: str) -> Entry:
        k = hasher.keys(text)
        return Entry(did, k.exact, k.bands)

    return make


@pytest.fixture(params=["embedded", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], DedupIndex]]:
    """Opens (and re-opens) one index of the parametrised backend; everything opened is closed after."""
    opened: list[Any] = []
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        ns = request.getfixturevalue("redis_namespace")
        from consumers.dedup.redis_backend import RedisIndex

        def make() -> DedupIndex:
            idx = RedisIndex(url, namespace=ns, buckets=64)
            opened.append(idx)
            return idx
    else:

        def make() -> DedupIndex:
            idx = EmbeddedIndex(tmp_path / "index")
            opened.append(idx)
            return idx

    yield make
    for idx in opened:
        if backend == "redis" and not idx._closed:
            idx.clear()
        idx.close()


@pytest.fixture
def index(open_backend: Callable[[], DedupIndex]) -> DedupIndex:
    return open_backend()
