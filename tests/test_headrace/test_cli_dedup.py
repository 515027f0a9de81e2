"""``headrace dedup stats|near|remove`` on a real embedded index."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

from typer.testing import CliRunner

from consumers.dedup.embedded import EmbeddedIndex
from consumers.dedup.minhash import MinHasher
from headrace.cli import app


def text(rng: random.Random, n: int = 200) -> str:
    return " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(7)) for _ in range(n))


def test_stats_near_remove(tmp_path: Path) -> None:
    rng = random.Random(0)
    a, b = text(rng), text(rng)
    h = MinHasher()
    idx = EmbeddedIndex(tmp_path / "ix")
    for did, t in (("a" * 32, a), ("b" * 32, b)):
        k = h.keys(t)
        idx.check_and_add(did, k.exact, k.bands)
    idx.close()
    runner = CliRunner()
    res = runner.invoke(app, ["dedup", "stats", "--index", str(tmp_path / "ix")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["documents"] == 2

    words = a.split()
    words[10] = "edited"
    res = runner.invoke(app, ["dedup", "near", "--index", str(tmp_path / "ix"), "--text", " ".join(words)])
    assert res.exit_code == 0 and res.stdout.split() == ["a" * 32]

    res = runner.invoke(app, ["dedup", "remove", "--index", str(tmp_path / "ix"), "a" * 32, "c" * 32])
    assert res.exit_code == 0 and "removed" in res.stdout and "not-indexed" in res.stdout
    res = runner.invoke(app, ["dedup", "near", "--index", str(tmp_path / "ix"), "--text", a])
    assert res.exit_code == 0 and res.stdout.split() == []

    assert runner.invoke(app, ["dedup", "stats", "--index", str(tmp_path / "none")]).exit_code == 2
    assert runner.invoke(app, ["dedup", "near", "--index", str(tmp_path / "ix")]).exit_code == 2
