"""Seed sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.seeds import SeedError, file_seeds, list_seeds


def test_file_seeds_skip_comments_blanks_and_bad_urls(tmp_path: Path) -> None:
    f = tmp_path / "seeds.txt"
    f.write_text("# seeds\nhttp://a.example/\n\n  https://b.example/x  \nftp://c.example/\nnot a url\n")
    assert [u for b in file_seeds(f, batch=1) for u in b] == ["http://a.example/", "https://b.example/x"]


def test_batches() -> None:
    batches = list(list_seeds([f"http://h{i}.example/" for i in range(5)], batch=2))
    assert [len(b) for b in batches] == [2, 2, 1]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SeedError):
        file_seeds(tmp_path / "nope.txt")
