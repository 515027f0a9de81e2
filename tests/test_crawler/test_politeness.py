"""Retry-After parsing (the spacing itself is measured in test_crawl_politeness.py)."""

from __future__ import annotations

from email.utils import formatdate

from crawler.politeness import parse_retry_after


def test_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(b" 7 ") == 7.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    for bad in (None, "", "soon", "-5", "1.5e3"):
        assert parse_retry_after(bad, now) is None
